"""Severity and emergency from a short questionnaire (INC-1, INC-2, INC-3). No I/O.

The questions are INC-1's examples, one each, answered yes, no or not sure. The rules:

- any critical example answered *yes* → **critical** (INC-1: product inoperable, totally or
  partly; capacity below the expected load; an emergency capability such as 119/911 lost; a
  safety hazard or security breach risk);
- else any critical example *not sure* → **ambiguous** between critical and what the rest
  says: no level clearly applies, the customer is asked and their level is final (INC-3);
- else any major example *yes* → **major** (reduced capacity that still carries the load;
  management visibility or diagnostics lost; repeated degradation of an essential component;
  degraded ability to raise alarms);
- else any major example *not sure*, or "none of these describes it" → **ambiguous**;
- else **minor** (INC-1: anything less).

A level that clearly applies must be used (the source: 明确属于某一严重级别 … 就必须使用): the
customer's level is taken only where the rules are ambiguous, and refused otherwise.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field

from models.incident_contract import Severity
from models.incident_input import (
    CRITICAL_QUESTIONS,
    MAJOR_QUESTIONS,
    Answer,
    Question,
    SeverityQuestionnaire,
)
from siteflow.incidents.refusals import IncidentRefused

__all__ = [
    "CRITICAL_QUESTIONS",
    "MAJOR_QUESTIONS",
    "Answer",
    "Proposal",
    "Question",
    "SeverityProposal",
    "SeverityQuestionnaire",
    "is_emergency",
    "propose_severity",
    "settle_severity",
]


class Proposal(enum.StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    AMBIGUOUS = "ambiguous"  # no level clearly applies: ask the customer (INC-3)


class SeverityProposal(BaseModel):
    """What the rules propose, and why: the questions that decided it or left it open."""

    model_config = ConfigDict(frozen=True)

    proposal: Proposal
    candidates: list[Severity] = Field(description="Levels the customer may choose between when ambiguous")
    because: list[Question] = Field(description="The answers that decided (or left open) the level")

    @property
    def severity(self) -> Severity | None:
        """The level when one clearly applies; None when the customer must be asked."""
        return None if self.proposal is Proposal.AMBIGUOUS else Severity(self.proposal.value)

    @property
    def affects_operation(self) -> bool:
        """The fault affects normal operation (COM-8): any critical or major example applies."""
        return self.proposal in (Proposal.CRITICAL, Proposal.MAJOR, Proposal.AMBIGUOUS)


def propose_severity(answers: SeverityQuestionnaire) -> SeverityProposal:
    """INC-1/INC-3: the level the answers clearly give, or *ambiguous* with the candidates."""
    critical_yes = [q for q in CRITICAL_QUESTIONS if answers.answer(q) is Answer.YES]
    if critical_yes:
        return SeverityProposal(
            proposal=Proposal.CRITICAL, candidates=[Severity.CRITICAL], because=critical_yes
        )
    major_yes = [q for q in MAJOR_QUESTIONS if answers.answer(q) is Answer.YES]
    critical_unsure = [q for q in CRITICAL_QUESTIONS if answers.answer(q) is Answer.UNSURE]
    if critical_unsure:
        floor = [Severity.MAJOR] if major_yes else [Severity.MAJOR, Severity.MINOR]
        return SeverityProposal(
            proposal=Proposal.AMBIGUOUS, candidates=[Severity.CRITICAL, *floor], because=critical_unsure
        )
    if major_yes:
        return SeverityProposal(proposal=Proposal.MAJOR, candidates=[Severity.MAJOR], because=major_yes)
    major_unsure = [q for q in MAJOR_QUESTIONS if answers.answer(q) is Answer.UNSURE]
    if major_unsure or answers.none_fits:
        return SeverityProposal(
            proposal=Proposal.AMBIGUOUS, candidates=[Severity.MAJOR, Severity.MINOR], because=major_unsure
        )
    return SeverityProposal(proposal=Proposal.MINOR, candidates=[Severity.MINOR], because=[])


def settle_severity(proposal: SeverityProposal, customer_level: Severity | None) -> Severity:
    """INC-3: the rules' level where one clearly applies, else the customer's, which is final.

    Refused: an ambiguous proposal without the customer's level (ask them first), and a
    customer level that contradicts a level the rules clearly give.
    """
    clear = proposal.severity
    if clear is None:
        if customer_level is None:
            raise IncidentRefused(
                "INC-3",
                "no severity level clearly applies (between "
                + ", ".join(c.value for c in proposal.candidates)
                + "): ask the customer, whose level is final",
            )
        return customer_level
    if customer_level is not None and customer_level is not clear:
        raise IncidentRefused(
            "INC-3",
            f"the rules clearly make this {clear.value} ("
            + "; ".join(q.value for q in proposal.because)
            + f"), so it cannot be {customer_level.value}: the customer's level is taken only where "
            "no level clearly applies",
        )
    return clear


def is_emergency(severity: Severity, *, important_customer: bool, important_market: bool = False) -> bool:
    """INC-2: every critical incident, and a major one at an important customer or market;
    never a minor one."""
    if severity is Severity.CRITICAL:
        return True
    if severity is Severity.MAJOR:
        return important_customer or important_market
    return False
