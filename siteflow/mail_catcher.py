"""Local SMTP catcher for development: every message becomes an .eml file under home/mail/.

Only for the embedded default; with an SMTP server configured siteflow sends there instead.

It is also the embedded default's **support mailbox** (issue #11): a message whose envelope
names the support address (``SITEFLOW_SUPPORT_ADDRESS``) is handed to the email intake
(:func:`siteflow.incidents.mail_intake.receive_mail`) inside the SMTP transaction, after its
.eml is written. An aiosmtpd handler rather than a watcher of the mail directory: the sender
learns the outcome in the SMTP reply (250 once the mail is kept in the database, 451 "try again"
when the database cannot take it, so the sending server retries and nothing is lost), there is
no second process polling files, and mail that siteflow itself sends (acknowledgements,
notices) is never read back as a report. With a real mail server, either point its delivery
for the support address at this port or let siteflow read the support mailbox there by IMAP
(``SITEFLOW_SUPPORT_IMAP_URL``, :mod:`siteflow.incidents.mailbox_reader`), which hands each
mail to the same intake.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

log = logging.getLogger(__name__)


class MaildirHandler:
    def __init__(self, directory: Path, support_address: str | None = None) -> None:
        self.directory = directory
        self.support_address = (support_address or "").strip().lower()
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(content)
        tmp.rename(self.directory / name)
        if self.support_address and any(r.lower() == self.support_address for r in envelope.rcpt_tos):
            return await self._to_support(content, envelope.mail_from or "")
        return "250 Message accepted for delivery"

    async def _to_support(self, content: bytes, mail_from: str) -> str:
        """Hand the mail to the email intake; 451 only when it could not even be kept."""
        from siteflow.incidents.mail_intake import receive_mail
        from siteflow.settings import get_settings

        try:
            result = await asyncio.to_thread(
                receive_mail, content, envelope_from=mail_from, settings=get_settings()
            )
        except Exception:
            log.exception("support mail from %s could not be taken", mail_from)
            return "451 4.3.0 Support intake unavailable, try again later"
        return f"250 Message accepted for delivery ({result.outcome.value})"


def start_catcher(directory: Path, host: str, port: int, support_address: str | None = None) -> Controller:
    controller = Controller(MaildirHandler(directory, support_address), hostname=host, port=port)
    controller.start()
    return controller


def main() -> None:
    from siteflow.settings import get_settings

    s = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    controller = start_catcher(s.mail_dir, s.smtp_host, s.smtp_port, s.support_address)
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
