"""Shared fixtures: a real Temporal dev server, real SQLite/PostgreSQL event stores, a real worker."""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.application import Signoff
from store.events import open_application
from workers.devstack import temporal_binary
from workflows import search

POSTGRES_URL = os.environ.get("SIGNOFF_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
        dev_server_log_level="error", search_attributes=search.KEYS)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose schema this test creates and drops, since CI reuses the server."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.sqlite'}"
    else:
        yield request.getfixturevalue("pg_schema_url")


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Signoff]:
    app = open_application(f"sqlite:///{tmp_path / 'events.sqlite'}")
    yield app
    app.close()
