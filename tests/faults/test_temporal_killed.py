"""Temporal killed (-9) with timers pending, in the production topology: after the restart every
deadline fires exactly once, commands sent meanwhile were answered 503 and never apply later,
and the store and Temporal agree."""

import asyncio
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx

from tests.faults.agreement import assert_store_and_temporal_agree
from tests.faults.topology import Topology, production_topology

COMMAND_TIMEOUT = 3.0
# Long enough that every chain is submitted before the first falls due, short enough to wait out.
REMINDER, ESCALATION = 5.0, 6.0
POLICY = {"stages": [
    {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any",
     "reminders": [f"PT{REMINDER:g}S"], "escalation": [{"after": f"PT{ESCALATION:g}S", "notify": ["pm"]}]},
    {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all", "escalation": []}]}


async def submit_chains(topology: Topology, count: int) -> list[str]:
    api = topology.api
    project, policy = await api.project(), await api.policy(POLICY)
    answers = await asyncio.gather(*(api.submit(project, policy) for _ in range(count)))
    assert [r.status_code for r in answers] == [201] * count, [r.text for r in answers if r.status_code != 201]
    return [r.json()["id"] for r in answers]


def events(topology: Topology, deliverable_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in topology.app.deliverable_history(deliverable_id) if e["type"] == kind]


async def decide(topology: Topology, deliverable_id: str) -> tuple[httpx.Response, str, datetime, float]:
    """bob approves, with a comment no other request carries: the store shows whether it applied."""
    token = f"tok-{uuid.uuid4().hex}"
    began = time.monotonic()
    answer = await topology.api.decide(deliverable_id, "bob", comment=token)
    return answer, token, datetime.now(timezone.utc), time.monotonic() - began


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 503
    assert int(answer.headers["retry-after"]) > 0


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not reached within {timeout:.0f} s: {what}"
        await asyncio.sleep(0.25)


class SlowAnswer(AssertionError):
    """A command was answered 503 long after its command timeout."""


async def test_temporal_killed_with_timers_pending(tmp_path, pg_schema_url):
    async with production_topology(tmp_path, pg_schema_url, command_timeout_seconds=COMMAND_TIMEOUT) as topology:
        chains = await submit_chains(topology, 26)
        timed, commanded = chains[:20], chains[20:]
        submitted_at = time.monotonic()

        topology.kill_temporal()
        pending = [d for d in chains if not events(topology, d, "ReminderSent") + events(topology, d, "Escalated")]
        assert pending == chains, "a deadline fell due before Temporal was killed: the test proves nothing"

        # While Temporal is down: commands answer 503 problem+json; reads still come from the store.
        down = await asyncio.gather(*(decide(topology, d) for d in commanded[:3]))
        for answer, _, _, _ in down:
            assert_unavailable(answer)
        read = await topology.api.http.get(f"/api/deliverables/{timed[0]}", headers=topology.api.auth("bob"))
        assert read.status_code == 200, read.text

        # Past every due time, then commands that straddle the restart: whatever each is told holds.
        await asyncio.sleep(max(0.0, submitted_at + ESCALATION + 1.0 - time.monotonic()))
        straddling = [asyncio.create_task(decide(topology, d)) for d in commanded[3:]]
        await asyncio.sleep(1.0)
        await topology.start_temporal()
        straddled = await asyncio.gather(*straddling)

        # Each deadline fires once the server is back.
        def fired(d: str) -> bool:
            return bool(events(topology, d, "ReminderSent")) and bool(events(topology, d, "Escalated"))
        await wait_for(lambda: all(fired(d) for d in timed), 60, "every overdue deadline fired")

        # Past the command timeout (and the time any late recording would need), nothing sent while
        # Temporal was down has been applied.
        await asyncio.sleep(COMMAND_TIMEOUT + 2.0)
        for deliverable_id, (_, token, answered_at, _) in zip(commanded[:3], down):
            assert events(topology, deliverable_id, "DecisionRecorded") == [], token
        for deliverable_id, (answer, token, answered_at, _) in zip(commanded[3:], straddled):
            recorded = [e for e in events(topology, deliverable_id, "DecisionRecorded") if e["comment"] == token]
            if answer.status_code == 200:
                assert len(recorded) == 1, (token, recorded)
            else:
                assert_unavailable(answer)
                late = [e for e in recorded if datetime.fromisoformat(e["recorded_at"]) > answered_at]
                assert late == [], f"{token} was answered 503 at {answered_at} and recorded later: {late}"

        # Exactly once each, and the chains take commands again.
        for deliverable_id in timed:
            assert [e["level"] for e in events(topology, deliverable_id, "ReminderSent")] == [1]
            assert [e["level"] for e in events(topology, deliverable_id, "Escalated")] == [1]
        for deliverable_id in commanded[:3]:
            answer = await topology.api.decide(deliverable_id, "bob")
            assert answer.status_code == 200, answer.text
            assert answer.json()["stage"]["name"] == "sponsor"

        await assert_store_and_temporal_agree(topology.client, topology.app, chains)
        print(f"\n503 while Temporal was down answered in {[round(d[3], 2) for d in down]} s; "
              f"straddling the restart: {[(d[0].status_code, round(d[3], 2)) for d in straddled]}")
        # Last, so that every check above still fails the test on its own: the caller hears within
        # its command timeout (and a little for the HTTP round trip), not long after.
        slow = [round(seconds, 1) for _, _, _, seconds in down if seconds > COMMAND_TIMEOUT + 1.5]
        if slow:
            raise SlowAnswer(f"503s with a {COMMAND_TIMEOUT:g} s command timeout took {slow} s")
