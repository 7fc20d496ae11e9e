"""Retrospectives and what-ifs over HTTP (domain/retrospective.py and domain/what_if.py compute them).

Every figure is in seconds (`_s`) or a share in 0..1, and names the deliverables it came from in
`ids`; the README ("Retrospectives") defines each one as computed.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    field_validator,
)

from domain import bounds
from domain.calendar import Calendar
from domain.policy_spec import DURATION, EscalationStep
from domain.text import StageName, clean_name

Ids = list[str]
# A stage name as a key: what the schema says of it (pydantic would put a key's pattern in
# patternProperties, which leaves other keys unconstrained) and what the validator checks.
STAGE_KEY = {k: v for k, v in TypeAdapter(StageName).json_schema().items() if k in ("type", "maxLength", "pattern")}


class Window(BaseModel):
    since: datetime | None = Field(description="Deliverables submitted at or after this (null: from the first)")
    until: datetime = Field(description="…and before this; the figures are the state as of this moment")


class Counts(BaseModel):
    submitted: int
    approved: int
    rejected: int
    withdrawn: int
    open: int = Field(description="Still in review or waiting for a revision at `until`")
    ids: Ids


class OpenAges(BaseModel):
    count: int
    age_p50_s: float | None = Field(description="Nearest-rank median of submit → `until` of the open ones")
    age_max_s: float | None
    ids: Ids


class CycleTime(BaseModel):
    p50: float | None = Field(description="Nearest-rank 50th percentile of submit → final outcome, seconds")
    p90: float | None
    mean: float | None
    count: int = Field(description="Deliverables that reached an outcome (approved, rejected, withdrawn)")
    ids: Ids
    open: OpenAges


class ApproverFigures(BaseModel):
    decisions: int = Field(description="Decisions made in this stage")
    p50_response_s: float | None = Field(description="Median from the stage opening (or the revision, if later) to "
                                                     "the decision")
    last_waited_on: int = Field(description="Openings closed by this person's decision: the one everyone waited for")
    waiting_share: float | None = Field(description="Of the time the stage was open while this person was an "
                                                    "approver, the share before they decided")
    ids: Ids


class StageFigures(BaseModel):
    openings: int
    closed: int
    still_open: int
    p50_open_s: float | None = Field(description="Nearest-rank median time open, of the openings that closed")
    p90_open_s: float | None
    sla_breach_rate: float | None = Field(description="Share of openings with an SLA whose SLA passed before they "
                                                      "closed (null: no opening had an SLA)")
    sla_breaches: int
    sla_breach_ids: Ids
    changes_requested: int
    changes_requested_ids: Ids
    per_approver: dict[str, ApproverFigures]
    ids: Ids


class Rework(BaseModel):
    revisions_mean: float | None
    revisions_max: int | None
    first_pass_yield: float | None = Field(description="Approved on revision 1, of those that reached an outcome")
    changes_requested_by_stage: dict[str, int]
    ids: Ids
    reworked_ids: Ids
    first_pass_ids: Ids


class Escalations(BaseModel):
    total: int
    by_level: dict[str, int]
    by_stage: dict[str, int]
    ids: Ids


class SlaBreachRate(BaseModel):
    overall: float | None
    openings_with_sla: int
    breaches: int
    by_stage: dict[str, float | None]
    ids: Ids


class DependencyFigures(BaseModel):
    opened: int
    resolved: int
    cancelled: int
    open: int
    stalled: int = Field(description="Dependencies that stalled at least once")
    stalled_s: float = Field(description="Total time stalled: from each stall until the owner next moved, it "
                                         "ended, or `until`")
    stalled_ids: Ids
    overdue: int
    overdue_ids: Ids
    p50_resolve_s: float | None
    resolved_ids: Ids
    ids: Ids


class Gates(BaseModel):
    phases: list[dict[str, Any]]
    note: str


class Retrospective(BaseModel):
    window: Window
    deliverables: Counts
    cycle_time_s: CycleTime
    per_stage: dict[str, StageFigures] = Field(description="By policy stage name, in the order policies name them")
    rework: Rework
    escalations: Escalations
    sla_breach_rate: SlaBreachRate
    dependencies: DependencyFigures
    gates: Gates


class PortfolioRetrospective(Retrospective):
    projects: int = Field(description="Projects with at least one deliverable or dependency in the window")


# ---- what-if ------------------------------------------------------------------------------------
class StageChanges(BaseModel):
    """Fields given replace the stage's; a field left out keeps its value; null clears `sla` or makes the
    stage escalate along the project's path (`escalation`)."""

    model_config = ConfigDict(extra="forbid")
    sla: str | None = Field(default=None, json_schema_extra=DURATION)
    rule: Literal["all", "any", "n_of_m"] | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=bounds.MAX_MEMBERS)
    escalation: list[EscalationStep] | None = Field(default=None, max_length=bounds.MAX_ESCALATION_STEPS)
    reminders: list[str] | None = Field(default=None, max_length=bounds.MAX_REMINDERS,
                                        json_schema_extra={"items": {"type": "string", **DURATION}})


class WhatIfChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stages: dict[str, StageChanges] = Field(default_factory=dict, max_length=bounds.MAX_STAGES,
                                            description="By stage name: what changes in that stage",
                                            json_schema_extra={"propertyNames": STAGE_KEY})
    calendar: Calendar | None = Field(default=None, description="Count every deadline on this calendar instead "
                                                                "(null given: wall time)")


    @field_validator("stages")
    @classmethod
    def _stage_names(cls, value: dict[str, StageChanges]) -> dict[str, StageChanges]:
        for name in value:
            if len(name) > STAGE_KEY["maxLength"]:
                raise ValueError(f"a stage name is at most {STAGE_KEY['maxLength']} characters")
            clean_name(name)
        return value


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: datetime | None = None
    until: datetime | None = Field(default=None, description="Default: now")
    policy: str = Field(max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
                        description="The policy whose deliverables are re-run (any of its versions)")
    changes: WhatIfChanges = Field(default_factory=WhatIfChanges)


class DeliverableStory(BaseModel):
    id: str
    title: str
    changes: list[str] = Field(description="What would have happened differently, and why, in order")


class WhatIf(BaseModel):
    actual: Retrospective
    what_if: Retrospective
    difference: dict[str, Any] = Field(description="what_if minus actual for every number both have; a figure "
                                                   "one side lacks shows {actual, what_if}")
    deliverables: list[DeliverableStory]
