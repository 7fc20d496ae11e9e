"""Commands over HTTP when parts are slow, gone or behind: nothing applies after its caller gave up,
and the API keeps answering truthfully."""

import asyncio
import time
from contextlib import asynccontextmanager

import httpx
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.commands import Decide
from store.events import open_application
from tests.api.conftest import free_port, serve_api
from tests.builders import revision
from workers.devstack import temporal_binary
from workers.worker import build_worker
from workflows import search
from workflows.messages import chain_workflow_id

PROBLEM = "application/problem+json"


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM, r.text
    assert int(r.headers["Retry-After"]) > 0


async def eventually(check, timeout: float = 30.0) -> None:
    """Wait until the async `check` holds: the test waits on what it observes, not on the clock."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def run_failed(client, workflow_id: str) -> bool:
    description = await client.get_workflow_handle(workflow_id).describe()
    return description.status == WorkflowExecutionStatus.FAILED


async def signalled(client, workflow_id: str) -> bool:
    events = [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
    return any(e.HasField("workflow_execution_signaled_event_attributes") for e in events)


@asynccontextmanager
async def without_worker(temporal_env, tmp_path, **overrides):
    """The API with no worker on its task queue, its store, a project and a policy; the test starts
    workers when it wants commands taken up."""
    async with serve_api(temporal_env, tmp_path, with_worker=False, **overrides) as api:
        store = open_application(api.settings.event_store_url())
        try:
            yield api, store, await api.project(), await api.policy()
        finally:
            store.close()


async def hang_up(api, path: str, user: str, body: dict) -> None:
    """Send a command with no worker to take it up, and give up waiting after a second."""
    try:
        await api.http.post(path, headers=api.auth(user), json=body, timeout=1)
    except httpx.ReadTimeout:
        return
    raise AssertionError(f"{path} was answered without a worker")


async def test_a_submission_that_timed_out_names_its_id_and_never_appears_later(temporal_env, tmp_path):
    client = temporal_env.client
    async with without_worker(temporal_env, tmp_path, command_timeout_seconds=1) as (api, store, project, policy):
        # No worker: neither submission is taken up before its deadline.
        plain = await api.submit(project, policy)
        assert_unavailable(plain)
        assert "GET /api/deliverables/" in plain.json()["detail"]
        keyed = await api.submit(project, policy, headers={"Idempotency-Key": "homepage-v1"})
        assert_unavailable(keyed)
        assert "same Idempotency-Key" in keyed.json()["detail"]
        async with build_worker(client, store, api.settings.task_queue):
            # The worker meets both submissions past their deadline: refused, their runs fail.
            for problem in (plain, keyed):
                await eventually(lambda: run_failed(client, chain_workflow_id(problem.json()["id"])))
            r = await api.http.get(f"/api/deliverables/{plain.json()['id']}", headers=api.auth("alice"))
            assert r.status_code == 404, r.text
            # The same key again makes the deliverable, under the id the 503 named.
            again = await api.submit(project, policy, headers={"Idempotency-Key": "homepage-v1"})
            assert again.status_code == 201, again.text
            assert again.json()["id"] == keyed.json()["id"]


async def test_a_command_whose_caller_went_away_is_never_recorded(temporal_env, tmp_path):
    client = temporal_env.client
    async with without_worker(temporal_env, tmp_path) as (api, store, project, policy):
        async with build_worker(client, store, api.settings.task_queue):
            did = (await api.submit(project, policy)).json()["id"]
        # No worker: bob's decision waits; bob gives up after a second and hangs up.
        await hang_up(api, f"/api/deliverables/{did}/decisions", "bob",
                      {"verdict": "approve", "comment": "", "revision": 1})
        await eventually(lambda: signalled(client, chain_workflow_id(did)))  # the API abandoned it
        async with build_worker(client, store, api.settings.task_queue):
            # Bob decides again; had the abandoned decision been recorded, this would be a 409.
            r = await api.decide(did, "bob")
            assert r.status_code == 200, r.text
            assert [d["actor"] for d in r.json()["decisions"]] == ["bob"]


async def test_a_submission_whose_caller_went_away_is_never_recorded(temporal_env, tmp_path):
    client = temporal_env.client
    async with without_worker(temporal_env, tmp_path) as (api, store, project, policy):
        await hang_up(api, "/api/deliverables", "alice",
                      {"project_id": project, "title": "Homepage mockups", "policy": policy, "revision": revision()})
        # The caller never heard the id; Temporal knows the one workflow it started.
        found: list[str] = []

        async def one_abandoned_run() -> bool:
            found[:] = [w.id async for w in client.list_workflows(f'TaskQueue="{api.settings.task_queue}"')]
            return len(found) == 1 and await signalled(client, found[0])

        await eventually(one_abandoned_run)
        async with build_worker(client, store, api.settings.task_queue):
            await eventually(lambda: run_failed(client, found[0]))
        r = await api.http.get(f"/api/deliverables?project_id={project}", headers=api.auth("alice"))
        assert r.status_code == 200 and r.json()["items"] == [], r.text


async def test_a_command_refused_on_a_view_behind_the_record_is_retried_on_the_records_view(api):
    project, policy = await api.project(), await api.policy()
    did = (await api.submit(project, policy)).json()["id"]
    store = open_application(api.settings.event_store_url())
    # Bob's approval is recorded, but its answer never reached the workflow (lost to a crash).
    store.change_deliverable(Decide(deliverable_id=did, actor="bob", verdict="approve", comment="", revision=1,
                                    command_id="answer-lost"))
    store.close()
    # The workflow still says design, where carol is no approver; the record says engineering.
    r = await api.decide(did, "carol")
    assert r.status_code == 200, r.text
    assert (r.json()["stage"]["name"], r.json()["stage"]["approvals"]) == ("engineering", ["carol"])


async def test_the_api_starts_and_serves_reads_while_temporal_is_down(temporal_env, tmp_path):
    port = free_port()
    async with asyncio.timeout(120), serve_api(temporal_env, tmp_path, with_worker=False,
                                               temporal_address=f"127.0.0.1:{port}",
                                               command_timeout_seconds=3) as api:
        project, policy = await api.project(), await api.policy()
        r = await api.http.get("/api/projects", headers=api.auth("paula", "pmo"))
        assert r.status_code == 200 and [p["id"] for p in r.json()["items"]] == [project]
        started = time.monotonic()
        assert_unavailable(await api.submit(project, policy))
        assert time.monotonic() - started < 5
        assert (await api.http.get("/readyz")).status_code == 503
        # Temporal comes up: the API connects without a restart.
        env = await WorkflowEnvironment.start_local(port=port, dev_server_existing_path=temporal_binary(),
                                                    data_converter=pydantic_data_converter,
                                                    dev_server_log_level="error", search_attributes=search.KEYS)
        store = open_application(api.settings.event_store_url())
        try:
            async with build_worker(env.client, store, api.settings.task_queue):
                r = await api.submit(project, policy)
                assert r.status_code == 201, r.text
                assert (await api.decide(r.json()["id"], "bob")).status_code == 200
        finally:
            store.close()
            await env.shutdown()


async def test_a_commands_deadline_counts_from_the_requests_arrival(temporal_env, tmp_path):
    async with serve_api(temporal_env, tmp_path, command_timeout_seconds=1) as api:
        project, policy = await api.project(), await api.policy()
        did = (await api.submit(project, policy)).json()["id"]

        async def slow_body():
            # The body trickles in for longer than the command timeout: the time is the caller's.
            yield b'{"verdict": "approve", '
            await asyncio.sleep(1.5)
            yield b'"comment": "", "revision": 1}'

        r = await api.http.post(f"/api/deliverables/{did}/decisions", content=slow_body(),
                                headers={**api.auth("bob"), "Content-Type": "application/json"})
        assert_unavailable(r)
        await asyncio.sleep(1)
        r = await api.http.get(f"/api/deliverables/{did}", headers=api.auth("bob"))
        assert r.json()["decisions"] == []
