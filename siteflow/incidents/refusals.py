"""The one refusal of the incident capability: a rule id and what to do, in plain words."""

from __future__ import annotations


class IncidentRefused(ValueError):
    """Something about an incident that cannot be accepted; nothing was changed.

    ``rule`` is the docs/process.md rule that refuses it (``INC-4``, ``COM-8`` …); the message starts
    with it, so a CLI line, a page or a log names the rule without knowing this class.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.reason = message
