"""Where events are stored: a SQLite file (embedded default) or PostgreSQL, chosen by one URL.

Every wait on the store is bounded, so an unreachable or locked store is answered with an error in
seconds instead of minutes: connecting (and waiting for a pooled connection), waiting for a lock, and
running one statement. The bounds come from the URL's query (`connect_timeout`, `lock_timeout`,
`statement_timeout`, in whole seconds), with short defaults.
"""

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from domain.application import Signoff
from domain.errors import Invalid

# Recently used aggregates stay in memory; each read still fetches the events recorded since
# (fast-forward), so several processes writing the same store never read a stale aggregate.
CACHE = {"AGGREGATE_CACHE_MAXSIZE": "10000", "AGGREGATE_CACHE_FASTFORWARD": "y"}
TIMEOUTS = {"connect_timeout": 3, "lock_timeout": 3, "statement_timeout": 5}
# eventsourcing's PostgreSQL, with bounded connects, statements and retries (store/postgres.py).
POSTGRES_FACTORY = "store.postgres:BoundedPostgresFactory"
STATEMENT_TIMEOUT = "STORE_STATEMENT_TIMEOUT"  # ours: eventsourcing has no such setting


def store_env(url: str) -> dict[str, str]:
    """eventsourcing's environment for `sqlite:///path` or `postgresql://user:pw@host:port/db?schema=s`."""
    return {**CACHE, **_persistence_env(url)}


def store_timeouts(url: str) -> dict[str, int]:
    query = parse_qs(urlsplit(url).query)
    timeouts = {}
    for name, default in TIMEOUTS.items():
        value = query.get(name, [str(default)])[0]
        if not value.isdigit() or int(value) < 1:
            raise Invalid(f"event store {name} must be a whole number of seconds, at least 1: {value!r}")
        timeouts[name] = int(value)
    return timeouts


def _persistence_env(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("sqlite", "postgres", "postgresql"):
        raise Invalid(f"unsupported event store {url!r}: use sqlite:///path or postgresql://…")
    timeouts = store_timeouts(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise Invalid(f"{url!r} names no SQLite file")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": str(timeouts["lock_timeout"])}
    query = parse_qs(parts.query)
    return {
        "PERSISTENCE_MODULE": POSTGRES_FACTORY,
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": query.get("schema", [""])[0],
        "POSTGRES_POOL_SIZE": query.get("pool_size", ["10"])[0],
        # eventsourcing uses this one bound both to wait for a pooled connection and, here, to connect.
        "POSTGRES_CONNECT_TIMEOUT": str(timeouts["connect_timeout"]),
        "POSTGRES_LOCK_TIMEOUT": str(timeouts["lock_timeout"]),
        STATEMENT_TIMEOUT: str(timeouts["statement_timeout"]),
        # A pooled connection that died while idle is noticed before use, not handed to a request.
        "POSTGRES_PRE_PING": "y",
    }


def is_postgres(env: dict[str, str]) -> bool:
    return env["PERSISTENCE_MODULE"] == POSTGRES_FACTORY


def postgres_bounds(env: dict[str, str], **settings: str) -> dict[str, str]:
    """psycopg.connect() arguments that bound the waits; `settings` add or replace server settings."""
    server = {"statement_timeout": f"{env[STATEMENT_TIMEOUT]}s", "lock_timeout": f"{env['POSTGRES_LOCK_TIMEOUT']}s",
              **settings}
    return {"connect_timeout": env["POSTGRES_CONNECT_TIMEOUT"],
            "options": " ".join(f"-c {name}={value}" for name, value in server.items())}


def postgres_connect_kwargs(env: dict[str, str], **settings: str) -> dict[str, Any]:
    return {"dbname": env["POSTGRES_DBNAME"], "host": env["POSTGRES_HOST"], "port": env["POSTGRES_PORT"],
            "user": env["POSTGRES_USER"], "password": env["POSTGRES_PASSWORD"], **postgres_bounds(env, **settings)}


def postgres_conninfo(env: dict[str, str], **settings: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(**postgres_connect_kwargs(env, **settings))


def open_application(url: str) -> Signoff:
    env = store_env(url)
    if not is_postgres(env):
        return Signoff(env=env)
    from psycopg import sql

    from store.postgres import schema_creation

    with schema_creation(env) as conn:  # replicas starting together create the schema one at a time
        if env["POSTGRES_SCHEMA"]:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(env["POSTGRES_SCHEMA"])))
        return Signoff(env=env)  # its constructor creates eventsourcing's tables


def probe_store(app: Signoff) -> None:
    """Read the end of the log, then take the lock a write takes and let go at once. Raises the store's
    error if it cannot do either within its timeouts; records nothing."""
    recorder: Any = app.recorder
    recorder.max_notification_id()
    with recorder.datastore.transaction(commit=False) as cursor:
        if hasattr(recorder, "lock_table_statements"):  # PostgreSQL: the table lock every insert takes
            for statement in recorder.lock_table_statements:
                cursor.execute(statement)
        else:  # SQLite: any write statement waits for the database's write lock
            cursor.execute(f"DELETE FROM {recorder.events_table_name} WHERE 0")
