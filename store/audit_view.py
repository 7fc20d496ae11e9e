"""The audit view: the audit rows, the subjects they are named after, the signed checkpoints, and
the position in the event store's log they were made up to, all in one database so that one
transaction writes the rows and the position together (eventsourcing's tracking recorder, extended).

SQLite: a file of its own beside the event store (`<events>.audit.sqlite`), so reads of the trail
never queue behind event writes. PostgreSQL: tables in the event store's schema.
"""

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteConnectionPool, SQLiteTrackingRecorder
from eventsourcing.utils import Environment

from domain.audit import GENESIS, Subject
from store.events import is_postgres, store_env
from store.views import sortable_time

NAME = "signoff_audit"  # the projection's name: eventsourcing's tracking table is `signoff_audit_tracking` on PG
APPLICATION = "signoff"  # the application whose log is followed
CHUNK = 1000  # rows per read while streaming: exports run in constant memory
MANY_PROJECTS = 8  # past this many projects, a scoped read walks the trail instead of a branch each
CACHE_KIB = 64 * 1024  # SQLite page cache per connection of the audit view (grows only as used)

TABLES = [
    ("CREATE TABLE IF NOT EXISTS {p}signoff_audit (seq {seq_type} PRIMARY KEY, position BIGINT NOT NULL,"
     " at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, subject_kind TEXT NOT NULL,"
     " subject_id TEXT NOT NULL, project_id TEXT, other_project_id TEXT, hash TEXT NOT NULL, body TEXT NOT NULL)"),
    "CREATE INDEX IF NOT EXISTS signoff_audit_actor ON {p}signoff_audit (actor, seq)",
    "CREATE INDEX IF NOT EXISTS signoff_audit_project ON {p}signoff_audit (project_id, seq)",
    # Only dependencies between two projects have one: a partial index costs the rest nothing.
    ("CREATE INDEX IF NOT EXISTS signoff_audit_other_project ON {p}signoff_audit (other_project_id, seq)"
     " WHERE other_project_id IS NOT NULL"),
    "CREATE INDEX IF NOT EXISTS signoff_audit_subject ON {p}signoff_audit (subject_id, seq)",
    "CREATE INDEX IF NOT EXISTS signoff_audit_action ON {p}signoff_audit (action{bytewise}, seq)",
    "CREATE INDEX IF NOT EXISTS signoff_audit_at ON {p}signoff_audit (at, seq)",
    "CREATE TABLE IF NOT EXISTS {p}signoff_audit_subjects (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    # Signed statements of the chain's length and head: they outlive a rebuild, which must agree with them.
    ("CREATE TABLE IF NOT EXISTS {p}signoff_audit_checkpoints (seq BIGINT PRIMARY KEY, hash TEXT NOT NULL,"
     " at TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL)"),
]


@dataclass(frozen=True)
class Scope:
    """The rows a member may read: those of `projects` (theirs, on either side of a dependency), except
    webhook deliveries, which only the projects in `deliveries_of` (where they hold the pmo role) show."""
    projects: tuple[str, ...]
    deliveries_of: tuple[str, ...] = ()


class Stale(Exception):
    """Another writer moved the view on since this one read where it stood."""


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    project_id: str | None = None
    subject_id: str | None = None
    subject_kind: str | None = None
    action: str | None = None  # a name or a prefix of one (`deliverable.decision`)
    since: datetime | None = None
    until: datetime | None = None
    to_seq: int | None = None  # no row after it (an export ending at a signed checkpoint)

    def as_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def window(where: AuditFilter) -> tuple[list[str], list[Any]]:
    """The time window's clauses: since <= at < until."""
    clauses, params = [], []
    if where.since is not None:
        clauses.append("at >= ?")
        params.append(sortable_time(where.since))
    if where.until is not None:
        clauses.append("at < ?")
        params.append(sortable_time(where.until))
    return clauses, params


class AuditRows:
    """The view's SQL, for either database: `?` placeholders, `{p}` the schema prefix."""

    prefix = ""
    placeholder = "?"
    # Text compared byte by byte, so that `.` < `/` and nothing sorts between them (a prefix range):
    # SQLite's default; PostgreSQL's database collation may ignore punctuation.
    bytewise = ""
    # SQLite: INTEGER PRIMARY KEY is the table's own rowid, so a row is found by seq in one B-tree, not two
    # (BIGINT would make a separate index of seq).
    seq_type = "INTEGER"

    def _sql(self, text: str) -> str:
        text = text.replace("{p}", self.prefix).replace("{bytewise}", self.bytewise).replace("{seq_type}", self.seq_type)
        return text.replace("?", self.placeholder) if self.placeholder != "?" else text

    def _lock(self, cur: Any) -> None:
        raise NotImplementedError

    def _tuples(self, cur: Any) -> list[tuple[Any, ...]]:
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()]

    def _create_audit_tables(self, cur: Any) -> None:
        for statement in TABLES:
            cur.execute(self._sql(statement))

    # ---- writing (the projector) --------------------------------------------------------------
    def where_it_stands(self) -> tuple[int | None, int, str]:
        """The log position read up to, and the chain's length and head."""
        datastore: Any = self.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as cur:
            position = self._max_tracking_id(APPLICATION, cur)  # type: ignore[attr-defined]
            cur.execute(self._sql("SELECT seq, hash FROM {p}signoff_audit ORDER BY seq DESC LIMIT 1"))
            last = self._tuples(cur)
        seq, head = last[0] if last else (0, GENESIS)
        return position, seq, head

    def subject(self, uid: str) -> Subject | None:
        with self.datastore.transaction(commit=False) as cur:  # type: ignore[attr-defined]
            cur.execute(self._sql("SELECT body FROM {p}signoff_audit_subjects WHERE id = ?"), (uid,))
            found = self._tuples(cur)
        return Subject.from_json(found[0][0]) if found else None

    def append(self, rows: list[dict[str, Any]], subjects: list[Subject], read_from: int | None,
               read_to: int) -> None:
        """Add `rows` (made from the log after `read_from` up to `read_to`) and the subjects they changed,
        and record `read_to` as read, in one transaction. Stale if the view is no longer at `read_from`."""
        with self.datastore.transaction(commit=True) as cur:  # type: ignore[attr-defined]
            self._lock(cur)
            if self._max_tracking_id(APPLICATION, cur) != read_from:  # type: ignore[attr-defined]
                raise Stale(f"the audit view moved past {read_from}")
            if rows:
                cur.executemany(self._sql(
                    "INSERT INTO {p}signoff_audit (seq, position, at, actor, action, subject_kind, subject_id,"
                    " project_id, other_project_id, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                    [(r["seq"], r["position"], sortable_time(r["at"]), r["actor"], r["action"], r["subject"]["kind"],
                      r["subject"]["id"], r["project_id"], r["_other_project_id"], r["hash"], r["_body"])
                     for r in rows])
            if subjects:
                cur.executemany(self._sql(
                    "INSERT INTO {p}signoff_audit_subjects (id, body) VALUES (?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET body = excluded.body"),
                    [(s.id, s.to_json()) for s in subjects])
            self._insert_tracking(cur, Tracking(APPLICATION, read_to))  # type: ignore[attr-defined]

    def add_checkpoint(self, seq: int, head: str, at: str, key_id: str, signature: str) -> None:
        with self.datastore.transaction(commit=True) as cur:  # type: ignore[attr-defined]
            cur.execute(self._sql("INSERT INTO {p}signoff_audit_checkpoints (seq, hash, at, key_id, signature) "
                                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING"),
                        (seq, head, at, key_id, signature))

    def checkpoints(self, up_to: int | None = None) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as cur:  # type: ignore[attr-defined]
            cur.execute(self._sql("SELECT seq, hash, at, key_id, signature FROM {p}signoff_audit_checkpoints "
                                  "WHERE seq <= ? ORDER BY seq"), (up_to if up_to is not None else 2 ** 62,))
            return [dict(zip(("seq", "hash", "at", "key_id", "signature"), r)) for r in self._tuples(cur)]

    def clear(self) -> None:
        """Forget every row, subject and the position (for a rebuild); checkpoints stay: the rebuilt
        chain has to agree with what was signed."""
        with self.datastore.transaction(commit=True) as cur:  # type: ignore[attr-defined]
            self._lock(cur)
            cur.execute(self._sql("DELETE FROM {p}signoff_audit"))
            cur.execute(self._sql("DELETE FROM {p}signoff_audit_subjects"))
            cur.execute(self._sql(f"DELETE FROM {self._tracking_table()} WHERE application_name = ?"),
                        (APPLICATION,))

    def _tracking_table(self) -> str:
        raise NotImplementedError

    # ---- reading ------------------------------------------------------------------------------
    def position(self) -> int:
        return self.max_tracking_id(APPLICATION) or 0  # type: ignore[attr-defined]

    def page(self, where: AuditFilter, scope: Scope | None, after_seq: int | None, limit: int,
             ascending: bool, bounds: tuple[int | None, int | None] | None = None) -> list[tuple[int, str]]:
        """Up to `limit` rows (seq, JSON) matching `where` among those `scope` allows (None: all),
        after `after_seq` in the order asked.

        Each project asked about is read on its own, through its `(project_id, seq)` and
        `(other_project_id, seq)` indexes in seq order, and the branches merged here: an OR of the two
        columns (or of several projects) makes the databases gather and sort every row of the projects
        before the first one is returned."""
        common, params = self._filters(where)
        with self.datastore.transaction(commit=False) as cur:  # type: ignore[attr-defined]
            # The branches are separate statements: on PostgreSQL (READ COMMITTED) each sees what was
            # committed when it ran. Bounding all by the head read first keeps a batch committed in between
            # out of all of them, so no branch runs ahead of another and the next page loses nothing.
            cur.execute(self._sql("SELECT MAX(seq) FROM {p}signoff_audit"))
            head = self._tuples(cur)[0][0] or 0
            common.append("seq <= ?")
            params.append(int(head))
            if bounds is None or (bounds == (None, None) and (where.since or where.until)):
                bounds = self._seq_bounds(cur, where)
            if bounds is None:
                return []
            if bounds != (None, None):
                common.append("seq BETWEEN ? AND ?")
                params.extend(bounds)
            if after_seq is not None:
                common.append("seq > ?" if ascending else "seq < ?")
                params.append(after_seq)
            order = "ASC" if ascending else "DESC"
            found: list[list[tuple[int, str]]] = []
            for branch, branch_params in self._branches(where, scope):
                clauses = " AND ".join([*branch, *common]) or "1 = 1"
                cur.execute(self._sql(f"SELECT seq, body FROM {{p}}signoff_audit WHERE {clauses} ORDER BY seq {order} "
                                      "LIMIT ?"), (*branch_params, *params, limit))
                found.append([(int(seq), body) for seq, body in self._tuples(cur)])
        if len(found) == 1:
            return found[0]
        merged, seen = [], set()
        for seq, body in heapq.merge(*found, key=lambda row: row[0], reverse=not ascending):
            if seq not in seen:  # a dependency between two of the projects asked about is in both branches
                seen.add(seq)
                merged.append((seq, body))
                if len(merged) == limit:
                    break
        return merged

    def _seq_bounds(self, cur: Any, where: AuditFilter) -> tuple[int | None, int | None] | None:
        """The first and last seq of the rows in the time window (None: no row in it; (None, None): no
        window). Rows follow the log, so a window is nearly one run of seqs: reading that run in seq
        order beats gathering the window's rows and sorting them."""
        if where.since is None and where.until is None:
            return None, None
        clauses, params = window(where)
        # `seq + 0`: else PostgreSQL answers MIN/MAX by walking the primary key and filtering on `at`
        # (557 ms at 1M rows), where the `(at, seq)` index gives the window at once (1.5 ms).
        cur.execute(self._sql(f"SELECT MIN(seq + 0), MAX(seq + 0) FROM {{p}}signoff_audit "
                              f"WHERE {' AND '.join(clauses)}"), params)
        low, high = self._tuples(cur)[0]
        return None if low is None else (int(low), int(high))

    @staticmethod
    def _branches(where: AuditFilter, scope: Scope | None) -> list[tuple[list[str], list[Any]]]:
        """One (clauses, params) per index range to read: the whole trail, or each project's rows (its own
        and the dependencies it provides). A member's rows never include global rows, and a project's
        deliveries only where they may read them."""
        if scope is None and where.project_id is None:
            return [([], [])]
        projects = [where.project_id] if where.project_id is not None else list(scope.projects if scope else [])
        if scope is not None:
            projects = [p for p in projects if p in scope.projects]
        if len(projects) > MANY_PROJECTS:
            # Someone in many projects: their rows are a good share of the trail, so walking it newest
            # first and keeping theirs beats a branch per project. `coalesce` keeps the databases from
            # gathering and sorting through the project indexes instead.
            marks = ", ".join("?" for _ in projects)
            shown = [p for p in projects if scope is None or p in scope.deliveries_of]
            visible = (f"(coalesce(project_id, '') IN ({marks}) OR coalesce(other_project_id, '') IN ({marks}))"
                       + ("" if scope is None else " AND subject_kind <> 'delivery'"))
            params: list[Any] = [*projects, *projects]
            if shown and scope is not None:
                visible = f"({visible}) OR coalesce(project_id, '') IN ({', '.join('?' for _ in shown)})"
                params += shown
            return [([f"({visible})"], params)]
        branches = []
        for project in dict.fromkeys(projects):
            hidden = [] if scope is None or project in scope.deliveries_of else ["subject_kind <> 'delivery'"]
            branches.append((["project_id = ?", *hidden], [project]))
            branches.append((["other_project_id = ?", *hidden], [project]))
        return branches or [(["1 = 0"], [])]

    def stream(self, where: AuditFilter, scope: Scope | None, ascending: bool) -> Iterator[tuple[int, str]]:
        """Every matching row's seq and JSON, a chunk at a time (keyset reads: constant memory)."""
        after = None
        # The window's run of seqs once, not per chunk (finding it reads the whole window's index).
        with self.datastore.transaction(commit=False) as cur:  # type: ignore[attr-defined]
            bounds = self._seq_bounds(cur, where)
        if bounds is None:
            return
        while True:
            chunk = self.page(where, scope, after, CHUNK, ascending, bounds)
            yield from chunk
            if len(chunk) < CHUNK:
                return
            after = chunk[-1][0]

    def rows_after(self, seq: int, limit: int = CHUNK) -> list[tuple[int, int, str]]:
        """(seq, position, JSON) of the rows after `seq`, oldest first."""
        with self.datastore.transaction(commit=False) as cur:  # type: ignore[attr-defined]
            cur.execute(self._sql("SELECT seq, position, body FROM {p}signoff_audit WHERE seq > ? ORDER BY seq "
                                  "LIMIT ?"), (seq, limit))
            return [(int(s), int(p), b) for s, p, b in self._tuples(cur)]

    def _filters(self, where: AuditFilter) -> tuple[list[str], list[Any]]:
        """The filters every branch shares (the time window is applied as `at` and as its seq run)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("actor", where.actor), ("subject_id", where.subject_id),
                              ("subject_kind", where.subject_kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.action is not None:  # the name itself, or any name under it (`a.b` takes `a.b.c`, not `a.bc`)
            clauses.append(f"(action = ? OR (action{self.bytewise} > ? AND action{self.bytewise} < ?))")
            params += [where.action, where.action + ".", where.action + "/"]
        in_window, window_params = window(where)
        clauses += in_window
        params += window_params
        if where.to_seq is not None:
            clauses.append("seq <= ?")
            params.append(where.to_seq)
        return clauses, params


class NoFsyncPerCommitPool(SQLiteConnectionPool):
    """The view is made from the event store, and its position commits with its rows: a commit lost to
    a power cut is made again from the log. So its file needs no fsync per commit (WAL with
    synchronous=NORMAL still never leaves it corrupt)."""

    def _create_connection(self) -> Any:
        connection = super()._create_connection()
        connection._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
        # Six indexes take a row each: with SQLite's 2 MB page cache a large trail reads their pages from
        # disk again and again while it grows.
        connection._sqlite_conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        return connection


class SQLiteAuditView(AuditRows, SQLiteTrackingRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *(self._sql(s) for s in TABLES)]

    def __init__(self, datastore: Any, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        datastore.pool.__class__ = NoFsyncPerCommitPool  # before its first connection: see the class

    def _lock(self, cur: Any) -> None:
        # Take the write lock first, so two writers queue instead of one failing to upgrade its lock.
        cur.execute("UPDATE tracking SET notification_id = notification_id WHERE application_name = ?",
                    (APPLICATION,))

    def _tracking_table(self) -> str:
        return "tracking"


class PostgresAuditView(AuditRows, PostgresTrackingRecorder):
    placeholder = "%s"
    bytewise = ' COLLATE "C"'
    seq_type = "BIGINT"

    def __init__(self, datastore: Any, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        self.prefix = f'"{self.datastore.schema}".'

    def _create_table(self, curs: Any) -> None:
        super()._create_table(curs)
        self._create_audit_tables(curs)

    def _lock(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"signoff audit {self.datastore.schema}",))

    def _tracking_table(self) -> str:
        return f'"{self.datastore.schema}"."{self.tracking_table_name}"'


def open_audit_view(event_store_url: str) -> AuditRows:
    """The audit view of the event store at `event_store_url` (tables made if missing)."""
    env = store_env(event_store_url)
    if is_postgres(env):
        view_class: type = PostgresAuditView
    else:
        env = {**env, "SQLITE_DBNAME": str(Path(env["SQLITE_DBNAME"]).with_suffix(".audit.sqlite"))}
        view_class = SQLiteAuditView
    return InfrastructureFactory.construct(Environment(NAME, env)).tracking_recorder(view_class)

