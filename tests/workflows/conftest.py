import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from temporalio.client import Client, WorkflowHandle

from domain.application import Signoff
from domain.deliverable_state import ChainView
from tests.builders import make_policy, make_project, submission
from workers.worker import build_worker
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.client import start_operation
from workflows.messages import ChainInput


@dataclass
class Chains:
    client: Client
    app: Signoff
    task_queue: str

    async def submit(self, policy_spec: dict[str, Any] | None = None, escalation_path: list[dict[str, Any]] | None = None,
                     submitter: str = "alice", max_history: int = 10_000) -> tuple[WorkflowHandle, ChainView]:
        project_id = make_project(self.app, escalation_path)
        policy = make_policy(self.app, policy_spec)
        chain = ChainInput(submission=submission(project_id, policy, submitter), max_history=max_history)
        start = start_operation(chain, self.task_queue)
        state = await self.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                                    start_workflow_operation=start)
        return await start.workflow_handle(), state


@pytest_asyncio.fixture
async def chains(temporal_env, sqlite_app) -> AsyncIterator[Chains]:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    worker = build_worker(temporal_env.client, sqlite_app, task_queue)
    async with worker:
        yield Chains(temporal_env.client, sqlite_app, task_queue)
