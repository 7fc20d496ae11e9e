"""Do the event store and Temporal tell the same story? Checked after a fault, chain by chain.

The workflow names each recording (workflows/approval_chain.py `_record`):
`{workflow_id}:submission` for the `open` update, `{workflow_id}:update:{update_id}` for every other
update, `{workflow_id}:deadline:{stage}:{opened_at}:{kind}:{level}` for a timer that fell due.
So from a chain's Temporal history (all its runs, continued-as-new included) we know which
command ids Temporal accepted and how each update ended, and from the store which were recorded.
"""

from collections import Counter
from dataclasses import dataclass, field

from temporalio.client import Client

from domain.application import Signoff
from domain.errors import NotFound
from workflows.messages import chain_workflow_id

# `refresh` reads the record into the workflow (the API's repair of a view behind the record).
RECORDS_NOTHING = frozenset({"refresh"})


class Disagreement(AssertionError):
    """The store and Temporal disagree about which commands were made."""


@dataclass
class Updates:
    """What a chain's Temporal history says about its updates, by the command id each records."""

    runs: int = 0
    accepted: dict[str, str] = field(default_factory=dict)  # update id -> update name
    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)

    def command_id(self, workflow_id: str, update_id: str) -> str:
        if self.accepted[update_id] == "open":
            return f"{workflow_id}:submission"
        return f"{workflow_id}:update:{update_id}"


async def temporal_updates(client: Client, workflow_id: str) -> Updates:
    """Every run of the workflow, latest first, following continued-as-new back to the first."""
    found, run_id = Updates(), ""
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id or None)
        previous = ""
        async for event in handle.fetch_history_events():
            kind = event.WhichOneof("attributes")
            if kind == "workflow_execution_started_event_attributes":
                previous = event.workflow_execution_started_event_attributes.continued_execution_run_id
            elif kind == "workflow_execution_update_accepted_event_attributes":
                request = event.workflow_execution_update_accepted_event_attributes.accepted_request
                found.accepted[request.meta.update_id] = request.input.name
            elif kind == "workflow_execution_update_completed_event_attributes":
                completed = event.workflow_execution_update_completed_event_attributes
                ended = found.succeeded if completed.outcome.HasField("success") else found.failed
                ended.add(completed.meta.update_id)
        found.runs += 1
        if not previous:
            return found
        run_id = previous


def store_command_ids(app: Signoff, deliverable_id: str) -> Counter[str]:
    try:
        history = app.deliverable_history(deliverable_id)
    except NotFound:  # never recorded, e.g. a submission the aggregate refused
        return Counter()
    return Counter(entry["command_id"] for entry in history if entry.get("command_id"))


async def disagreements(client: Client, app: Signoff, deliverable_id: str) -> list[str]:
    """What one chain's store and Temporal history disagree about (empty: they agree)."""
    workflow_id = chain_workflow_id(deliverable_id)
    updates = await temporal_updates(client, workflow_id)
    stored = store_command_ids(app, deliverable_id)
    problems = []

    outcome: dict[str, str] = {}  # command id -> "succeeded" if any update naming it did, else how it ended
    for update_id, name in updates.accepted.items():
        if name in RECORDS_NOTHING:
            continue
        command = updates.command_id(workflow_id, update_id)
        if update_id in updates.succeeded:
            outcome[command] = "succeeded"
        elif update_id in updates.failed:
            outcome.setdefault(command, "failed")
        else:
            # Every run waits for its handlers before it ends or continues as new, and the check
            # runs once the test's traffic has settled: an update still open here hangs.
            problems.append(f"update {update_id} ({updates.accepted[update_id]}) was accepted and never answered")
            outcome.setdefault(command, "open")
    for command, ended in outcome.items():
        expected = {"succeeded": 1, "failed": 0}.get(ended)
        if expected is not None and stored[command] != expected:
            problems.append(f"{command}: the update {ended}, yet the store holds it {stored[command]} times")

    for command, count in stored.items():
        if not command.startswith(f"{workflow_id}:"):
            problems.append(f"{command}: recorded for this deliverable but named for another workflow")
        elif ":deadline:" in command:
            if count > 1:
                problems.append(f"{command}: a deadline recorded {count} times")
        elif command not in outcome:
            problems.append(f"{command}: in the store ({count}x) but never accepted by Temporal")
        elif count > 1:
            problems.append(f"{command}: recorded {count} times")
    return [f"{deliverable_id}: {p}" for p in problems]


async def assert_store_and_temporal_agree(client: Client, app: Signoff, deliverable_ids: list[str]) -> None:
    """Every update that succeeded is in the store exactly once, every failed one not at all; every
    command id in the store belongs to an update Temporal accepted, or to a deadline recorded once."""
    problems = [p for did in deliverable_ids for p in await disagreements(client, app, did)]
    if problems:
        raise Disagreement(f"{len(problems)} disagreement(s):\n" + "\n".join(problems))
