"""eventsourcing's PostgreSQL store with every wait bounded, and one-at-a-time schema creation.

eventsourcing's pool connects without libpq's connect_timeout (a host that has gone away keeps its
connecting threads for minutes), lets a statement wait for a lock forever, and tries each failed
call ten times. Here connects, statements and lock waits end within the store's timeouts, and a
failed call is tried again only when it failed at once (a pooled connection that had died), so an
outage is answered in seconds.
"""

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory

from store.events import STATEMENT_TIMEOUT, postgres_bounds, postgres_connect_kwargs

QUICK = 1.0  # seconds: a failure within this is a dead connection worth another try, not a timeout
ATTEMPTS = 3
# Schema creation may queue behind other replicas doing the same; a boot waits this long for its turn.
CREATION_WAIT = "60s"


def retry_quick_failures(method: Callable[..., Any]) -> Callable[..., Any]:
    call = getattr(method, "__wrapped__", method)  # without eventsourcing's ten tries

    @functools.wraps(call)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return call(*args, **kwargs)
            except (InterfaceError, OperationalError):
                if attempt == ATTEMPTS or time.monotonic() - started > QUICK:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    return bounded


class BoundedApplicationRecorder(PostgresApplicationRecorder):
    insert_events = retry_quick_failures(PostgresApplicationRecorder.insert_events)
    select_events = retry_quick_failures(PostgresApplicationRecorder.select_events)
    select_notifications = retry_quick_failures(PostgresApplicationRecorder.select_notifications)
    max_notification_id = retry_quick_failures(PostgresApplicationRecorder.max_notification_id)


class BoundedPostgresFactory(PostgresFactory):
    application_recorder_class = BoundedApplicationRecorder

    def __init__(self, env: Any):
        super().__init__(env)
        # The pool is not open yet: every connection it makes will carry these.
        keys = ("POSTGRES_CONNECT_TIMEOUT", "POSTGRES_LOCK_TIMEOUT", STATEMENT_TIMEOUT)
        self.datastore.pool.kwargs.update(postgres_bounds({key: self.env.get(key) or "" for key in keys}))


@contextmanager
def schema_creation(env: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """Hold the schema's creation lock while the block creates tables. `CREATE … IF NOT EXISTS` is not
    safe against a concurrent CREATE of the same name, so replicas starting together on an empty
    schema crashed; they now take turns. The lock is a session advisory lock on a connection of its
    own, released when it closes, also if the process dies."""
    schema = env["POSTGRES_SCHEMA"] or "public"
    kwargs = postgres_connect_kwargs(env, statement_timeout=CREATION_WAIT, lock_timeout=CREATION_WAIT)
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"signoff schema {schema}",))
        yield conn
