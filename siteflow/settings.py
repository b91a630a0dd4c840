"""One settings object for the whole shell, read lazily.

Importing a flow in a test must never need environment variables, so nothing reads the
environment at import time: call :func:`get_settings` where a value is needed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where siteflow keeps its state and how it reaches its services.

    Every field can be set with a ``SITEFLOW_`` environment variable, e.g.
    ``SITEFLOW_DATABASE_URL=postgresql+psycopg://127.0.0.1/siteflow``.
    """

    model_config = SettingsConfigDict(env_prefix="SITEFLOW_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".siteflow")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of siteflow's own tables; SQLite under home when unset.",
    )
    prefect_host: str = "127.0.0.1"
    prefect_port: int = 4200
    prefect_api_url: str | None = Field(
        default=None,
        description="An existing Prefect API to use instead of the embedded server.",
    )
    prefect_auth_string: SecretStr | None = Field(
        default=None,
        description="The credential in front of Prefect's API, `user:password` (what the Prefect UI "
        "asks for); made and kept in home/prefect-api-auth when unset (siteflow.prefect_credential).",
    )
    web_host: str = "127.0.0.1"
    web_port: int = 8470
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="none", description="none (the local catcher), starttls, or tls (implicit, port 465)"
    )
    smtp_username: str | None = Field(default=None, description="SMTP login, if the server wants one.")
    smtp_password: SecretStr | None = None
    mail_sender: str = "siteflow <siteflow@localhost>"
    support_address: str = Field(
        default="support@siteflow.localhost",
        description="Mail to this address opens an incident or is added to the one its subject names "
        "(issue #11, siteflow.incidents.mail_intake); the local catcher hands it to the intake.",
    )
    support_duty: str | None = Field(
        default=None,
        description="'Name <email>' of the duty owner for mail no contract names a duty person for, "
        "and for mail from unknown senders (INC-9: recorded and routed, never dropped).",
    )
    support_imap_url: str | None = Field(
        default=None,
        description="The support mailbox to read by IMAP (siteflow.incidents.mailbox_reader): "
        "imaps://user@host[:993]/INBOX (TLS), imap://user@host[:143]/INBOX (STARTTLS, required) or "
        "imap+plain://user@127.0.0.1:PORT/INBOX (no TLS: loopback only). No password in the URL.",
    )
    support_imap_password: SecretStr | None = Field(
        default=None, description="The support mailbox's password (or support_imap_password_file)."
    )
    support_imap_password_file: Path | None = Field(
        default=None,
        description="A file holding the support mailbox's password (read on every pass, so a changed "
        "password needs no restart); preferred to support_imap_password.",
    )
    support_imap_ca_file: Path | None = Field(
        default=None,
        description="PEM certificate(s) to trust for the support mailbox's TLS instead of the system's "
        "(a server with its own CA); the host name is checked either way.",
    )
    support_imap_poll_seconds: float = Field(
        default=30.0, gt=0, description="How often the support mailbox is looked at for unseen mail."
    )
    public_url: str | None = Field(
        default=None, description="Base URL of the web service as customers reach it (approval links)."
    )
    link_days: int = Field(
        default=30, description="Approval links of gates without a deadline expire after this."
    )
    runner_poll_seconds: float = Field(
        default=0.25, description="How often the served deployments look for resumed runs."
    )
    keeper_poll_seconds: float = Field(
        default=1.0,
        description="How often the gate keeper re-resumes decided gates whose run still waits.",
    )
    window_linger_seconds: float = Field(
        default=20.0,
        ge=0,
        description="An upgrade window whose elements all wait at their gates keeps its process this "
        "long before it suspends (a decision meanwhile is acted on within a fraction of a second).",
    )
    deadline_grace_seconds: float = Field(
        default=1.0,
        ge=0,
        description="The deadline default is recorded this long after the deadline, so a decision "
        "stamped before the deadline that is still on its way wins (UPG-10).",
    )
    reminder_before_hours: float = Field(
        default=24.0, ge=0, description="Remind undecided people this long before a gate's deadline"
    )
    escalate_after_hours: float = Field(
        default=48.0,
        ge=0,
        description="A customer who has not answered a gate after this long is escalated to the PM",
    )
    upgrade_cron: str = Field(
        default="0 1 * * *", description="When the nightly-upgrade-window deployment starts (site time)."
    )
    upgrade_timezone: str = Field(default="Asia/Shanghai", description="Time zone of upgrade_cron.")
    blackout_calendar: Path | None = Field(
        default=None,
        description="YAML list of dates/periods when no upgrade may be planned (holidays, network "
        "freezes); see examples/blackout-calendar.yaml.",
    )
    simulator_time_scale: float = Field(
        default=1.0, description="Multiplies every simulated step duration (the demo compresses time)."
    )
    ssh_username: str | None = Field(default=None, description="SSH login for real elements.")
    ssh_password: SecretStr | None = Field(default=None, description="SSH password (or use ssh_key_file).")
    ssh_key_file: Path | None = Field(default=None, description="SSH private key for real elements.")
    ssh_known_hosts: Path | None = Field(
        default=None, description="known_hosts file to check element host keys; unset = not checked."
    )
    ssh_connect_timeout: float = 15.0
    session_idle_hours: float = Field(
        default=12.0, gt=0, description="A staff sign-in session unused this long ends (sign in again)."
    )
    session_max_hours: float = Field(
        default=168.0, gt=0, description="A staff sign-in session ends this long after sign-in, used or not."
    )
    token_days: float = Field(
        default=30.0,
        gt=0,
        description="A personal API token (`siteflow login`) expires this long after login.",
    )
    reset_link_minutes: float = Field(
        default=60.0,
        gt=0,
        description="A mailed password-reset link (`siteflow users reset`) expires after this.",
    )
    invite_link_hours: float = Field(
        default=72.0, gt=0, description="The set-password link mailed to a new account expires after this."
    )
    clocks_refresh_minutes: float = Field(
        default=5.0,
        gt=0,
        description="INC-4: the gate keeper publishes a running incident's clocks artifact again this "
        "often without an event, and at once when a clock crosses its 50 %, 75 % or breach mark.",
    )
    outage_threshold_seconds: float = Field(
        default=15.0,
        ge=0,
        description="INC-5: an outage counts when it lasts longer than this (exactly 15 s does not).",
    )
    signin_failure_limit: int = Field(
        default=10,
        ge=1,
        description="Failed sign-ins for one email from one address within signin_window_minutes before "
        "that email is refused from that address (429); other addresses are not affected.",
    )
    signin_address_failure_limit: int = Field(
        default=50,
        ge=1,
        description="Failed sign-ins from one address, any emails, within signin_window_minutes before the "
        "address is refused (429).",
    )
    signin_window_minutes: int = Field(
        default=15, ge=1, description="The window over which failed sign-ins are counted."
    )
    audit_keys_dir: Path | None = Field(
        default=None,
        description="Where the Ed25519 keys that sign the audit chain live (keyring.json and the current "
        "private key, mode 0600); home/audit/keys when unset. Never in the database.",
    )
    link_keys_dir: Path | None = Field(
        default=None,
        description="Where the keys that mailed-link tokens are derived from live (one file per key, mode "
        "0600); home/link-keys when unset. Every process that issues or mails links (flows, keeper, web, "
        "relay, CLI) must read the same directory: on several hosts, mount one shared writable volume there. "
        "Never in the database.",
    )
    link_key_hours: float = Field(
        default=24.0,
        ge=0,
        description="The relay retires the current link key after this long and makes a new one; a retired "
        "key is deleted once no unsent mail needs it, so a mailed token can no longer be derived from "
        "anything on the host. 0: never rotate automatically.",
    )
    audit_checkpoints_file: Path | None = Field(
        default=None,
        description="Where `siteflow audit checkpoint` and every witnessed mail publish signed chain heads "
        "(one JSON line each, appended); home/audit/checkpoints.jsonl when unset.",
    )

    presales_contact: str | None = Field(
        default=None,
        description='COM-5: the office\'s pre-sales manager ("Name <email>"), named when a staff comment '
        "to a customer discusses prices or product defects.",
    )
    sso_issuer: str | None = Field(
        default=None,
        description="Single sign-on: the OpenID Connect provider's issuer URL (e.g. "
        "https://login.example.com/realms/staff). Unset, staff sign in with passwords only.",
    )
    sso_client_id: str | None = Field(default=None, description="Single sign-on: siteflow's client id there.")
    sso_client_secret: SecretStr | None = Field(
        default=None, description="Single sign-on: siteflow's client secret (confidential client)."
    )
    sso_scopes: str = Field(default="openid email profile", description="Single sign-on: scopes asked for.")
    sso_label: str = Field(
        default="单点登录 / Single sign-on",
        description="Single sign-on: the button's text on the sign-in page.",
    )
    sso_require_verified_email: bool = Field(
        default=True,
        description="Single sign-on: accept an email only when the provider says it is verified "
        "(email_verified); turn off only for a provider that vouches for every email it sends.",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'siteflow.db'}"

    @property
    def resolved_prefect_api_url(self) -> str:
        if self.prefect_api_url:
            return self.prefect_api_url
        return f"http://{self.prefect_host}:{self.prefect_port}/api"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.web_host}:{self.web_port}").rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        """Cookies are marked Secure (and get the __Host- prefix) when people reach us over https."""
        return self.resolved_public_url.startswith("https://")

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and `siteflow up` change the environment)."""
    get_settings.cache_clear()
