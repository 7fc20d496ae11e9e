"""Event stores for the benchmarks: a SQLite file in a temp dir, or a fresh PostgreSQL schema."""

import uuid
from collections.abc import Callable
from pathlib import Path

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def store_url(store: str, tmp: Path, prefix: str = "bench") -> tuple[str, Callable[[], None]]:
    """The event store's URL and how to drop it."""
    if store == "sqlite":
        return f"sqlite:///{tmp / f'{prefix}-{uuid.uuid4().hex[:6]}.sqlite'}", lambda: None
    import psycopg
    from psycopg import sql

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"

    def drop() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return f"{POSTGRES_URL}?schema={schema}", drop
