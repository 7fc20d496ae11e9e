"""Where events are stored: a SQLite file (embedded default) or PostgreSQL, chosen by one URL."""

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from domain.application import Signoff
from domain.errors import Invalid

# Recently used aggregates stay in memory; each read still fetches the events recorded since
# (fast-forward), so several processes writing the same store never read a stale aggregate.
CACHE = {"AGGREGATE_CACHE_MAXSIZE": "10000", "AGGREGATE_CACHE_FASTFORWARD": "y"}


def store_env(url: str) -> dict[str, str]:
    """eventsourcing's environment for `sqlite:///path` or `postgresql://user:pw@host:port/db?schema=s`."""
    return {**CACHE, **_persistence_env(url)}


def _persistence_env(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise Invalid(f"{url!r} names no SQLite file")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path, "SQLITE_LOCK_TIMEOUT": "30"}
    if parts.scheme in ("postgres", "postgresql"):
        query = parse_qs(parts.query)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": query.get("schema", [""])[0],
            "POSTGRES_POOL_SIZE": query.get("pool_size", ["10"])[0],
        }
    raise Invalid(f"unsupported event store {url!r}: use sqlite:///path or postgresql://…")


def postgres_conninfo(env: dict[str, str]) -> str:
    return (f"dbname={env['POSTGRES_DBNAME']} host={env['POSTGRES_HOST']} port={env['POSTGRES_PORT']} "
            f"user={env['POSTGRES_USER']} password={env['POSTGRES_PASSWORD']}")


def open_application(url: str) -> Signoff:
    env = store_env(url)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres" and env["POSTGRES_SCHEMA"]:
        import psycopg
        from psycopg import sql

        with psycopg.connect(postgres_conninfo(env), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(env["POSTGRES_SCHEMA"])))
    return Signoff(env=env)
