#!/usr/bin/env bash
# One entry point for a fresh machine: installs what siteflow needs (in .venv) and runs it.
#   ./siteflow.sh up        install, then start the embedded default (Ctrl-C stops it)
#   ./siteflow.sh test      install with dev tools, make sure PostgreSQL runs, run the tests
#   ./siteflow.sh demo [upgrade|incident]  install, then run the sample project (or upgrade window,
#                or night-time incident and its month's report) end to end
#   ./siteflow.sh ARGS…     install, then `siteflow ARGS…`
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

install() {
  local extras=$1 stamp="$VENV/.installed-$1"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing siteflow into $VENV (log: $VENV/install.log) …" >&2
    local target=.
    [ "$extras" = dev ] && target='.[dev]'
    if ! { "$VENV/bin/python" -m pip install --upgrade pip \
           && "$VENV/bin/python" -m pip install -e "$target"; } >"$VENV/install.log" 2>&1; then
      tail -n 30 "$VENV/install.log" >&2
      echo "installation failed; the full log is $VENV/install.log" >&2
      exit 1
    fi
    touch "$stamp"
  fi
}

ensure_postgres() {
  # The tests use a real PostgreSQL on 127.0.0.1:5432 (SITEFLOW_TEST_PG_URL overrides it).
  if [ -n "${SITEFLOW_TEST_PG_URL:-}" ]; then return; fi
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not installed: installing it (Debian package) …" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432 >&2
  # trust auth for local test connections, as on the development machines
  if ! psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1; then
    local hba
    hba=$(ls /etc/postgresql/"$version"/main/pg_hba.conf)
    sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\).*/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2
  fi
}

ensure_chromium() {
  # Browser tests drive Debian's chromium with Playwright (Playwright cannot download browsers here).
  if [ -x /usr/bin/chromium ]; then return; fi
  echo "installing chromium (Debian package) for the browser tests …" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
}

ensure_cjk_font() {
  # Every document is also a PDF in Chinese and English (WeasyPrint): without a CJK font the
  # Chinese would print as empty boxes, so siteflow refuses to make PDFs. Debian's fonts-noto-cjk
  # gives "Noto Sans CJK SC" and "Noto Serif CJK SC".
  if command -v fc-list >/dev/null 2>&1 && fc-list "Noto Sans CJK SC" family | grep -q "Noto Sans CJK SC"; then
    return
  fi
  echo "installing the CJK font for the documents' PDFs (Debian package fonts-noto-cjk) …" >&2
  if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk fontconfig >&2; }; then
    echo "could not install fonts-noto-cjk: run \`sudo apt-get install fonts-noto-cjk\` (PDFs need it)" >&2
    return 1
  fi
}

ensure_node() {
  # The single sign-on tests run a real OpenID Connect provider (node-oidc-provider) on Node.js.
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then return; fi
  echo "installing Node.js (Debian packages) for the single sign-on tests …" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
}

ensure_dovecot() {
  # The support mailbox tests read a real IMAP server: a private Dovecot started by the tests
  # from a config of their own (tests/imap_server.py), never the system's service.
  if [ -x /usr/sbin/dovecot ]; then return; fi
  echo "installing Dovecot (Debian package dovecot-imapd) for the support mailbox tests …" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >&2
}

case "${1:-}" in
  up)
    install base
    ensure_cjk_font
    exec "$VENV/bin/siteflow" up
    ;;
  demo)
    shift
    install base
    ensure_cjk_font
    exec "$VENV/bin/siteflow" demo "${1:-engineering}" "${@:2}"
    ;;
  test)
    shift
    install dev
    ensure_postgres
    ensure_chromium
    ensure_cjk_font
    ensure_node
    ensure_dovecot
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  ""|-h|--help)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    install base
    exec "$VENV/bin/siteflow" "$@"
    ;;
esac
