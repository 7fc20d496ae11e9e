"""The largest policy the API allows, on the largest project it allows, still runs, and no payload the
workflow carries comes near Temporal's 2 MB limit (issue 5, item 7)."""

import copy
import uuid
from typing import Any

import pytest
from google.protobuf.message import Message
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter

from api.models import ProjectCreate, RevisionIn
from domain import bounds
from domain.commands import Decide
from domain.policy_spec import PolicySpec
from tests.builders import submission
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.messages import ChainInput, chain_workflow_id

BUDGET = 256 * 1024
WIDE = "\U0001f600"  # four bytes in UTF-8: the widest character a name or text may hold


def user(i: int) -> str:
    return f"user-{i:04d}-".ljust(bounds.MAX_USER_ID_CHARS, "x")


def role(i: int) -> str:
    return f"role-{i:03d}-".ljust(bounds.MAX_ROLE_CHARS, "r")


def largest_project() -> dict[str, Any]:
    roles = [role(i) for i in range(bounds.MAX_MEMBER_ROLES)]
    step = {"notify": [user(i) for i in range(bounds.MAX_NOTIFY)], "grant": roles[:bounds.MAX_GRANT]}
    return ProjectCreate.model_validate({
        "name": WIDE * bounds.MAX_NAME_CHARS,
        "members": [{"user": user(i), "roles": roles} for i in range(bounds.MAX_MEMBERS)],
        "escalation_path": [{"after": f"P{1825 - level}D", **step} for level in range(bounds.MAX_ESCALATION_STEPS)],
        "phases": [{"name": WIDE * bounds.MAX_NAME_CHARS, "planned_start": "2026-01-05", "planned_end": "2031-01-05"}
                   for _ in range(bounds.MAX_PHASES)],
    }).model_dump()


def largest_policy() -> dict[str, Any]:
    roles = [role(i) for i in range(bounds.MAX_MEMBER_ROLES)]
    step = {"notify": [user(i) for i in range(bounds.MAX_NOTIFY)], "grant": roles[:bounds.MAX_GRANT]}
    stages = [{
        "name": f"{index:02d}".ljust(bounds.MAX_STAGE_NAME_CHARS, WIDE),
        # every member approves every stage: the view's people lists are as long as they can be
        "approvers": {"users": [user(i) for i in range(1, bounds.MAX_STAGE_USERS + 1)],
                      "roles": roles[:bounds.MAX_STAGE_ROLES]},
        "rule": "any",
        "sla": "P1825D",
        "reminders": [f"PT{43_800 - i}H" for i in range(bounds.MAX_REMINDERS)],
        "escalation": [{"after": f"P{1824 - level}DT23H59M59.999999S", **step}
                       for level in range(bounds.MAX_ESCALATION_STEPS)],
    } for index in range(bounds.MAX_STAGES)]
    return PolicySpec.model_validate({"stages": stages, "on_revision": "resume"}).model_dump()


def largest_revision() -> dict[str, Any]:
    prefix = "https://files.example/"
    return RevisionIn.model_validate({"uri": prefix + WIDE * (bounds.MAX_URI_CHARS - len(prefix)), "sha256": "a" * 64,
                                      "note": WIDE * bounds.MAX_NOTE_CHARS}).model_dump()


def payload_sizes(message: Any) -> list[int]:
    """The size of every payload anywhere in a history event."""
    if isinstance(message, Payload):
        return [len(message.data) + sum(len(v) for v in message.metadata.values())]
    sizes: list[int] = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            items = [value]
        else:  # a repeated field, or a map
            items = list(value.values()) if callable(getattr(value, "values", None)) else list(value)
        for item in items:
            if isinstance(item, Message):
                sizes += payload_sizes(item)
    return sizes


def encoded(value: Any) -> int:
    return len(pydantic_data_converter.payload_converter.to_payloads([value])[0].data)


async def test_largest_policy_on_largest_project_runs_and_stays_small(chains):
    project = largest_project()
    project_id = str(chains.app.create_project(project["name"], project["members"], project["escalation_path"],
                                               project["phases"], "paula").id)
    policy, _ = chains.app.put_policy(f"largest-{uuid.uuid4().hex[:8]}", largest_policy(), "paula")
    submitter = user(0)
    chain = ChainInput(submission=submission(project_id, policy, submitter, title=WIDE * bounds.MAX_NAME_CHARS,
                                             revision=largest_revision()), max_history=20)
    workflow_id = chain_workflow_id(chain.deliverable_id)
    start = WithStartWorkflowOperation(ApprovalChainWorkflow.run, chain, id=workflow_id, task_queue=chains.task_queue,
                                       id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    view = await chains.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                                 start_workflow_operation=start)
    assert len(view.stage.approvers) == bounds.MAX_MEMBERS - 1  # everyone but the submitter
    assert len(view.stage.deadlines) == bounds.MAX_REMINDERS + bounds.MAX_ESCALATION_STEPS + 1

    # Decide through stages until the history is long enough that the chain continues as new,
    # carrying its view in its input: the largest thing it ever carries.
    handle = chains.client.get_workflow_handle(workflow_id)
    for index in range(4):
        view = await handle.execute_update(ApprovalChainWorkflow.decide,
                                           Decide(actor=user(index + 1), verdict="approve", revision=1))
        assert view.stage.index == index + 1 and view.stage.open
    runs = [run async for run in chains.client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    assert len(runs) >= 2, "the chain should have continued as new"
    view = await chains.client.get_workflow_handle(workflow_id).execute_update(
        ApprovalChainWorkflow.decide, Decide(actor=user(9), verdict="approve", revision=1))
    assert view.stage.index == 5

    largest_seen = 0
    for run in runs:
        async for event in chains.client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history_events():
            largest_seen = max([largest_seen, *payload_sizes(event)])
    assert 0 < largest_seen < BUDGET, largest_seen

    # The worst view any input allows: every people list of the stage, and the former approvers,
    # holding every member; carried by the input of a continued chain.
    everyone = [user(i) for i in range(bounds.MAX_MEMBERS)]
    full_stage = view.stage.model_copy(update={
        "name": WIDE * bounds.MAX_STAGE_NAME_CHARS, "approvers": everyone, "granted": everyone,
        "approvals": everyone, "decided": everyone, "waiting_on": everyone})
    worst_view = view.model_copy(update={"stage": full_stage, "former_approvers": everyone})
    assert encoded(worst_view) < BUDGET / 2, encoded(worst_view)
    worst_input = chain.model_copy(update={"view": worst_view})
    assert encoded(worst_input) < BUDGET, encoded(worst_input)


def test_one_more_than_the_largest_is_refused():
    """The bounds measured above are the ones the API enforces: one more of anything is a 422."""
    policy, project = largest_policy(), largest_project()
    grow_policy = [("stages",), ("stages", 0, "approvers", "users"), ("stages", 0, "approvers", "roles"),
                   ("stages", 0, "reminders"), ("stages", 0, "escalation"), ("stages", 0, "escalation", 0, "notify"),
                   ("stages", 0, "escalation", 0, "grant")]
    grow_project = [("members",), ("members", 0, "roles"), ("escalation_path",), ("escalation_path", 0, "notify"),
                    ("escalation_path", 0, "grant"), ("phases",)]
    for model, data, paths in ((PolicySpec, policy, grow_policy), (ProjectCreate, project, grow_project)):
        model.model_validate(data)
        for path in paths:
            grown = copy.deepcopy(data)
            *parents, last = path
            holder = grown
            for key in parents:
                holder = holder[key]
            extra = copy.deepcopy(holder[last][-1])
            if isinstance(extra, dict) and "name" in extra:
                extra["name"] = "one more"  # refused for its number, not for a repeated name
            holder[last].append(extra)
            with pytest.raises(ValidationError):
                model.model_validate(grown)
    for duration in ("P1826D", "PT43801H"):
        with pytest.raises(ValidationError):
            PolicySpec.model_validate({"stages": [{**policy["stages"][0], "sla": duration}]})
