"""`signoff replay`: replay workflow histories from the Temporal server against this code.

What an operator runs before deploying a new worker: every history it names is fetched from the
server the settings point at and replayed with the SDK's `Replayer`, on the workflows the worker
registers (`workers.worker.WORKFLOWS`) and the worker's data converter (payloads may be encrypted).
A workflow whose history the new code would not reproduce is reported as NONDETERMINISTIC with the
SDK's message; deploying that code would fail those workflows' next tasks.
"""

import re
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TextIO

from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from config.settings import Settings

RUNNING = "ExecutionStatus='Running'"


@dataclass(frozen=True)
class Outcome:
    workflow_id: str
    run_id: str
    failure: str | None = None  # why it did not replay (or could not be read), on one line
    kind: str = "ok"  # ok, nondeterministic, failed (replay broke otherwise, e.g. a payload it cannot
    #                   decode), unreadable (the history could not be fetched)

    @property
    def line(self) -> str:
        if self.kind == "ok":
            return f"ok  {self.workflow_id} {self.run_id}"
        if self.kind == "unreadable":
            return f"UNREADABLE {self.workflow_id}: {self.failure}"
        return f"{self.kind.upper()} {self.workflow_id} {self.run_id}: {self.failure}"


def _outcome(history: WorkflowHistory, failure: Exception | None) -> Outcome:
    if failure is None:
        return Outcome(history.workflow_id, history.run_id)
    kind = "nondeterministic" if isinstance(failure, workflow.NondeterminismError) else "failed"
    return Outcome(history.workflow_id, history.run_id, _one_line(failure), kind)


def workflow_names(workflows: Iterable[type]) -> list[str]:
    return [workflow._Definition.must_from_class(cls).name for cls in workflows]


def parse_since(value: str) -> datetime:
    """An ISO-8601 moment; one without a zone is UTC."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def visibility_query(workflows: Iterable[type], since: datetime | None = None, query: str | None = None) -> str:
    """The list query: the given workflow types only, started after `since` and matching `query`;
    with neither, the running workflows (those a new worker will pick up)."""
    names = ", ".join(f"'{name}'" for name in workflow_names(workflows))
    parts = [f"WorkflowType IN ({names})"]
    if since is not None:
        parts.append(f"StartTime > '{since.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'")
    if query:
        parts.append(f"({query})")
    if since is None and not query:
        parts.append(RUNNING)
    return " AND ".join(parts)


def _one_line(error: BaseException) -> str:
    """The error on one line; of the core's "activation completion failed: Failure { ... }" only the
    messages of the failure and its causes ("[TMPRL1100] Nondeterminism error: ...")."""
    text = str(error)
    messages = [m.replace('\\"', '"') for m in re.findall(r'message: "((?:[^"\\]|\\.)*)"', text)]
    return " ".join((": ".join(messages) if messages else text).split()) or type(error).__name__


async def replay(client: Client, data_converter: DataConverter, *, workflow_ids: Sequence[str] = (),
                 since: datetime | None = None, query: str | None = None,
                 workflows: Sequence[type] | None = None) -> list[Outcome]:
    """Replay the latest run of each of `workflow_ids`, or, without ids, every run the visibility
    query (see `visibility_query`) lists; one Outcome per history, in the order fetched."""
    if workflows is None:
        from workers.worker import WORKFLOWS

        workflows = WORKFLOWS
    replayed: list[WorkflowHistory] = []
    unreadable: list[Outcome] = []

    async def executions() -> AsyncIterator[tuple[str, str | None]]:
        if workflow_ids:
            for wid in workflow_ids:
                yield wid, None  # its latest run
        else:
            async for execution in client.list_workflows(visibility_query(workflows, since, query)):
                yield execution.id, execution.run_id

    async def histories() -> AsyncIterator[WorkflowHistory]:
        async for wid, run_id in executions():
            try:
                history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
            except RPCError as error:  # not found, no permission: reported, the others still replay
                unreadable.append(Outcome(wid, run_id or "", _one_line(error), "unreadable"))
                continue
            replayed.append(history)
            yield history

    replayer = Replayer(workflows=list(workflows), data_converter=data_converter,
                        workflow_runner=UnsandboxedWorkflowRunner())  # as the worker runs them
    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    failures = results.replay_failures
    return [_outcome(h, failures.get(h.run_id)) for h in replayed] + unreadable


def report(outcomes: Sequence[Outcome], out: TextIO) -> int:
    """One line per workflow, then a summary; the exit status: 1 if any failed, else 0."""
    for outcome in outcomes:
        print(outcome.line, file=out)
    count = {kind: sum(1 for o in outcomes if o.kind == kind)
             for kind in ("ok", "nondeterministic", "failed", "unreadable")}
    summary = f"{count['ok']} ok, {count['nondeterministic']} nondeterministic"
    summary += "".join(f", {count[kind]} {kind}" for kind in ("failed", "unreadable") if count[kind])
    print(f"replayed {len(outcomes) - count['unreadable']} workflow histories: {summary}", file=out)
    return 0 if count["ok"] == len(outcomes) else 1


async def run(settings: Settings, *, workflow_ids: Sequence[str] = (), since: datetime | None = None,
              query: str | None = None, out: TextIO | None = None,
              workflows: Sequence[type] | None = None) -> int:
    """`signoff replay`: connect as the worker does, replay, print; the exit status."""
    from workflows.client import connect
    from workflows.codec import data_converter

    client = await connect(settings)
    outcomes = await replay(client, data_converter(settings), workflow_ids=workflow_ids, since=since,
                            query=query, workflows=workflows)
    return report(outcomes, out or sys.stdout)
