"""List and inbox views, kept from the event store's notification log.

A view row is rebuilt from the aggregate's current state each time one of its events appears
in the log, and the position read is saved in the same transaction as the rows, so a catch-up
that is interrupted or runs twice neither skips nor repeats. Readers catch up before they read,
so a list always shows what the event store held when it was asked.
"""

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.application import Signoff
from domain.project import Project
from store.events import is_postgres, postgres_conninfo, store_env

VIEW_NAME = "signoff-lists"
BATCH = 500
SCHEMA = [
    "CREATE TABLE IF NOT EXISTS signoff_view_position (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS signoff_view_projects (id TEXT PRIMARY KEY, created_at TEXT NOT NULL,"
    " summary TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS signoff_view_deliverables (id TEXT PRIMARY KEY, project_id TEXT NOT NULL,"
    " status TEXT NOT NULL, updated_at TEXT NOT NULL, summary TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS signoff_view_deliverables_project ON signoff_view_deliverables (project_id, status)",
    # Which projects use which policy (have a deliverable under its name): who may read its user ids.
    # A dependency shows in the lists of both projects: the requesting one and the providing one.
    # `notified`: who the escalations of the stall clock's current run reached, notified or granted (the
    # inbox's escalations).
    "CREATE TABLE IF NOT EXISTS signoff_view_dependencies (id TEXT PRIMARY KEY, project_id TEXT NOT NULL,"
    " providing_project_id TEXT, status TEXT NOT NULL, stalled BOOLEAN NOT NULL, overdue BOOLEAN NOT NULL,"
    " updated_at TEXT NOT NULL, notified TEXT NOT NULL, summary TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS signoff_view_dependencies_project ON signoff_view_dependencies (project_id)",
    "CREATE INDEX IF NOT EXISTS signoff_view_dependencies_providing ON signoff_view_dependencies"
    " (providing_project_id)",
    # Webhook deliveries: what became of each message sent to a project's webhooks.
    "CREATE TABLE IF NOT EXISTS signoff_view_deliveries (id TEXT PRIMARY KEY, project_id TEXT NOT NULL,"
    " status TEXT NOT NULL, updated_at TEXT NOT NULL, summary TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS signoff_view_deliveries_project ON signoff_view_deliveries (project_id, status)",
    "CREATE TABLE IF NOT EXISTS signoff_view_policy_projects (policy TEXT NOT NULL, project_id TEXT NOT NULL,"
    " PRIMARY KEY (policy, project_id))",
]
UPSERT_PROJECT = ("INSERT INTO signoff_view_projects (id, created_at, summary) VALUES (?, ?, ?) "
                  "ON CONFLICT (id) DO UPDATE SET summary = excluded.summary")
UPSERT_DELIVERABLE = ("INSERT INTO signoff_view_deliverables (id, project_id, status, updated_at, summary) "
                      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                      "updated_at = excluded.updated_at, summary = excluded.summary")
UPSERT_DEPENDENCY = ("INSERT INTO signoff_view_dependencies (id, project_id, providing_project_id, status, stalled,"
                     " overdue, updated_at, notified, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO"
                     " UPDATE SET status = excluded.status, stalled = excluded.stalled, overdue = excluded.overdue,"
                     " updated_at = excluded.updated_at, notified = excluded.notified, summary = excluded.summary")
UPSERT_DELIVERY = ("INSERT INTO signoff_view_deliveries (id, project_id, status, updated_at, summary) "
                   "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                   "updated_at = excluded.updated_at, summary = excluded.summary")
# Marks that a list was filled from the whole log once (views older than its table had already read
# past its aggregates' events): the marker's name, and the topic prefix of the events it lists.
DEPENDENCIES_FILLED = "signoff-dependencies-filled"
DELIVERIES_FILLED = "signoff-deliveries-filled"
BACKFILLS = ((DEPENDENCIES_FILLED, "domain.dependency:"), (DELIVERIES_FILLED, "domain.delivery:"))
INSERT_POLICY_USE = ("INSERT INTO signoff_view_policy_projects (policy, project_id) VALUES (?, ?) "
                     "ON CONFLICT (policy, project_id) DO NOTHING")


def deliverable_summary(state: Any) -> dict[str, Any]:
    stage = state.stage
    # Only escalations of the stage as it stands now: a reopened stage starts with a clean slate.
    current = [e for e in state.escalations
               if stage is not None and e.stage_index == stage.index and e.at >= stage.opened_at]
    return {
        "id": state.id, "project_id": state.project_id, "title": state.title, "submitter": state.submitter,
        "status": state.status, "revision": state.revision, "policy": state.policy.model_dump(),
        "stage": None if stage is None else {"index": stage.index, "name": stage.name, "open": stage.open,
                                             "opened_at": stage.opened_at.isoformat(),
                                             "sla_due_at": stage.sla_due_at.isoformat() if stage.sla_due_at else None,
                                             "escalation_level": stage.escalation_level},
        "waiting_on": stage.waiting_on if stage is not None else [],
        "notified": sorted({p for e in current for p in e.notified}),
        "created_at": state.created_at.isoformat(), "updated_at": state.updated_at.isoformat(),
    }


def sortable_time(value: str | datetime) -> str:
    """A time as fixed-width UTC text, so text order is time order (ISO strings drop zero microseconds)."""
    if isinstance(value, str) and len(value) == 32 and value.endswith("+00:00"):
        return value[:26] + "Z"  # already UTC with microseconds: what the domain writes (fast path)
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dependency_row(dependency: Any) -> tuple[Any, ...]:
    """The list row of a Dependency aggregate: its state as JSON, with what lists filter on beside it."""
    state = dependency.to_state()
    summary = state.model_dump(mode="json")
    # Escalations of the stall clock's current run only: progress starts the escalation over.
    # Those granted the power to resolve or re-assign are aimed at as much as those notified.
    notified = sorted({p for e in state.escalations if e.at >= dependency.clock.started_at
                       for p in (*e.notified, *e.granted)})
    return (summary["id"], summary["project_id"], summary["providing_project_id"], state.status, state.stalled,
            state.overdue, sortable_time(summary["updated_at"]), json.dumps(notified), json.dumps(summary))


def delivery_row(state: dict[str, Any]) -> tuple[Any, ...]:
    """The list row of a delivery (Delivery.to_state())."""
    return (state["id"], state["project_id"], state["status"], sortable_time(state["updated_at"]), json.dumps(state))


def project_summary(project: Project) -> dict[str, Any]:
    # Each webhook's id, url and events only: never its generation, and there is no secret to show.
    webhooks = [{"id": w["id"], "url": w["url"], "events": w["events"]}
                for w in getattr(project, "webhooks", {}).values()]
    return {"id": str(project.id), "name": project.name, "members": project.members,
            "escalation_path": project.escalation_path, "phases": project.phases,
            "calendar": project.calendar, "webhooks": webhooks, "created_by": project.created_by,
            "created_at": project.created_on.isoformat()}


class ReadModel:
    def __init__(self, app: Signoff, event_store_url: str):
        self.app = app
        self.env = store_env(event_store_url)
        self.is_postgres = is_postgres(self.env)
        self.lock = threading.Lock()
        with self._creation(), self._transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement)
            cur.execute(self._sql("INSERT INTO signoff_view_position (name, position) VALUES (?, 0) "
                                  "ON CONFLICT (name) DO NOTHING"), (VIEW_NAME,))
            self._backfill_policy_use(cur)
            for marker, prefix in BACKFILLS:
                self._backfill(cur, marker, prefix)

    # ---- connection ---------------------------------------------------------------------------
    def _creation(self) -> Any:
        if not self.is_postgres:
            return nullcontext()
        from store.postgres import schema_creation

        return schema_creation(self.env)  # replicas starting together take turns creating tables

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        if self.is_postgres:
            import psycopg

            schema = {"search_path": self.env["POSTGRES_SCHEMA"]} if self.env["POSTGRES_SCHEMA"] else {}
            # The store's timeouts: an unreachable or locked database is an error within seconds.
            with psycopg.connect(postgres_conninfo(self.env, **schema)) as conn, conn.cursor() as cur:
                yield cur  # psycopg commits on a clean exit, rolls back on an exception
            return
        # A file of its own beside the event store, so view writes never queue behind event writes.
        path = Path(self.env["SQLITE_DBNAME"]).with_suffix(".views.sqlite")
        conn = sqlite3.connect(path, timeout=float(self.env["SQLITE_LOCK_TIMEOUT"]), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.cursor()
            try:
                yield cur
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.is_postgres else statement

    # ---- writing ------------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Bring the views up to the end of the notification log; answer how many notifications were read."""
        read = 0
        with self.lock:
            while True:
                with self._transaction() as cur:
                    cur.execute(self._sql("SELECT position FROM signoff_view_position WHERE name = ?"
                                          + (" FOR UPDATE" if self.is_postgres else "")), (VIEW_NAME,))
                    position = cur.fetchone()[0]
                    batch = self.app.recorder.select_notifications(start=position, limit=BATCH,
                                                                   inclusive_of_start=False)
                    if not batch:
                        return read
                    touched = {n.originator_id: n.topic for n in batch}
                    for originator_id, topic in touched.items():
                        self._refresh(cur, originator_id, topic)
                    cur.execute(self._sql("UPDATE signoff_view_position SET position = ? WHERE name = ?"),
                                (batch[-1].id, VIEW_NAME))
                    read += len(batch)

    def rebuild(self) -> int:
        """Empty every list and read the whole log again (`signoff projector --rebuild`)."""
        with self.lock:
            with self._transaction() as cur:
                for table in ("projects", "deliverables", "dependencies", "deliveries", "policy_projects"):
                    cur.execute(f"DELETE FROM signoff_view_{table}")
                cur.execute(self._sql("UPDATE signoff_view_position SET position = 0"))
        return self.catch_up()

    def _refresh(self, cur: Any, originator_id: UUID, topic: str) -> None:
        if topic.startswith("domain.deliverable:"):
            summary = deliverable_summary(self.app.get_deliverable(originator_id))
            cur.execute(self._sql(UPSERT_DELIVERABLE), (summary["id"], summary["project_id"], summary["status"],
                                                        summary["updated_at"], json.dumps(summary)))
            cur.execute(self._sql(INSERT_POLICY_USE), (summary["policy"]["name"], summary["project_id"]))
        elif topic.startswith("domain.dependency:"):
            cur.execute(self._sql(UPSERT_DEPENDENCY), dependency_row(self.app.dependency_aggregate(originator_id)))
        elif topic.startswith("domain.delivery:"):
            cur.execute(self._sql(UPSERT_DELIVERY), delivery_row(self.app.get_delivery(originator_id)))
        elif topic.startswith("domain.project:"):
            summary = project_summary(self.app.get_project(originator_id))
            cur.execute(self._sql(UPSERT_PROJECT), (summary["id"], summary["created_at"], json.dumps(summary)))

    def _backfill_policy_use(self, cur: Any) -> None:
        # Views built before the policy-use table existed are already past their deliverables' events.
        cur.execute("SELECT 1 FROM signoff_view_policy_projects LIMIT 1")
        if cur.fetchone() is not None:
            return
        cur.execute("SELECT project_id, summary FROM signoff_view_deliverables")
        for project_id, summary in cur.fetchall():
            cur.execute(self._sql(INSERT_POLICY_USE), (json.loads(summary)["policy"]["name"], project_id))

    def _backfill(self, cur: Any, marker: str, prefix: str) -> None:
        """Fill a list whose table is newer than the views' position from the log read so far, once."""
        cur.execute(self._sql("SELECT position FROM signoff_view_position WHERE name = ?"), (marker,))
        if cur.fetchone() is not None:
            return
        cur.execute(self._sql("SELECT position FROM signoff_view_position WHERE name = ?"), (VIEW_NAME,))
        read_to = cur.fetchone()[0]
        position = 0
        while position < read_to:  # only what the views read already; catch_up reads the rest
            batch = self.app.recorder.select_notifications(start=position, limit=BATCH, inclusive_of_start=False,
                                                           stop=read_to, topics=())
            if not batch:
                break
            for originator_id in {n.originator_id for n in batch if n.topic.startswith(prefix)}:
                self._refresh(cur, originator_id, prefix)
            position = batch[-1].id
        cur.execute(self._sql("INSERT INTO signoff_view_position (name, position) VALUES (?, ?)"),
                    (marker, read_to))

    # ---- reading ------------------------------------------------------------------------------
    def projects(self) -> list[dict[str, Any]]:
        self.catch_up()
        with self._transaction() as cur:
            cur.execute("SELECT summary FROM signoff_view_projects ORDER BY created_at, id")
            return [json.loads(r[0]) for r in cur.fetchall()]

    def projects_of(self, user: str, everyone: bool = False) -> list[dict[str, Any]]:
        """The projects `user` is a member of, or all of them when `everyone` (pmo and admin)."""
        return [p for p in self.projects() if everyone or any(m["user"] == user for m in p["members"])]

    def projects_using_policy(self, policy: str) -> list[dict[str, Any]]:
        """The projects with a deliverable under the policy `policy` (any version)."""
        self.catch_up()
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT p.summary FROM signoff_view_policy_projects u "
                                  "JOIN signoff_view_projects p ON p.id = u.project_id WHERE u.policy = ? "
                                  "ORDER BY p.created_at, p.id"), (policy,))
            return [json.loads(r[0]) for r in cur.fetchall()]

    def deliverables(self, project_ids: list[str], status: str | None = None) -> list[dict[str, Any]]:
        if not project_ids:
            return []
        self.catch_up()
        where = f"project_id IN ({', '.join('?' for _ in project_ids)})"
        params: list[Any] = list(project_ids)
        if status:
            where += " AND status = ?"
            params.append(status)
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT summary FROM signoff_view_deliverables WHERE {where} "
                                  "ORDER BY updated_at DESC, id"), params)
            return [json.loads(r[0]) for r in cur.fetchall()]

    def dependencies(self, project_ids: list[str], status: str | None = None, stalled: bool | None = None,
                     overdue: bool | None = None) -> list[dict[str, Any]]:
        """Dependencies requested by or provided by any of `project_ids`, newest change first."""
        return [summary for summary, _ in self.dependency_rows(project_ids, status, stalled, overdue)]

    def dependency_rows(self, project_ids: list[str], status: str | None = None, stalled: bool | None = None,
                        overdue: bool | None = None) -> list[tuple[dict[str, Any], list[str]]]:
        """Each dependency's state with who its current escalations notified, as `dependencies` lists them."""
        if not project_ids:
            return []
        self.catch_up()
        marks = ", ".join("?" for _ in project_ids)
        where = f"(project_id IN ({marks}) OR providing_project_id IN ({marks}))"
        params: list[Any] = [*project_ids, *project_ids]
        for column, value in (("status", status), ("stalled", stalled), ("overdue", overdue)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT summary, notified FROM signoff_view_dependencies WHERE {where} "
                                  "ORDER BY updated_at DESC, id"), params)
            return [(json.loads(summary), json.loads(notified)) for summary, notified in cur.fetchall()]

    def deliveries(self, project_id: str, status: str | None = None) -> list[dict[str, Any]]:
        """The project's webhook deliveries (Delivery.to_state()), newest change first."""
        self.catch_up()
        where, params = "project_id = ?", [project_id]
        if status:
            where += " AND status = ?"
            params.append(status)
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT summary FROM signoff_view_deliveries WHERE {where} "
                                  "ORDER BY updated_at DESC, id"), params)
            return [json.loads(r[0]) for r in cur.fetchall()]
