"""Approval policies: the stages a deliverable passes, who approves each and by which rule."""

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from domain import bounds, durations
from domain.errors import Invalid
from domain.text import RoleName, StageName, UserId, UserOrRole


def parse_duration(text: str) -> object:
    # Inside a model validator a bad value must be a ValueError, so it joins the validation errors.
    try:
        return durations.parse_duration(text)
    except Invalid as exc:
        raise ValueError(exc.detail) from None

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
# What the schema says of a duration: a positive span in days, hours, minutes or seconds, well within
# the five years the API takes (the API also takes other ISO 8601 spellings, such as weeks).
DURATION_PATTERN = (r"^P(?:[1-9][0-9]{0,2}D(?:T[0-9]{1,2}H)?|T(?:[1-9][0-9]{0,3}H(?:[0-9]{1,2}M)?|"
                    r"[1-9][0-9]{0,4}M|[1-9][0-9]{0,5}(?:\.[0-9]{1,3})?S))$")
DURATION = {"pattern": DURATION_PATTERN, "examples": ["P2D", "PT4H"],
            "description": "ISO 8601 duration: days, hours, minutes or seconds (no years or months), positive, "
                           "at most 5 years (P1825D)"}


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationStep(Spec):
    after: str = Field(json_schema_extra=DURATION)
    notify: list[UserOrRole] = Field(default_factory=list, max_length=bounds.MAX_NOTIFY)
    grant: list[RoleName] = Field(default_factory=list, max_length=bounds.MAX_GRANT)

    @field_validator("after")
    @classmethod
    def _after_is_duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class Approvers(Spec):
    """Who approves a stage: users by id and holders of project roles; at least one of either."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["users"], "properties": {"users": {"minItems": 1}}},
        {"required": ["roles"], "properties": {"roles": {"minItems": 1}}}]})
    users: list[UserId] = Field(default_factory=list, max_length=bounds.MAX_STAGE_USERS)
    roles: list[RoleName] = Field(default_factory=list, max_length=bounds.MAX_STAGE_ROLES)


class Stage(Spec):
    """One stage of a policy. `n` goes with the rule `n_of_m`, and only with it."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"rule": {"const": "n_of_m"}}},
        "then": {"required": ["n"], "properties": {"n": {"type": "integer"}}},
        "else": {"properties": {"n": {"type": "null"}}}})
    name: StageName
    approvers: Approvers
    rule: Literal["all", "any", "n_of_m"]
    # Strict: "2" or 2.0 is a careless client, not a count.
    n: StrictInt | None = Field(default=None, ge=1, le=bounds.MAX_MEMBERS)
    sla: str | None = Field(default=None, json_schema_extra=DURATION)
    reminders: list[str] = Field(default_factory=list, max_length=bounds.MAX_REMINDERS,
                                 json_schema_extra={"items": {"type": "string", **DURATION}})
    escalation: list[EscalationStep] | None = Field(default=None, max_length=bounds.MAX_ESCALATION_STEPS)

    @field_validator("sla")
    @classmethod
    def _sla_is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("reminders")
    @classmethod
    def _reminders_are_durations(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_duration(item)
        return value

    @model_validator(mode="after")
    def _rule_is_complete(self) -> "Stage":
        if not self.approvers.users and not self.approvers.roles:
            raise ValueError(f"stage {self.name!r} names no approvers")
        if self.rule == "n_of_m" and self.n is None:
            raise ValueError(f"stage {self.name!r} uses n_of_m and needs n")
        if self.rule != "n_of_m" and self.n is not None:
            raise ValueError(f"stage {self.name!r}: n only goes with rule n_of_m")
        return self


class PolicySpec(Spec):
    stages: list[Stage] = Field(min_length=1, max_length=bounds.MAX_STAGES)
    on_revision: Literal["restart", "resume"] = "restart"

    @model_validator(mode="after")
    def _stage_names_unique(self) -> "PolicySpec":
        names = [stage.name for stage in self.stages]
        if len(names) != len(set(names)):
            raise ValueError("stage names must be unique")
        return self
