"""Wait at a gate without holding a process (docs/architecture.md: suspend re-runs the flow from the top).

The flow trusts our gate table, not the raw resume input: when a decision came through
another door (workspace, CLI, email, deadline) the table already says so and the input is
ignored. The Prefect UI cannot say who pressed Resume (docs/architecture.md "Identity"), so its form asks
for no signer and sends people to the gate's page in siteflow's workspace; an answer typed
there anyway goes to the one decision path, is refused and recorded, and the flow suspends
again under a new pause key with the reason at the top of the form.

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
from typing import Any, Literal, Self, cast, get_args, get_origin
from uuid import UUID

import pydantic
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.input.actions import read_flow_run_input
from pydantic.fields import FieldInfo

from models.form_schema import FORM_CONFIG, model_title
from models.gate_data import GATE_DATA_MODELS
from models.gate_spec import GateSpec
from siteflow.links import gate_page
from tasks import side_effect
from tasks.gates import GateRead, UiAnswer, open_gate, read_gate, record_ui_decision

Choices = dict[str, tuple[str, ...]]
"""Values a form offers for a data field of this name, e.g. ``{"site_id": ("GZ-01", "GZ-02")}``:
the project's sites and contract items, known only when the gate opens."""


class GateAnswer(RunInput):
    """Base of every gate form. Loads the raw answer: what becomes of it is decided in
    `record_ui_decision`, so a bad form is refused with a message instead of crashing the run.

    Extra fields are let through (``extra="allow"``): an answer that names a signer through
    Prefect's API resumes the run and is refused and recorded like any other, instead of
    being turned away by Prefect unseen."""

    model_config = pydantic.ConfigDict(extra="allow", **FORM_CONFIG)

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


def with_choices(model: type[pydantic.BaseModel], choices: Choices) -> type[pydantic.BaseModel]:
    """The model as a form: a text field named in `choices` becomes a pick from its values,
    in nested models and lists of them too. Only the form's schema changes; answers are still
    validated by the gate's own model in the decision path."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kind = info.annotation
        if name in choices and choices[name] and kind is str:
            fields[name] = (Literal[choices[name]], _copied(info, pick=choices[name]))
        elif isinstance(kind, type) and issubclass(kind, pydantic.BaseModel):
            sub = with_choices(kind, choices)
            if sub is not kind:
                fields[name] = (sub, _copied(info))
        elif get_origin(kind) is list:
            (item,) = get_args(kind)
            if isinstance(item, type) and issubclass(item, pydantic.BaseModel):
                sub = with_choices(item, choices)
                if sub is not item:
                    fields[name] = (list[sub], _copied(info))  # type: ignore[valid-type]
    if not fields:
        return model
    derived: type[pydantic.BaseModel] = pydantic.create_model(
        model.__name__, __base__=model, __doc__=model.__doc__, **fields
    )
    return derived


def _copied(info: FieldInfo, pick: tuple[str, ...] = ()) -> FieldInfo:
    copy = FieldInfo.merge_field_infos(info)
    copy.annotation = None
    if pick:  # a list to pick from, even of one value (a lone constant shows as a text box)
        copy.json_schema_extra = {"enum": list(pick)}
    return copy


def _decision_field(choices: tuple[str, ...]) -> tuple[Any, Any]:
    """One allowed decision: a fixed choice, already made (no empty box to type it in)."""
    if len(choices) == 1:
        return (
            Literal[choices],
            pydantic.Field(
                default=choices[0],
                title="Decision",
                description="The only decision this gate takes",
                json_schema_extra={"enum": list(choices)},
            ),
        )
    return (Literal[choices], pydantic.Field(title="Decision", description="One of: " + ", ".join(choices)))


COMMENT_FIELD = (str, pydantic.Field(default="", title="Comment", description="Kept with the answer"))


def form_for(spec: GateSpec, gate_id: str, choices: Choices | None = None) -> type[GateAnswer]:
    """The gate's form in the Prefect UI: the gate (filled in), the allowed decisions, a comment
    and the gate's data fields — no signer: the Prefect UI cannot prove one (see `describe`)."""
    fields: dict[str, Any] = {
        "gate": (
            Literal[gate_id],
            pydantic.Field(
                default=gate_id, title="Gate", description="Filled in: the gate this form belongs to"
            ),
        ),
        "decision": _decision_field(tuple(d.value for d in spec.decisions)),
        "comment": COMMENT_FIELD,
    }
    if spec.data_model:
        base = GATE_DATA_MODELS[spec.data_model]
        model = with_choices(base, choices or {})
        needed = ", ".join(d.value for d in spec.data_required_for)
        fields["data"] = (
            model | None,
            pydantic.Field(
                default=None,
                title=model_title(model),
                description=(base.__doc__ or "").strip() + (f" Needed for: {needed}." if needed else ""),
            ),
        )
    name = "".join(part.capitalize() for part in re.split(r"[-_]", spec.key)) + "Form"
    model_form: type[GateAnswer] = pydantic.create_model(name, __base__=GateAnswer, **fields)
    return model_form


def any_form(waiting: list[tuple[GateRead, GateSpec]], wake: str | None = None) -> type[GateAnswer]:
    """One form for several open gates: pick the gate (by its key, e.g. decision-ne-a), then
    the decision, as on a single gate's form. The list is the gates open when the run suspended.

    `wake` adds one more key that is no gate: an answer naming it only wakes the run (an
    incident's run when an outage's attribution is disputed, INC-7: it re-runs and opens that
    outage's customer gate). It takes no decision, so the decision is optional on such a form;
    an answer for a real gate without one is refused by the decision path like any other."""
    keys = tuple(gate.key for gate, _ in waiting) + ((wake,) if wake else ())
    choices = tuple(dict.fromkeys(d.value for _, spec in waiting for d in spec.decisions))
    decision: tuple[Any, Any] = _decision_field(choices) if choices else (str, pydantic.Field(default=""))
    if wake and choices:
        decision = (
            Literal[choices] | None,
            pydantic.Field(default=None, title="Decision", description="One of: " + ", ".join(choices)),
        )
    fields: dict[str, Any] = {
        "gate": (
            Literal[keys],
            pydantic.Field(title="Gate", description="Which gate (listed above with its element)"),
        ),
        "decision": decision,
        "comment": COMMENT_FIELD,
    }
    model: type[GateAnswer] = pydantic.create_model("OpenGatesForm", __base__=GateAnswer, **fields)
    return model


def decide_elsewhere(gate: GateRead) -> str:
    """The opening of every gate's form: where a signature can be given (issue #9, COM-6)."""
    return (
        f"[Decide this gate in siteflow's workspace]({gate_page(gate.id)}), signed in, or at the CLI: "
        f"`siteflow gates decide {gate.id} --decision …`. The Prefect UI cannot tell who pressed "
        "Resume, so it takes no signature: an answer given here is refused and this form opens again."
    )


def describe(spec: GateSpec, gate: GateRead, document_md: str, refusal: str = "") -> str:
    """Markdown shown above the form: the refusal of the last answer given here, if any; where
    to decide; what is decided, by whom; and the document itself."""
    who = " + ".join(f"{p.slot} ({'/'.join(r.value for r in p.roles)})" for p in spec.parties)
    signed = "".join(f"\n- already signed: {s.signer} ({s.slot}, {s.decision})" for s in gate.signatures)
    return (
        (f"{refusal}\n\n---\n\n" if refusal else "") + f"{decide_elsewhere(gate)}\n\n"
        f"## {spec.title}\n\n**Rule:** {spec.rule} · **Decided by:** {who} · "
        f"**Allowed:** {', '.join(d.value for d in spec.decisions)}\n\n{spec.description}{signed}"
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


def _take(gate: GateRead, answer: dict[str, Any], source_ref: str, at: datetime | None = None) -> UiAnswer:
    """One Prefect-UI answer through the decision path, told in the run's log: a refusal as a
    WARNING (the UI shows it beside the run), once — not again when a later re-run replays it."""
    taken = record_ui_decision.with_options(task_run_name=f"record-ui-answer-{gate.key}")(
        gate.id, answer, source_ref=source_ref, at=at
    )
    if taken.refused and not taken.replayed:
        get_run_logger().warning("gate %s: %s", gate.key, taken.message)
    elif not taken.replayed:
        get_run_logger().info("gate %s: %s", gate.key, taken.message)
    return taken


def take_open_gates_answers(gates: list[GateRead]) -> tuple[int, list[str]]:
    """Pass the Prefect-UI answers of this run's open-gates pauses through the decision path.

    An answer for a gate still open is refused there and recorded (the Prefect UI proves
    nobody; the source_ref makes replays in later re-runs no-ops). One for a gate decided by
    the time the re-run reads it is not used: the first decision won, and a resume that carried
    a recorded decision is one of those. Returns how many pauses were answered (the next key)
    and the reasons of the answers refused just now, for the top of the next form."""
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None, "runs inside a flow"
    run_id = str(ctx.flow_run.id)
    by_key = {gate.key: gate for gate in gates}
    answers = read_wait_answers(run_id)
    refusals: list[str] = []
    for wait in answers:
        gate = by_key.get(str(wait.answer.get("gate")))
        if gate is not None and not gate.closed:
            taken = _take(gate, wait.answer, f"ui:{run_id}:{wait.pause_key}", wait.received_at)
            if taken.refused and not taken.replayed:
                refusals.append(taken.reason)
    return len(answers), refusals


def await_any_gate(
    waiting: list[tuple[GateRead, GateSpec]], attempt: int, description: str, wake: str | None = None
) -> None:
    """Suspend until any of these open gates is decided (the run then re-runs from the top),
    or — with `wake` — until siteflow wakes it (:func:`siteflow.resumer.wake_run`).

    `attempt` numbers the pause (see :func:`take_open_gates_answers`); a Prefect-UI answer is
    passed to the decision path by the re-run, never trusted here.
    """
    suspend_flow_run(
        wait_for_input=any_form(waiting, wake).with_initial_data(description=description),
        key=f"{WAIT_KEY}-{attempt}",
    )


def await_gate(
    subject: str, spec: GateSpec, document_md: str = "", choices: Choices | None = None
) -> GateRead:
    """Open the gate (once) and return its state when it is decided.

    Decided through a proven door, the gate's resume carries that decision and the loop ends.
    An answer typed into the Prefect UI is refused (recorded, a WARNING in the run's log) and
    the run suspends again under the next pause key, the reason at the top of its form.
    """
    ctx = FlowRunContext.get()
    assert ctx is not None and ctx.flow_run is not None, "await_gate runs inside a flow"
    run_id = str(ctx.flow_run.id)
    gate = open_gate.with_options(task_run_name=f"open-gate-{spec.key}")(subject, run_id, spec)
    form = form_for(spec, gate.id, choices)
    attempt = 0
    refusal = ""
    while not gate.closed:
        key = f"{spec.key}-{attempt}"
        answer = suspend_flow_run(
            wait_for_input=form.with_initial_data(description=describe(spec, gate, document_md, refusal)),
            key=key,
        )
        if answer.raw.get("gate", gate.id) == gate.id:
            taken = _take(gate, answer.raw, f"ui:{run_id}:{key}")
            refusal = taken.reason if taken.refused else ""
        else:  # a schema restored without the constant let another gate's answer through
            get_run_logger().info("gate %s: ignored an answer meant for %s", spec.key, answer.raw.get("gate"))
        attempt += 1
        gate = read_gate.with_options(task_run_name=f"read-gate-{spec.key}")(gate.id)
    return gate
