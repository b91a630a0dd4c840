"""Wait at a gate without holding a process (DESIGN.md: suspend re-runs the flow from the top).

The flow trusts our gate table, not the raw resume input: when a decision came through
another door (CLI, email, deadline) the table already says so and the input is ignored;
when a PM answered in the Prefect UI, the answer goes through the one decision path and
may be refused, in which case the flow suspends again under a new pause key.

Prefect resumes whatever pause a run is at, so a resume sent for one gate can land on the
next one when the run has moved on meanwhile (a slow request, or two resumers racing). Each
form therefore carries the id of its gate as a constant: Prefect refuses an answer for any
other gate against the form's schema, in the same transaction as the resume.

An upgrade window waits at many gates at once (one per element, UPG-8): :func:`await_any_gate`
suspends on one form whose ``gate`` field lists every gate still open, so whichever is decided
first, through whichever door, resumes the run — and an answer for a gate that is no longer
waited on is refused by Prefect the same way.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, Self, cast
from uuid import UUID

import pydantic
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.input.actions import read_flow_run_input

from models.gate_data import GATE_DATA_MODELS
from models.gate_spec import GateSpec
from tasks import side_effect
from tasks.gates import GateRead, open_gate, read_gate, record_ui_decision


class GateAnswer(RunInput):
    """Base of every gate form. Loads the raw answer: validation happens in `decide`,
    so a bad form is refused with a message instead of crashing the resumed run."""

    _raw: dict[str, Any] = pydantic.PrivateAttr(default_factory=dict)

    @classmethod
    def load(cls, keyset: Any, flow_run_id: UUID | None = None) -> Self:
        ctx = FlowRunContext.get()
        run_id = flow_run_id or (ctx.flow_run.id if ctx and ctx.flow_run else None)
        value = read_flow_run_input(keyset["response"], flow_run_id=run_id)
        instance = cast(Self, cls.model_construct())
        instance._raw = dict(value) if isinstance(value, dict) else {}
        return instance

    @property
    def raw(self) -> dict[str, Any]:
        return self._raw


def form_for(spec: GateSpec, gate_id: str) -> type[GateAnswer]:
    """A typed form for the Prefect UI: the allowed decisions, the signer, and the gate's data."""
    choices = tuple(d.value for d in spec.decisions)
    fields: dict[str, Any] = {
        "gate": (
            Literal[gate_id],
            pydantic.Field(default=gate_id, description="The gate this answer is for (filled in)."),
        ),
        "decision": (Literal[choices], pydantic.Field()),
        "signer_name": (str, pydantic.Field(min_length=1)),
        "signer_email": (str, pydantic.Field(min_length=3)),
        "comment": (str, pydantic.Field(default="")),
    }
    if spec.data_model:
        fields["data"] = (GATE_DATA_MODELS[spec.data_model] | None, pydantic.Field(default=None))
    name = "".join(part.capitalize() for part in re.split(r"[-_]", spec.key)) + "Form"
    model: type[GateAnswer] = pydantic.create_model(name, __base__=GateAnswer, **fields)
    return model


def any_form(waiting: list[tuple[GateRead, GateSpec]]) -> type[GateAnswer]:
    """One form for several open gates: pick the gate (by its key, e.g. decision-ne-a), then
    decide it as on a single gate's form. The list is the gates open when the run suspended."""
    keys = tuple(gate.key for gate, _ in waiting)
    choices = tuple(dict.fromkeys(d.value for _, spec in waiting for d in spec.decisions))
    fields: dict[str, Any] = {
        "gate": (
            Literal[keys],
            pydantic.Field(description="Which gate you decide (listed above with its element)."),
        ),
        "decision": (Literal[choices], pydantic.Field()),
        "signer_name": (str, pydantic.Field(min_length=1)),
        "signer_email": (str, pydantic.Field(min_length=3)),
        "comment": (str, pydantic.Field(default="")),
    }
    model: type[GateAnswer] = pydantic.create_model("OpenGatesForm", __base__=GateAnswer, **fields)
    return model


def describe(spec: GateSpec, gate: GateRead, document_md: str) -> str:
    """Markdown shown above the form: what is decided, by whom, and the document itself."""
    who = " + ".join(f"{p.slot} ({'/'.join(r.value for r in p.roles)})" for p in spec.parties)
    signed = "".join(f"\n- already signed: {s.signer} ({s.slot}, {s.decision})" for s in gate.signatures)
    data = f"\n\nFill the **data** fields ({spec.data_model})." if spec.data_model else ""
    return (
        f"## {spec.title}\n\n**Rule:** {spec.rule} · **Decided by:** {who} · "
        f"**Allowed:** {', '.join(d.value for d in spec.decisions)}\n\n{spec.description}"
        f"{signed}{data}\n\nGive your name and the email listed for you on the project; the answer "
        f"is checked and recorded as yours. CLI: `siteflow gates decide {gate.id} --decision …`"
        + (f"\n\n---\n{document_md}" if document_md else "")
    )


WAIT_KEY = "decisions"  # pause keys of an open-gates wait: decisions-0, decisions-1, …


class WaitAnswer(pydantic.BaseModel):
    """What one open-gates pause of this run was resumed with."""

    pause_key: str
    answer: dict[str, Any]
    received_at: datetime | None = None  # when Prefect took the answer: the decision's stamp


@side_effect(name="read-wait-answers")
def read_wait_answers(flow_run_id: str) -> list[WaitAnswer]:
    """Every answer this run's open-gates pauses were resumed with, oldest first.

    All of them, not only the last one's: a person's Prefect-UI answer is only in Prefect's run
    input until a re-run passes it through the decision path, and nothing else tells a re-run
    which pause it was resumed from."""
    prefix = f"suspended-{WAIT_KEY}-"
    with get_client(sync_client=True) as client:
        inputs = client.filter_flow_run_input(
            flow_run_id=UUID(flow_run_id), key_prefix=prefix, limit=100_000, exclude_keys=set()
        )
    answers = []
    for item in inputs:
        if not item.key.endswith("-response"):
            continue
        value = item.decoded_value
        pause_key = item.key.removeprefix("suspended-").removesuffix("-response")
        if isinstance(value, dict):
            answers.append(WaitAnswer(pause_key=pause_key, answer=value, received_at=item.created))
    return sorted(answers, key=lambda a: int(a.pause_key.rsplit("-", 1)[-1]))


def take_open_gates_answers(gates: list[GateRead]) -> int:
    """Pass the Prefect-UI answers of this run's open-gates pauses through the decision path.

    An answer for a gate still open goes through the decision path (accepted or refused, and
    recorded; the source_ref makes replays in later re-runs no-ops). One for a gate decided by
    the time the re-run reads it is not used: the first decision won, and a resume that carried
    a recorded decision is one of those. Returns how many pauses were answered: the next key."""
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None, "runs inside a flow"
    run_id = str(ctx.flow_run.id)
    by_key = {gate.key: gate for gate in gates}
    answers = read_wait_answers(run_id)
    for wait in answers:
        gate = by_key.get(str(wait.answer.get("gate")))
        if gate is not None and not gate.closed:
            message = record_ui_decision(
                gate.id, wait.answer, source_ref=f"ui:{run_id}:{wait.pause_key}", at=wait.received_at
            )
            get_run_logger().info("gate %s: %s", gate.key, message)
    return len(answers)


def await_any_gate(waiting: list[tuple[GateRead, GateSpec]], attempt: int, description: str) -> None:
    """Suspend until any of these open gates is decided (the run then re-runs from the top).

    `attempt` numbers the pause (see :func:`take_open_gates_answers`); a Prefect-UI answer is
    recorded by the re-run, never trusted here.
    """
    suspend_flow_run(
        wait_for_input=any_form(waiting).with_initial_data(description=description),
        key=f"{WAIT_KEY}-{attempt}",
    )


def await_gate(subject: str, spec: GateSpec, document_md: str = "") -> GateRead:
    """Open the gate (once) and return its state when it is decided."""
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None, "await_gate runs inside a flow"
    run_id = str(ctx.flow_run.id)
    gate = open_gate(subject, run_id, spec)
    form = form_for(spec, gate.id)
    attempt = 0
    while not gate.closed:
        key = f"{spec.key}-{attempt}"
        answer = suspend_flow_run(
            wait_for_input=form.with_initial_data(description=describe(spec, gate, document_md)),
            key=key,
        )
        if answer.raw.get("gate", gate.id) == gate.id:
            message = record_ui_decision(gate.id, answer.raw, source_ref=f"ui:{run_id}:{key}")
        else:  # a schema restored without the constant let another gate's answer through
            message = f"ignored an answer meant for gate {answer.raw.get('gate')}"
        get_run_logger().info("gate %s: %s", spec.key, message)
        attempt += 1
        gate = read_gate(gate.id)
    return gate
