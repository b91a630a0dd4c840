"""Severity from the questionnaire (INC-1), emergency (INC-2), the customer's level (INC-3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.incident_contract import Severity
from models.incident_input import IncidentIn
from siteflow.incidents.refusals import IncidentRefused
from siteflow.incidents.severity import (
    Answer,
    Proposal,
    SeverityQuestionnaire,
    is_emergency,
    propose_severity,
    settle_severity,
)
from tests.incident_samples import incident

YES = Answer.YES

# Every example INC-1 gives, as the questionnaire asks it, with the level INC-1 puts it at.
INC1_EXAMPLES = [
    ("product inoperable: total outage", {"service_down_totally": YES}, Proposal.CRITICAL),
    ("product inoperable: partial outage", {"service_down_partly": YES}, Proposal.CRITICAL),
    (
        "capacity reduced so the expected load cannot be carried",
        {"capacity_below_load": YES},
        Proposal.CRITICAL,
    ),
    ("loss of an emergency capability (119/911)", {"emergency_calls": YES}, Proposal.CRITICAL),
    ("safety hazard or security breach risk", {"safety_security": YES}, Proposal.CRITICAL),
    ("reduced capacity that still carries the load", {"capacity_reduced": YES}, Proposal.MAJOR),
    ("loss of management visibility or diagnostics", {"management_lost": YES}, Proposal.MAJOR),
    ("repeated degradation of an essential component", {"repeated_degradation": YES}, Proposal.MAJOR),
    ("degraded ability to raise alarms", {"alarms_degraded": YES}, Proposal.MAJOR),
    ("anything less: function not or only slightly impaired", {}, Proposal.MINOR),
]


@pytest.mark.parametrize(("example", "answers", "level"), INC1_EXAMPLES, ids=[e[0] for e in INC1_EXAMPLES])
def test_every_inc1_example_maps_to_its_level(
    example: str, answers: dict[str, Answer], level: Proposal
) -> None:
    proposal = propose_severity(SeverityQuestionnaire(**answers))
    assert proposal.proposal is level, example
    assert proposal.severity is Severity(level.value)


def test_a_critical_answer_outranks_major_ones() -> None:
    proposal = propose_severity(SeverityQuestionnaire(capacity_reduced=YES, emergency_calls=YES))
    assert proposal.proposal is Proposal.CRITICAL


@pytest.mark.parametrize(
    ("answers", "candidates"),
    [
        ({"service_down_partly": Answer.UNSURE}, [Severity.CRITICAL, Severity.MAJOR, Severity.MINOR]),
        ({"safety_security": Answer.UNSURE, "management_lost": YES}, [Severity.CRITICAL, Severity.MAJOR]),
        ({"alarms_degraded": Answer.UNSURE}, [Severity.MAJOR, Severity.MINOR]),
        ({"none_fits": True}, [Severity.MAJOR, Severity.MINOR]),
    ],
)
def test_unsure_answers_are_ambiguous_and_the_customers_level_is_final(
    answers: dict[str, object], candidates: list[Severity]
) -> None:
    proposal = propose_severity(SeverityQuestionnaire.model_validate(answers))
    assert proposal.proposal is Proposal.AMBIGUOUS and proposal.severity is None
    assert proposal.candidates == candidates
    with pytest.raises(IncidentRefused, match="INC-3: no severity level clearly applies"):
        settle_severity(proposal, None)
    for level in Severity:  # INC-3: whatever the customer says is final
        assert settle_severity(proposal, level) is level


def test_a_clear_level_is_not_overridden_by_the_customer() -> None:
    proposal = propose_severity(SeverityQuestionnaire(emergency_calls=YES))
    assert settle_severity(proposal, None) is Severity.CRITICAL
    with pytest.raises(IncidentRefused, match="INC-3: the rules clearly make this critical"):
        settle_severity(proposal, Severity.MAJOR)


def test_emergency_is_every_critical_and_a_major_at_an_important_customer() -> None:
    assert is_emergency(Severity.CRITICAL, important_customer=False)
    assert is_emergency(Severity.MAJOR, important_customer=True)
    assert is_emergency(Severity.MAJOR, important_customer=False, important_market=True)
    assert not is_emergency(Severity.MAJOR, important_customer=False)


@settings(max_examples=60, deadline=None)
@given(
    answers=st.fixed_dictionaries(
        {
            name: st.sampled_from(list(Answer))
            for name in SeverityQuestionnaire.model_fields
            if name != "none_fits"
        }
    ),
    important=st.booleans(),
    market=st.booleans(),
    customer=st.sampled_from(list(Severity)),
)
def test_emergency_is_never_minor(
    answers: dict[str, Answer], important: bool, market: bool, customer: Severity
) -> None:
    """INC-2, over any answers and any customer level."""
    level = settle_severity(
        p := propose_severity(SeverityQuestionnaire(**answers)), customer if p.severity is None else None
    )
    if is_emergency(level, important_customer=important, important_market=market):
        assert level is not Severity.MINOR
    assert is_emergency(Severity.MINOR, important_customer=True, important_market=True) is False


def test_intake_refuses_a_minor_emergency_and_a_critical_non_emergency() -> None:
    with pytest.raises(ValueError, match="INC-2: an emergency can never be minor"):
        incident(severity="minor", emergency=True)
    with pytest.raises(ValueError, match="INC-2: every critical incident is an emergency"):
        incident(severity="critical", emergency=False)
    assert isinstance(incident(severity="critical", emergency=True), IncidentIn)
