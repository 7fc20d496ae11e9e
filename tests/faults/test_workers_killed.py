"""Both workers killed (-9) under a stream of decisions from concurrent clients, in the production
topology: the first at the named point right after it recorded a decision, the second at whatever
it was doing. Every 2xx is in the store exactly once, no command answered 503 is recorded after
that answer, the store and Temporal agree, and every chain ends approved."""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from tests.faults.agreement import assert_store_and_temporal_agree
from tests.faults.topology import Topology, production_topology

COMMAND_TIMEOUT = 4.0
CLIENTS, CHAINS = 8, 30
STEPS = ["bob", "carol", "dan", "sam"]  # tests/builders.py STANDARD: design any, engineering 2 of 3, sponsor
MARK = "KILL-ME"  # a decision whose comment holds it kills the worker that records it (tests/fault_worker.py)
PACE = 0.2  # between one client's requests, so the stream lasts through the faults
MAX_ATTEMPTS = 15


@dataclass
class Sent:
    deliverable_id: str
    actor: str
    token: str
    status: int
    answered_at: datetime
    seconds: float
    detail: str = ""


class Stream:
    """Clients that each drive their chains to approval, retrying a 503 with a fresh command."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.sent: list[Sent] = []
        self.unfinished: dict[str, str] = {}  # deliverable id -> why its client gave up

    def successes(self) -> int:
        return sum(1 for s in self.sent if s.status == 200)

    def decisions(self, deliverable_id: str) -> list[dict]:
        return [e for e in self.topology.app.deliverable_history(deliverable_id) if e["type"] == "DecisionRecorded"]

    async def decide(self, deliverable_id: str, actor: str, mark: str = "") -> Sent:
        # A comment no other request carries: the store shows whether, and when, this one applied.
        token = f"{mark}tok-{uuid.uuid4().hex}"
        began = time.monotonic()
        answer = await self.topology.api.decide(deliverable_id, actor, comment=token)
        sent = Sent(deliverable_id, actor, token, answer.status_code, datetime.now(timezone.utc),
                    time.monotonic() - began, "" if answer.status_code == 200 else answer.text[:300])
        if answer.status_code == 503:
            assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
        self.sent.append(sent)
        return sent

    async def drive(self, deliverable_id: str, mark: str = "") -> None:
        for step, actor in enumerate(STEPS):
            for attempt in range(MAX_ATTEMPTS):
                sent = await self.decide(deliverable_id, actor, mark if (step, attempt) == (0, 0) else "")
                if sent.status == 200:
                    break
                if sent.status != 503:
                    self.unfinished[deliverable_id] = f"{actor}: {sent.status} {sent.detail}"
                    return
                # 503: the outcome is unknown. As the answer advises, read the record a little later:
                # a command taken up just before its deadline may still be on its way into the store.
                await asyncio.sleep(1.5)
                recorded = await asyncio.to_thread(self.decisions, deliverable_id)
                if any(d["comment"] == sent.token for d in recorded):
                    break
            else:
                self.unfinished[deliverable_id] = f"{actor}: no answer but 503 after {MAX_ATTEMPTS} attempts"
                return
            await asyncio.sleep(PACE)

    async def client(self, chains: list[str]) -> None:
        for deliverable_id in chains:
            await self.drive(deliverable_id)


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not reached within {timeout:.0f} s: {what}"
        await asyncio.sleep(0.05)


async def kill_both_workers(topology: Topology, stream: Stream, reserved: str) -> dict[str, float]:
    """Worker one dies at the named point; two seconds later worker two is killed mid-stream; both
    stay down past the command timeout, then start again without faults."""
    await until(lambda: stream.successes() >= 20, 60, "the stream under way")
    marked = asyncio.create_task(stream.drive(reserved, mark=f"{MARK} "))
    await until(lambda: any(w.poll() is not None for w in topology.workers), 30, "a worker killed at the mark")
    first_down = time.monotonic()
    first = next(i for i, w in enumerate(topology.workers) if w.poll() is not None)
    assert topology.workers[first].returncode == -9, topology.log_tail()
    await asyncio.sleep(2.0)
    topology.kill_worker(1 - first)
    await asyncio.sleep(COMMAND_TIMEOUT + 3.0)
    await asyncio.gather(topology.start_worker(0), topology.start_worker(1))
    restarted = time.monotonic()
    await marked
    return {"first_down": first_down, "restarted": restarted}


async def test_workers_killed_under_concurrent_decisions(tmp_path, pg_schema_url):
    async with production_topology(tmp_path, pg_schema_url, faults=f"kill-after-record:{MARK}",
                                   command_timeout_seconds=COMMAND_TIMEOUT) as topology:
        api = topology.api
        project, policy = await api.project(), await api.policy()
        answers = await asyncio.gather(*(api.submit(project, policy) for _ in range(CHAINS)))
        assert [a.status_code for a in answers] == [201] * CHAINS, [a.text for a in answers if a.status_code != 201]
        chains = [a.json()["id"] for a in answers]
        reserved, streamed = chains[0], chains[1:]

        stream = Stream(topology)
        began = time.monotonic()
        clients = [asyncio.create_task(stream.client(streamed[i::CLIENTS])) for i in range(CLIENTS)]
        times = await kill_both_workers(topology, stream, reserved)
        await asyncio.wait_for(asyncio.gather(*clients), timeout=120)
        ended = time.monotonic()
        # Past the command timeout, so that anything that would apply late has had its chance.
        await asyncio.sleep(COMMAND_TIMEOUT + 2.0)

        by_chain = {d: await asyncio.to_thread(stream.decisions, d) for d in chains}
        for sent in stream.sent:
            recorded = [d for d in by_chain[sent.deliverable_id] if d["comment"] == sent.token]
            if sent.status == 200:
                assert len(recorded) == 1, (sent, recorded)
            elif sent.status == 503:
                late = [d for d in recorded if datetime.fromisoformat(d["recorded_at"]) > sent.answered_at]
                assert late == [], f"answered 503, recorded after that answer: {sent} {late}"
            else:
                assert recorded == [], f"refused ({sent.status}) yet recorded: {sent} {recorded}"

        await assert_store_and_temporal_agree(topology.client, topology.app, chains)

        assert stream.unfinished == {}
        states = [(await api.http.get(f"/api/deliverables/{d}", headers=api.auth("bob"))).json() for d in chains]
        assert [s["status"] for s in states] == ["approved"] * CHAINS
        assert all([d["actor"] for d in by_chain[c]] == STEPS for c in chains)

        unavailable = [s for s in stream.sent if s.status == 503]
        print(f"\n{len(stream.sent)} decisions sent, {stream.successes()} answered 200, {len(unavailable)} answered "
              f"503 (slowest {max((s.seconds for s in unavailable), default=0):.1f} s); workers down "
              f"{times['restarted'] - times['first_down']:.1f} s; stream took {ended - began:.1f} s")
