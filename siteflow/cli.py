"""The `siteflow` command. Prefect is imported only inside commands, after its environment
is pointed at siteflow's server, so `siteflow --help` is fast and never needs a server.

Commands that act as a person (`gates decide`, `projects start`) are thin clients of the web
API, signed with the user's personal token (`siteflow login`): the web service stamps, checks
and records the decision, so the command loads neither Prefect nor the database. Host-admin
commands (`users …`, `up`) work on the database directly.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from siteflow.commands.documents import documents_app
from siteflow.commands.host_database import ready_db as _ready_db
from siteflow.commands.incidents import incidents_app, report_incidents
from siteflow.commands.problems import problems_app
from siteflow.commands.terminal import (
    console,
    err,
    fail,
    load_structured,
    validation_message,
)
from siteflow.commands.terminal import id_column as _id_column
from siteflow.commands.terminal import text_columns as _text_columns
from siteflow.identity.roles import StaffRole  # a plain enum: loads no tables

if TYPE_CHECKING:
    from rich.table import Table

app = typer.Typer(help="siteflow: telecom field-service work run as Prefect flows.", no_args_is_help=True)
projects_app = typer.Typer(help="Engineering projects.", no_args_is_help=True)
gates_app = typer.Typer(help="Gates: the decisions flows wait for.", no_args_is_help=True)
demo_app = typer.Typer(help="Sample runs on the embedded default.", no_args_is_help=True)
upgrade_app = typer.Typer(help="Software version upgrades in nightly windows.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")
app.add_typer(gates_app, name="gates")
app.add_typer(demo_app, name="demo")
app.add_typer(upgrade_app, name="upgrade")
app.add_typer(incidents_app, name="incidents")  # siteflow/commands/incidents.py
app.add_typer(problems_app, name="problems")  # siteflow/commands/problems.py
app.add_typer(documents_app, name="documents")  # siteflow/commands/documents.py
report_app = typer.Typer(help="Reports from siteflow's records.", no_args_is_help=True)
app.add_typer(report_app, name="report")
users_app = typer.Typer(
    help="Staff accounts who sign in to siteflow's web. Host-admin commands: they work on siteflow's "
    "database directly, so run them on the host (the first admin is made this way).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")


def _add_handover() -> None:
    """`siteflow handover …` (ENG-29) lives in its own module; only its wiring is here."""
    from siteflow.handover.cli import handover

    app.command("handover")(handover)


@app.callback()
def main() -> None:
    from siteflow.prefect_env import apply_prefect_environment  # settings only, not Prefect

    apply_prefect_environment()


@app.command()
def up() -> None:
    """Start the embedded default: Prefect server + UI, served deployments, web service, SMTP catcher."""
    from rich.table import Table

    from siteflow.settings import get_settings
    from siteflow.stack import Stack, StackError, supervise

    stack = Stack(get_settings(), say=lambda m: console.print(m))
    t0 = time.monotonic()
    # A service manager's stop (SIGTERM) or a closed terminal (SIGHUP) stops the services too,
    # as Ctrl-C does; by default they would end only this process and leave the services running.
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _interrupt)
    try:
        console.print(f"starting siteflow under {stack.settings.home} …")
        stack.start()
        table = Table(title=f"siteflow is up ({time.monotonic() - t0:.1f}s) — Ctrl-C stops everything")
        table.add_column("service")
        table.add_column("where")
        for name, url in stack.urls().items():
            table.add_row(name, url)
        console.print(table)
        supervise(stack)
    except StackError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        console.print("stopping …")
    finally:
        stack.stop()
        console.print("siteflow stopped.")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@projects_app.command("start")
def projects_start(
    file: Annotated[Path, typer.Argument(help="Project form as YAML or JSON (see examples/project.yaml)")],
    wait: Annotated[bool, typer.Option(help="Wait until the project reaches its first gate")] = False,
) -> None:
    """Validate a project form and start its engineering-project run, as yourself (`siteflow login`):
    a PM starts the projects that list them as PM."""
    from models.project_input import ProjectIn
    from siteflow.api_client import ApiError, call, load_credentials

    raw = load_structured(file)
    try:
        form = ProjectIn.model_validate(raw)
    except ValidationError as exc:
        raise fail(validation_message(exc)) from None
    try:
        creds = load_credentials()
        out = call("POST", "/api/projects", form.model_dump(mode="json"), creds)
    except ApiError as exc:
        problems = "".join(f"\n  - {p}" for p in exc.body.get("problems", []))
        raise fail(f"not started: {exc}{problems}") from None
    console.print(
        f"started project {form.code}: flow run {out['flow_run_id']}", markup=False, highlight=False
    )
    console.print(f"  workspace:  {out['workspace_url']}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"  Prefect UI: {out['prefect_url']}", markup=False, highlight=False, soft_wrap=True)
    if wait:
        gate = _first_gate(form.code, creds, timeout=120)
        console.print(f"waiting at gate {gate}" if gate else "no gate opened yet", markup=False)


def _first_gate(code: str, creds: Any, timeout: float) -> str | None:
    """The project's first open gate, asked of the web API as the logged-in user."""
    from urllib.parse import quote

    from siteflow.api_client import call

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gates = call("GET", f"/api/gates?project={quote(code)}", creds=creds)
        if gates:
            return str(gates[0]["key"])
        time.sleep(0.5)
    return None


def _widest(values: list[str]) -> int:
    return max((len(v) for v in values), default=0)


@projects_app.command("list")
def projects_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Projects with their phase and state (waiting means a gate is open)."""
    _ready_db()
    from rich.table import Table

    from siteflow.queries import as_json as dump
    from siteflow.queries import list_projects

    rows = list_projects()
    if as_json:
        print(json.dumps(dump(rows), ensure_ascii=False, indent=2))
        return
    from rich import box

    table = Table(box=box.SIMPLE_HEAD)
    _id_column(table, "code")
    _text_columns(table, "customer", "phase", "state", "waiting at")
    for r in rows:
        table.add_row(r.code, r.customer, r.phase, r.state, r.waiting_at or "")
    console.print(table)


@gates_app.command("list")
def gates_list(
    project: Annotated[str | None, typer.Option(help="Only this project's gates")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include decided gates")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Open gates (or all with --all): who must decide and what they may answer."""
    _ready_db()
    from rich.table import Table

    from siteflow.queries import as_json as dump
    from siteflow.queries import list_gates

    rows = list_gates(project, include_closed=all_)
    if as_json:
        print(json.dumps(dump(rows), ensure_ascii=False, indent=2))
        return
    from rich import box

    from siteflow.site_time import site_time, subject_zone

    zones = {p: subject_zone(p) for p in {r.project for r in rows}}
    table = Table(box=box.SIMPLE_HEAD, show_lines=True)
    # the gate id heads its cell on a line of its own, whole (the column is at least that
    # wide); what the gate is goes under it and wraps
    table.add_column("gate id · gate (rule)", overflow="fold", min_width=_widest([r.id for r in rows]))
    _id_column(table, "project")
    _text_columns(table, "waiting for / outcome · answers")
    for r in rows:
        when = (
            [f"decide by {site_time(r.deadline, zones[r.project])}"]
            if r.deadline and r.status == "open"
            else []
        )
        table.add_row(
            "\n".join([r.id, f"{r.key} ({r.rule})", *when]),
            r.project,
            "\n".join(
                [
                    ", ".join(r.waiting_for) if r.status == "open" else f"{r.outcome}",
                    " | ".join(r.decisions),
                    *([f"data: {r.data_model}"] if r.data_model else []),
                ]
            ),
        )
    console.print(table)


@gates_app.command("decide")
def gates_decide(
    gate_id: Annotated[str, typer.Argument(help="Gate id from `siteflow gates list`")],
    decision: Annotated[str, typer.Option(help="One of the gate's allowed decisions")],
    role: Annotated[str | None, typer.Option(help="Your role on the project (checked)")] = None,
    comment: Annotated[str, typer.Option(help="Why; shown in the audit trail")] = "",
    data: Annotated[Path | None, typer.Option(help="JSON file with the gate's data fields")] = None,
) -> None:
    """Decide a gate as yourself: signed with your personal token (`siteflow login`), through
    siteflow's web service — the same decision path as the workspace and email links.

    Nobody can name another signer: the signature is the token owner's. The decision is stamped
    when it reaches siteflow; the web service then resumes the waiting run.
    """
    from siteflow.api_client import ApiError, call, load_credentials

    payload = load_structured(data) if data else None
    if payload is not None and not isinstance(payload, dict):
        raise fail(f"{data} must hold a JSON object with the gate's data fields")
    body = {"decision": decision, "comment": comment, "data": payload, "role": role}
    try:
        creds = load_credentials()
        result = call("POST", f"/api/gates/{gate_id}/decisions", body, creds)
    except ApiError as exc:
        if exc.status in (404, 409, 422):
            raise fail(f"refused: {exc}", code=2) from None
        raise fail(str(exc)) from None
    console.print(result["message"], markup=False, highlight=False)
    if result["complete"]:
        console.print(
            f"gate {result['gate_key']} decided: {result['outcome']}.", markup=False, highlight=False
        )
        if result["resuming"]:
            console.print(f"flow run {result['flow_run_id']} is being resumed by siteflow.", highlight=False)


@app.command()
def login(
    email: Annotated[str | None, typer.Option(help="Your staff account's email (asked if left out)")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input instead of a prompt"),
    ] = False,
    token_stdin: Annotated[
        bool,
        typer.Option(
            "--token-stdin",
            help="Read a personal token made on the workspace's Tokens page (/tokens) from standard input "
            "instead of giving a password — for single sign-on accounts",
        ),
    ] = False,
    url: Annotated[str | None, typer.Option(help="siteflow's web address (default: this host's)")] = None,
) -> None:
    """Log in: trade your password for a personal API token, kept in your config directory (0600).

    Commands that act as you (`gates decide`, `projects start`) send it; it expires after
    SITEFLOW_TOKEN_DAYS (30) days; `siteflow logout` revokes it. Signed in by single sign-on
    with no password? Make a token at /tokens in the workspace and pass it with --token-stdin.
    """
    import socket

    from siteflow.api_client import ApiError, Credentials, call
    from siteflow.settings import get_settings

    base = (url or get_settings().resolved_public_url).rstrip("/")
    if token_stdin:
        if password_stdin or email:
            raise fail("--token-stdin takes the token alone: leave out --email and --password-stdin")
        token = sys.stdin.read().strip()
        probe = Credentials(url=base, token=token, email="", expires_at=datetime.now(UTC))
        try:
            me = call("GET", "/api/me", creds=probe)
        except ApiError as exc:
            raise fail(f"not logged in: {exc}") from None
        out = {"token": token, "name": me["name"], "email": me["email"], "expires_at": me["expires_at"]}
    else:
        who = email or typer.prompt("Email")
        secret = _read_password_stdin() if password_stdin else typer.prompt("Password", hide_input=True)
        try:
            out = call(
                "POST",
                "/api/tokens",
                {"email": who, "password": secret, "label": socket.gethostname()},
                url=base,
            )
        except ApiError as exc:
            raise fail(f"not logged in: {exc}") from None
    path = Credentials(
        url=base, token=out["token"], email=out["email"], expires_at=datetime.fromisoformat(out["expires_at"])
    ).save()
    console.print(
        f"logged in as {out['name']} <{out['email']}>; token kept in {path} "
        f"until {out['expires_at'][:16]} UTC",
        markup=False,
        highlight=False,
    )


@app.command()
def logout() -> None:
    """Revoke your personal token on the server and forget it here."""
    from siteflow.api_client import ApiError, call, forget_credentials, load_credentials

    try:
        creds = load_credentials()
    except ApiError as exc:
        raise fail(str(exc)) from None
    try:
        call("DELETE", "/api/tokens/current", creds=creds)
        said = "token revoked"
    except ApiError as exc:
        said = f"the server did not revoke the token ({exc})"
    forget_credentials()
    console.print(f"logged out: {said}; the local copy is deleted", markup=False, highlight=False)


@app.command()
def whoami() -> None:
    """Who your personal token acts as."""
    from siteflow.api_client import ApiError, call, load_credentials

    try:
        me = call("GET", "/api/me", creds=load_credentials())
    except ApiError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{me['name']} <{me['email']}> ({', '.join(me['roles'])}); "
        f"token valid until {me['expires_at'][:16]} UTC",
        markup=False,
        highlight=False,
    )


def read_plan_file(path: Path, night: str | None = None) -> Any:
    """A plan file as the typed form; its runbook may be a file next to it, and its window may be
    moved to another local date (``--date``)."""
    from datetime import UTC, datetime

    from models.upgrade_plan import UpgradePlanIn, booked_for, resolve_runbook

    raw = load_structured(path)
    if not isinstance(raw, dict):
        raise fail(f"{path} must hold a mapping (see examples/upgrade-plan.yaml)")
    try:
        raw = booked_for(raw, night, datetime.now(UTC))
        return UpgradePlanIn.model_validate(resolve_runbook(raw, path.parent))
    except ValidationError as exc:
        raise fail(validation_message(exc).replace("nothing was started", "nothing was planned")) from None
    except ValueError as exc:
        raise fail(str(exc)) from None


@upgrade_app.command("plan")
def upgrade_plan(
    file: Annotated[
        Path, typer.Argument(help="Upgrade plan as YAML or JSON (see examples/upgrade-plan.yaml)")
    ],
    start_now: Annotated[
        bool, typer.Option("--start-now", help="Start its window run now instead of at the nightly cron")
    ] = False,
    night: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Book it for another local start date instead of the file's window.date: "
            "YYYY-MM-DD, 'today' or 'tomorrow' (site clock)",
        ),
    ] = None,
) -> None:
    """Book an upgrade for its night; overlaps on an element, blackout dates, a passed deadline and a
    window too short for one element are refused."""
    from siteflow.api_client import ApiError, call, load_credentials

    plan = read_plan_file(file, night)
    try:
        out = call(
            "POST",
            "/api/windows",
            {"plan": plan.model_dump(mode="json"), "start_now": start_now},
            load_credentials(),
        )
    except ApiError as exc:
        problems = "".join(f"\n  - {p}" for p in exc.body.get("problems", []))
        raise fail(f"not planned: {exc}{problems}") from None
    console.print(f"{out['summary']}; {out['elements']} element(s)", markup=False, highlight=False)
    console.print(f"  workspace: {out['workspace_url']}", markup=False, highlight=False, soft_wrap=True)
    if out["started"]:
        console.print(
            f"started window {out['window_id']}; "
            f"follow it with `siteflow upgrade status {out['window_id']} --watch`",
            markup=False,
        )


@upgrade_app.command("start")
def upgrade_start(window: Annotated[str, typer.Argument(help="Window id")]) -> None:
    """Start a booked window's run now (it still waits for the window's start time), as its PM."""
    from siteflow.api_client import ApiError, call, load_credentials

    try:
        out = call("POST", f"/api/windows/{window}/start", creds=load_credentials())
    except ApiError as exc:
        raise fail(f"not started: {exc}") from None
    console.print(
        f"started window {window}; follow it with `siteflow upgrade status {window} --watch`", markup=False
    )
    if isinstance(out, dict) and out.get("workspace_url"):
        console.print(f"  workspace: {out['workspace_url']}", markup=False, highlight=False, soft_wrap=True)


def _window_table(row: Any) -> Table:
    from rich import box
    from rich.table import Table

    from siteflow.site_time import site_time

    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"{row.id} — {row.title} · {row.state} · deadline {site_time(row.deadline, row.timezone)}",
    )
    _id_column(table, "element")
    _text_columns(table, "phase", "decision", "decided by", "outcome", "before", "after")
    for e in row.elements:  # a decision shows as soon as it is recorded, before it is carried out
        table.add_row(
            e["element"],
            e["phase"],
            e.get("decision") or "",
            (e.get("decided_by") or "") + (f" ({e['door']})" if e.get("door") else ""),
            e.get("outcome") or "",
            e.get("version_before") or "",
            e.get("version_after") or "",
        )
    return table


@upgrade_app.command("status")
def upgrade_status(
    window: Annotated[str, typer.Argument(help="Window id")],
    watch: Annotated[bool, typer.Option(help="Refresh every 2 s until the window completes")] = False,
) -> None:
    """A window's elements by phase, and the gates it waits at."""
    _ready_db()
    from rich.live import Live

    from siteflow.queries import list_gates, list_windows

    def render() -> tuple[Table, Any]:
        rows = list_windows(window)
        if not rows:
            raise fail(f"no upgrade window {window!r}; `siteflow upgrade list` shows them")
        table = _window_table(rows[0])
        open_gates = list_gates(window)
        if open_gates:
            # one gate a line: a gate id is copied into `gates decide`, so it must not break
            table.caption = "waiting at:\n" + "\n".join(f"{g.key} {g.id}" for g in open_gates)
        return table, rows[0]

    table, row = render()
    if not watch:
        console.print(table)
        return
    with Live(table, console=console.rich, refresh_per_second=1) as live:
        while row.state not in ("completed", "cancelled"):
            time.sleep(2)
            table, row = render()
            live.update(table)


@upgrade_app.command("list")
def upgrade_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Windows with each element's outcome and who decided it."""
    _ready_db()
    from rich.table import Table

    from siteflow.queries import as_json as dump
    from siteflow.queries import list_windows

    rows = list_windows()
    if as_json:
        print(json.dumps(dump(rows), ensure_ascii=False, indent=2))
        return
    from rich import box

    table = Table(box=box.SIMPLE_HEAD)
    _id_column(table, "window")
    _text_columns(table, "night", "state", "elements")
    for r in rows:
        outcomes = "\n".join(  # one element a line
            f"{e['element']}: {e.get('outcome') or e['phase']}"
            + (f" by {e['decided_by']}" if e.get("decided_by") else "")
            for e in r.elements
        )
        table.add_row(r.id, f"{r.local_date} {r.timezone}", r.state, outcomes)
    console.print(table)


def _read_password_stdin() -> str:
    """The password as piped in (one trailing newline dropped); never echoed, never an argument
    (arguments show in `ps` and shell history)."""
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Option(help="Full name, as signatures will show it")],
    email: Annotated[str, typer.Option(help="Sign-in email; one account per email")],
    role: Annotated[list[StaffRole], typer.Option("--role", help="A role; repeat for several")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from standard input; else a set-password link is mailed",
        ),
    ] = False,
) -> None:
    """Add a staff account (host admin).

    Without --password-stdin its owner is mailed a single-use link to set the password;
    nothing secret is printed. One email is one account: a second `add` is refused.
    """
    from siteflow.identity.audit import host_admin
    from siteflow.identity.passwords import WeakPassword
    from siteflow.identity.users import IdentityError, NewUser, add_user

    try:
        new = NewUser(name=name, email=email, roles=role)
    except ValidationError as exc:
        lines = [f"  - {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise fail("not added:\n" + "\n".join(lines)) from None
    password = _read_password_stdin() if password_stdin else None
    _ready_db()
    try:
        change = add_user(new, password, host_admin())
    except (IdentityError, WeakPassword) as exc:
        raise fail(f"not added: {exc}") from None
    user = change.user
    console.print(
        f"added {user.name} <{user.email}> ({', '.join(user.roles)}), id {user.id}",
        markup=False,
        highlight=False,
    )
    if change.link_mailed:
        console.print(
            f"a single-use link to set the password is queued for {user.email} "
            "(the outbox relay of `siteflow up` sends it)",
            markup=False,
            highlight=False,
        )
    else:
        console.print(f"{user.email} can sign in now", markup=False, highlight=False)


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Staff accounts with their roles and status (active, invited, disabled). Host admin."""
    _ready_db()
    from rich.table import Table

    from siteflow.identity.users import list_users

    users = list_users()
    if as_json:
        print(json.dumps([u.model_dump(mode="json") for u in users], ensure_ascii=False, indent=2))
        return
    table = Table(caption="--json adds when each account was made, set its password, was disabled")
    table.add_column("id", no_wrap=True)  # ids and emails are for copying: never cut short
    for column in ("email", "name", "roles", "status"):
        table.add_column(column, overflow="fold")
    for u in users:
        table.add_row(u.id, u.email, u.name, ", ".join(u.roles), u.status)
    console.print(table)


@users_app.command("disable")
def users_disable(email: Annotated[str, typer.Argument(help="The account's email")]) -> None:
    """Disable an account (host admin): it cannot sign in, and its sessions and links end now."""
    _ready_db()
    from siteflow.identity.audit import host_admin
    from siteflow.identity.users import IdentityError, disable_user

    try:
        change = disable_user(email, host_admin())
    except IdentityError as exc:
        raise fail(str(exc)) from None
    if change.unchanged:
        console.print(f"{change.user.email} was already disabled", markup=False, highlight=False)
        return
    console.print(
        f"disabled {change.user.email}; {change.sessions_ended} session(s) ended",
        markup=False,
        highlight=False,
    )


@users_app.command("reset")
def users_reset(email: Annotated[str, typer.Argument(help="The account's email")]) -> None:
    """Reset a password (host admin): the old one stops working, sessions end, a link is mailed.

    The link is single-use and expires (SITEFLOW_RESET_LINK_MINUTES).
    """
    _ready_db()
    from siteflow.identity.audit import host_admin
    from siteflow.identity.users import IdentityError, reset_user

    try:
        change = reset_user(email, host_admin())
    except IdentityError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"reset {change.user.email}: {change.sessions_ended} session(s) ended; a single-use link to set a "
        "new password is queued (the outbox relay of `siteflow up` sends it)",
        markup=False,
        highlight=False,
    )


@app.command()
def audit(
    first: Annotated[
        str,
        typer.Argument(
            help="Project code, upgrade window id or incident key; or 'verify', 'checkpoint' or 'keys'"
        ),
    ],
    code: Annotated[
        str | None,
        typer.Argument(
            help="Project code, window id or incident key after 'verify' or 'checkpoint'; "
            "'rotate' after 'keys'"
        ),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="json or html")] = "json",
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout")] = None,
    witness: Annotated[
        list[Path] | None,
        typer.Option(
            "--witness",
            help="With verify: a witnessed mail (.eml) or checkpoints file whose signed heads must "
            "still be in the chain (repeatable)",
        ),
    ] = None,
) -> None:
    """`siteflow audit CODE --format json|html` prints the story; `siteflow audit verify CODE
    [--witness FILE]` checks it; `siteflow audit checkpoint [CODE]` publishes signed heads;
    `siteflow audit keys [rotate]` lists or rotates the signing keys."""
    _ready_db()
    from siteflow import audit_checkpoints, audit_report

    try:
        if first == "verify":
            if not code:
                raise fail("usage: siteflow audit verify CODE [--witness FILE]")
            witnesses = tuple(w for path in witness or [] for w in audit_checkpoints.read_witnesses(path))
            problems, notes = audit_report.verify_with_notes(code, witnesses)
            if problems:
                for p in problems:
                    err.print(f"[bold red]TAMPERED[/] {code}: {p}", markup=True, highlight=False)
                raise typer.Exit(3)
            console.print(f"{code}: audit trail verified", markup=False, highlight=False)
            for note in notes:
                console.print(f"  {note}", markup=False, highlight=False)
            return
        if first == "checkpoint":
            _audit_checkpoint(code)
            return
        if first == "keys":
            _audit_keys(code)
            return
        if format not in ("json", "html"):
            raise fail("--format must be json or html")
        report = audit_report.build(first)
    except audit_report.UnknownSubject as exc:
        raise fail(str(exc)) from None
    except audit_checkpoints.WitnessRefused as exc:
        raise fail(f"witness refused: {exc}") from None
    text = (
        json.dumps(report, ensure_ascii=False, indent=2)
        if format == "json"
        else audit_report.render_html(report)
    )
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text + "\n")


def _audit_checkpoint(code: str | None) -> None:
    """Sign and publish the head of each chain (or one) that verifies; a broken one is named and
    left unsigned, so a checkpoint never vouches for a rewritten chain. Exit 3 if any was broken."""
    from siteflow import audit_chain, audit_checkpoints, audit_keys
    from siteflow.db import session_scope

    broken = False
    with session_scope() as session:
        streams = [code] if code else audit_checkpoints.streams(session)
        keyring = audit_keys.load_keyring()
        for stream in streams:
            problems = audit_chain.verify(session, stream, keyring) + audit_checkpoints.check(
                session, stream, (), keyring
            )
            if problems:
                broken = True
                err.print(
                    f"TAMPERED {stream}: {problems[0]} — not checkpointed", markup=False, highlight=False
                )
                continue
            cp = audit_checkpoints.sign_head(session, stream, "checkpoint")
            if cp is None:
                err.print(f"{stream}: no audit chain", markup=False, highlight=False)
                continue
            console.print(
                f"{stream}: record #{cp.seq} {cp.hash} signed by {cp.key_id} at {cp.signed_at}",
                markup=False,
                highlight=False,
            )
    console.print(f"published in {audit_checkpoints.checkpoints_file()}", markup=False, highlight=False)
    if broken:
        raise typer.Exit(3)


def _audit_keys(action: str | None) -> None:
    """List the keyring (public keys and validity), or rotate: retire the current key, make a new one."""
    from siteflow import audit_keys

    if action not in (None, "rotate"):
        raise fail("usage: siteflow audit keys [rotate]")
    where = audit_keys.keys_dir()
    if action == "rotate":
        old, new = audit_keys.rotate(where)
        if old is not None:
            console.print(f"retired {old.key_id} (it still verifies what it signed)", markup=False)
        console.print(f"signing with {new.key_id} from now on", markup=False)
    keyring = audit_keys.load_keyring(where)
    if not keyring.keys:
        console.print("no signing key yet: the first record appended makes one", markup=False)
    for k in keyring.keys:
        until = f"retired {k.retired_at.isoformat()}" if k.retired_at else "current"
        console.print(
            f"{k.key_id}  valid from {k.valid_from.isoformat()}  {until}", markup=False, highlight=False
        )
    console.print(f"keyring: {where / audit_keys.KEYRING}", markup=False, highlight=False)


@demo_app.command("engineering")
def demo_engineering(
    file: Annotated[Path, typer.Option(help="Sample project form")] = Path("examples/project.yaml"),
) -> None:
    """Run a complete sample project, answering every gate as scripted people would."""
    from siteflow.demo import run_engineering_demo

    raw = load_structured(file)
    try:
        code = run_engineering_demo(raw, say=lambda m: console.print(m))
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[bold green]demo finished:[/] project {code} completed. "
        f"Try `siteflow audit {code} --format html --output audit.html`, or its handover package "
        f"(ENG-29): `siteflow handover {code} --output {code}.zip`, then "
        f"`siteflow handover verify {code}.zip`. "
        "The construction-department contact's copies of the survey reports (ENG-8) are in the mail folder."
    )


@demo_app.command("upgrade")
def demo_upgrade(
    file: Annotated[Path, typer.Option(help="Sample plan")] = Path("examples/upgrade-plan.yaml"),
    minutes: Annotated[float, typer.Option(help="Minutes from now to the decision deadline")] = 2.5,
) -> None:
    """A sample upgrade window on simulated elements: committed, rolled back, rolled back at the deadline."""
    from siteflow.upgrade_demo import run_upgrade_demo

    raw = load_structured(file)
    try:
        window = run_upgrade_demo(raw, file.parent, minutes, say=lambda m: console.print(m))
    except (RuntimeError, ValueError) as exc:
        raise fail(str(exc)) from None
    from rich.table import Table

    table = Table()
    _id_column(table, "element")
    _text_columns(table, "outcome", "decided by", "before", "after", "comparison after rollback")
    for e in window["elements"]:
        table.add_row(
            e["element"],
            e.get("outcome") or "",
            e.get("decided_by") or "",
            e.get("version_before") or "",
            e.get("version_after") or "",
            "; ".join(e.get("differences") or [])
            or ("no difference" if e.get("outcome") == "rolled-back" else ""),
        )
    console.print(table)
    console.print(
        f"[bold green]demo finished:[/] window {window['id']} completed. "
        f"Try `siteflow audit {window['id']} --format html --output audit.html`."
    )


@demo_app.command("incident")
def demo_incident(
    output: Annotated[
        Path | None, typer.Option(help="Where the month's HTML report goes (default: ~/.siteflow/reports/)")
    ] = None,
) -> None:
    """A critical incident phoned in at night, from the call to closure, then the month's report."""
    from siteflow.incidents.demo import run_incident_demo

    try:
        done = run_incident_demo(say=lambda m: console.print(m, markup=False, highlight=False), output=output)
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[bold green]demo finished:[/] incident {done.key} closed, its run Completed. "
        f"Try `siteflow audit {done.key}` or `siteflow report incidents --month {done.report.month}`."
    )


report_app.command("incidents")(report_incidents)  # siteflow/commands/incidents.py
_add_handover()


if __name__ == "__main__":
    app()
