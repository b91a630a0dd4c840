"""The audit witness each mail to a customer carries (issue #10 item 4).

A customer who keeps our mails holds, in each, the head of the project's audit chain as it
was when the mail left, signed with siteflow's key: no one at the contractor can take it
back, so a chain later cut short or rebuilt no longer holds the witnessed record, and
``siteflow audit verify CODE --witness MAIL.eml`` says so. The witness is published as a
checkpoint too (:mod:`siteflow.audit_checkpoints`).

It travels twice, kept small: a machine-readable header (``X-Siteflow-Audit-Witness``: the
record number, hash, time, key id and signature) and a three-line block at the end of the
text, which names the record and the hash so a person can read it out over the phone.
"""

from __future__ import annotations

from siteflow.audit_checkpoints import Checkpoint
from siteflow.mail_body import literal
from siteflow.site_time import site_time


def block(witness: Checkpoint, zone: str | None) -> str:
    """The Markdown appended to the mail's body (rendered into both the text and HTML parts);
    the time on the subject's clock, UTC beside it, as every time in a mail."""
    return (
        "\n\n---\n\n"
        f"审计见证 / Audit witness: {literal(witness.stream)} 记录 / record #{witness.seq}, "
        f"{site_time(witness.signed, zone)}  \n"
        f"`{witness.hash}` (签名密钥 / signed by key {witness.key_id})  \n"
        "请保留此邮件，它可证明我们的项目记录此后未被改写。/ "
        "Please keep this mail: it lets anyone check that our records of this project are not rewritten.\n"
    )
