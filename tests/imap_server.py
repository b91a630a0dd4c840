"""A real IMAP server for the support mailbox's tests: a private Dovecot instance (issue #11).

Not the system's service: a config written into a temporary directory of its own — its own
ports (``10143``/``10993`` + ``SITEFLOW_TEST_PORT_OFFSET``), its own maildir, its own passdb file
(two users, ``support`` and ``desk``) and a self-signed certificate for 127.0.0.1 (STARTTLS on the IMAP port,
TLS on the IMAPS port; the certificate is the CA file the reader is given). ``dovecot -F``
runs in the foreground as a child of the test, so stopping it is stopping that child; it is up
in a few milliseconds, so a test can stop and start it to play an outage. A refused login
costs a few seconds all the same: Dovecot's anvil delays the next logins from an address after
a failure (``auth_failure_delay = 0`` only removes the first delay).

Dovecot 2.3 (Debian 12's ``dovecot-imapd``; ``siteflow.sh test`` installs it). Run as root, the
mail processes run as the ``dovecot`` user (Dovecot never reads mail as root); run as anyone
else, every process is that user.

Usage::

    with DovecotServer(password="s3cret") as imap:
        imap.append(raw)          # IMAP APPEND, as a mail server's delivery would
        imap.flags()              # {uid: flags} of INBOX
"""

from __future__ import annotations

import datetime
import imaplib
import ipaddress
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

USERS = ("support", "desk")
"""Two mailboxes: a stack's reader service reads one while tests read the other in-process."""


def _port(base: int) -> int:
    return base + int(os.environ.get("SITEFLOW_TEST_PORT_OFFSET", "0"))


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (the test's own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "siteflow test IMAP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


class DovecotServer:
    def __init__(self, password: str, tls: bool = True) -> None:
        """``tls=False``: a server that offers no TLS at all (no STARTTLS, no IMAPS port), on
        ports of its own (10443 + offset)."""
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            raise RuntimeError(
                "Dovecot is not installed: `apt-get install dovecot-imapd` (siteflow.sh test does it)"
            )
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        if not re.match(r"2\.3\.", version):
            raise RuntimeError(f"these tests write a Dovecot 2.3 config; this is Dovecot {version.strip()}")
        self.binary = binary
        self.password = password
        self.tls = tls
        self.port = _port(10143 if tls else 10443)
        self.tls_port = _port(10993) if tls else 0
        self.dir = Path(tempfile.mkdtemp(prefix="siteflow-imap-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0
        self._configure()

    def _configure(self) -> None:
        d = self.dir
        (d / "run").mkdir()
        (d / "state").mkdir()
        (d / "mail").mkdir()
        self.cert, key = _self_signed(d)
        if os.geteuid() == 0:  # Dovecot never reads mail as root: as its own user then
            mail_user = pwd.getpwnam("dovecot")
            os.chown(d / "mail", mail_user.pw_uid, mail_user.pw_gid)
            d.chmod(0o755)  # the mail processes must reach mail/ (the key stays 0600, root's)
            users = ""
        else:
            mail_user = pwd.getpwuid(os.getuid())
            users = f"default_login_user = {mail_user.pw_name}\ndefault_internal_user = {mail_user.pw_name}\n"
        (d / "passwd").write_text("".join(f"{u}:{{PLAIN}}{self.password}::::::\n" for u in USERS))
        (d / "dovecot.conf").write_text(
            f"""base_dir = {d}/run
state_dir = {d}/state
instance_name = siteflow-test-{self.port}
log_path = {d}/dovecot.log
{users}protocols = imap
listen = 127.0.0.1
{f"ssl = yes{chr(10)}ssl_cert = <{self.cert}{chr(10)}ssl_key = <{key}" if self.tls else "ssl = no"}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port}
  }}
}}
"""
        )

    def start(self) -> None:
        for port in (p for p in (self.port, self.tls_port) if p):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    raise RuntimeError(f"port {port} is taken: set SITEFLOW_TEST_PORT_OFFSET")
        began = time.monotonic()
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = began + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()[-2000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    self.start_seconds = time.monotonic() - began
                    return
            time.sleep(0.02)
        raise RuntimeError(f"dovecot did not listen within 20s: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _client(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(user, self.password)
        client.select("INBOX")
        return client

    def append(self, raw: bytes, user: str = USERS[0]) -> int:
        """Deliver ``raw`` into the user's INBOX by IMAP APPEND; its UID."""
        client = self._client(user)
        try:
            typ, data = client.append("INBOX", None, None, raw)
            assert typ == "OK", data
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            assert found, data
            return int(found.group(1))
        finally:
            client.logout()

    def flags(self, user: str = USERS[0]) -> dict[int, str]:
        """Every message's UID and flags in the user's INBOX."""
        client = self._client(user)
        try:
            typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
            assert typ == "OK", data
            found: dict[int, str] = {}
            for line in data:
                if isinstance(line, bytes):
                    m = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+)", line)
                    if m:
                        uid = m.group(1) or m.group(4)
                        found[int(uid)] = (m.group(2) or m.group(3) or b"").decode()
            return found
        finally:
            client.logout()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
