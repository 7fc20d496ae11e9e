"""The event store unreachable or locked: every answer comes within seconds, as 503 problem+json with
Retry-After; /readyz says 503 while the store cannot write; afterwards everything answers 200 again
and nothing recorded is lost (a write refused during the outage recorded nothing)."""

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from eventsourcing.persistence import PersistenceError
from psycopg import sql

from api.problems import store_unavailable
from config.settings import Settings
from domain.errors import Invalid
from store.events import open_application, store_env
from tests.api.conftest import Api, serve_api
from tests.conftest import POSTGRES_URL
from tests.faults.proxy import TcpProxy

PROMPT = 10  # seconds: "within a few seconds", with room for a slow CI machine
PMO = ("paula", "pmo")
NEW_PROJECT = {"name": "Refused while the store is down", "members": [{"user": "paula", "roles": ["pmo"]}],
               "escalation_path": []}


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    parts = urlsplit(POSTGRES_URL)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as running:
        yield running


def via(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{proxy.host}:{proxy.port}"))


async def seeded(api: Api) -> dict[str, tuple[str, dict[str, str]]]:
    """A project, a deliverable with one decision; answer the reads to check, each with its caller."""
    project_id = await api.project()
    deliverable = await api.submit(project_id, await api.policy())
    assert deliverable.status_code == 201, deliverable.text
    did = deliverable.json()["id"]
    assert (await api.decide(did, "bob")).status_code == 200
    pmo, carol = api.auth(*PMO), api.auth("carol")  # carol decides next: her inbox is not empty
    return {"projects": ("/api/projects", pmo), "project": (f"/api/projects/{project_id}", pmo),
            "inbox": ("/api/inbox", carol), "deliverables": (f"/api/deliverables?project_id={project_id}", pmo),
            "deliverable": (f"/api/deliverables/{did}", pmo), "history": (f"/api/deliverables/{did}/history", pmo)}


async def timed(request) -> tuple[httpx.Response | None, float]:
    started = time.monotonic()
    try:
        response = await request
    except httpx.TimeoutException:
        response = None
    return response, time.monotonic() - started


async def answer(api: Api, path: str, headers: dict[str, str] | None = None) -> tuple[httpx.Response | None, float]:
    return await timed(api.http.get(path, headers=headers, timeout=PROMPT + 5))


def assert_unavailable(what: str, response: httpx.Response | None, elapsed: float) -> None:
    assert response is not None, f"{what}: no answer in {elapsed:.1f} s"
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    assert int(response.headers["retry-after"]) > 0, what
    assert response.json()["status"] == 503, what
    assert elapsed < PROMPT, f"{what}: 503 took {elapsed:.1f} s"


async def snapshot(api: Api, reads: dict[str, tuple[str, dict[str, str]]]) -> dict[str, object]:
    bodies = {}
    for name, (path, headers) in reads.items():
        response = await api.http.get(path, headers=headers)
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
        bodies[name] = response.json()
    return bodies


async def ready_again(api: Api, within: float = 30) -> float:
    started = time.monotonic()
    while (await answer(api, "/readyz"))[0] is None or (await api.http.get("/readyz")).status_code != 200:
        assert time.monotonic() - started < within, "not ready again after the store came back"
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def refused_write(api: Api) -> None:
    response, elapsed = await timed(api.http.post("/api/projects", headers=api.auth(*PMO), json=NEW_PROJECT,
                                                  timeout=PROMPT + 5))
    assert_unavailable("POST /api/projects", response, elapsed)


async def test_postgres_unreachable_answers_503_at_once_and_recovers(temporal_env, tmp_path, pg_schema_url, proxy):
    async with serve_api(temporal_env, tmp_path, event_store=via(pg_schema_url, proxy)) as api:
        reads = await seeded(api)
        before = await snapshot(api, reads)
        assert (await api.http.get("/readyz")).status_code == 200

        proxy.cut()
        for name, (path, headers) in reads.items():
            assert_unavailable(name, *await answer(api, path, headers))
        assert_unavailable("readyz", *await answer(api, "/readyz"))
        await refused_write(api)

        proxy.restore()
        await ready_again(api)
        assert await snapshot(api, reads) == before  # nothing lost, and the refused project is not there


async def test_postgres_write_lock_makes_readyz_503(temporal_env, tmp_path, pg_schema_url):
    schema = urlsplit(pg_schema_url).query.removeprefix("schema=")
    async with serve_api(temporal_env, tmp_path, event_store=pg_schema_url) as api:
        reads = await seeded(api)
        before = await snapshot(api, reads)
        with psycopg.connect(POSTGRES_URL) as locker:  # a transaction: the lock holds until rollback
            locker.execute(sql.SQL("LOCK TABLE {}.signoff_events IN ACCESS EXCLUSIVE MODE").format(
                sql.Identifier(schema)))
            assert_unavailable("readyz", *await answer(api, "/readyz"))
            assert_unavailable("deliverable", *await answer(api, *reads["deliverable"]))
            await refused_write(api)
            locker.rollback()
        await ready_again(api)
        assert await snapshot(api, reads) == before


async def test_sqlite_write_lock_makes_readyz_503_and_writes_503(temporal_env, tmp_path):
    async with serve_api(temporal_env, tmp_path) as api:
        reads = await seeded(api)
        before = await snapshot(api, reads)
        locker = sqlite3.connect(tmp_path / "events.sqlite", isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            assert_unavailable("readyz", *await answer(api, "/readyz"))
            await refused_write(api)
            assert await snapshot(api, reads) == before  # WAL: readers are not blocked by a writer
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        await ready_again(api)
        assert await snapshot(api, reads) == before
        made = await api.http.post("/api/projects", headers=api.auth(*PMO), json=NEW_PROJECT)
        assert made.status_code == 201, made.text


def test_store_errors_that_mean_not_now_are_503_and_mistakes_stay_500(tmp_path, pg_schema_url, proxy):
    def raised(call) -> Exception:
        try:
            call()
        except Exception as exc:
            return exc
        raise AssertionError("no error")

    holder = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    waiter = sqlite3.connect(tmp_path / "x.sqlite", timeout=0)
    assert not store_unavailable(raised(lambda: waiter.execute("SELECT * FROM nowhere")))  # a wrong statement
    holder.execute("BEGIN EXCLUSIVE")
    assert store_unavailable(raised(lambda: waiter.execute("INSERT INTO t VALUES (1)")))  # database is locked
    holder.execute("ROLLBACK")

    with psycopg.connect(POSTGRES_URL) as conn:
        assert not store_unavailable(raised(lambda: conn.execute("SELECT * FROM nowhere")))
    app = open_application(via(f"{pg_schema_url}&connect_timeout=1", proxy))
    proxy.cut()
    unreachable = raised(lambda: psycopg.connect(host=proxy.host, port=proxy.port, user="postgres", dbname="test",
                                                 connect_timeout=1))
    assert store_unavailable(unreachable)
    wrapped = raised(app.recorder.max_notification_id)  # eventsourcing's error around psycopg's pool timeout
    assert isinstance(wrapped, PersistenceError) and store_unavailable(wrapped)
    proxy.restore()
    app.close()


def test_store_timeouts_are_settings_and_the_url_may_set_them(tmp_path):
    settings = Settings(data_dir=tmp_path, store_lock_timeout_seconds=7, store_connect_timeout_seconds=2)
    assert store_env(settings.event_store_url())["SQLITE_LOCK_TIMEOUT"] == "7"
    env = store_env(Settings(event_store=f"{POSTGRES_URL}?schema=s&lock_timeout=1",
                             store_lock_timeout_seconds=7, store_connect_timeout_seconds=2).event_store_url())
    assert (env["POSTGRES_LOCK_TIMEOUT"], env["POSTGRES_CONNECT_TIMEOUT"], env["POSTGRES_SCHEMA"]) == ("1", "2", "s")
    with pytest.raises(Invalid):
        store_env(f"{POSTGRES_URL}?statement_timeout=0")
