"""How a signature's proof reads on a page: what an auditor may rely on (issue #9).

A signature names a person; its proof says what made siteflow believe it was them
(`models.gate_spec.Proof`). Pages and reports say it in words, Chinese first: a signature
recorded before proofs existed is "identity not verified" (item 9), a paper is "recorded by X
from a paper signed by Y" with its scan's hash (item 5) — never just a name, which would look
as good as a proven one.
"""

from __future__ import annotations

from models.gate_spec import Proof

PROOF_WORDS: dict[Proof, str] = {
    Proof.SESSION: "已登录工作台签署 / signed in to the workspace",
    Proof.TOKEN: "以个人令牌签署 / signed with a personal API token",
    Proof.MAILBOX: "通过发给本人的邮件链接签署 / through the link mailed to them",
    Proof.SYSTEM: "系统 / by the system",
    Proof.UNVERIFIED: "身份未经核实 / identity not verified",
}


def proof_words(proof: str, signer: str, recorded_by: str | None, scan_sha256: str | None) -> str:
    """One line for a signature's proof; an unknown value reads as not verified."""
    if proof == Proof.PAPER.value:
        by = recorded_by or "?"
        scan = f" · 扫描件 / scan SHA-256 {scan_sha256}" if scan_sha256 else ""
        zh = f"由 {by} 根据 {signer} 签署的纸质文件录入"
        return f"{zh} / recorded by {by} from a paper signed by {signer}{scan}"
    try:
        return PROOF_WORDS[Proof(proof)]
    except ValueError:
        return PROOF_WORDS[Proof.UNVERIFIED]
