"""Shared fixtures of pg_ray's integration tests.

The tests run against the throwaway cluster that scripts/test-cluster
started (its connection settings are in $PG_RAY_TEST_DIR/env), with the
pg_ray background worker running in database "postgres".  Waiting is done by
polling the database for the state a user would see, with a deadline, never
by sleeping a fixed time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest

TEST_DIR = Path(os.environ.get("PG_RAY_TEST_DIR", "/tmp/pg_ray_test"))


def cluster_settings() -> dict[str, str]:
    """The PG* settings that scripts/test-cluster wrote for its cluster."""
    settings: dict[str, str] = {}
    for line in (TEST_DIR / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        settings[key] = value
    return settings


def connect(dbname: str = "postgres", user: str = "postgres") -> psycopg.Connection:
    """An autocommit connection to the test cluster."""
    s = cluster_settings()
    return psycopg.connect(host=s["PGHOST"], port=s["PGPORT"], user=user,
                           dbname=dbname, autocommit=True)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll condition until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except psycopg.OperationalError as error:  # server restarting
            last_error = error
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def worker_status(conn: psycopg.Connection) -> dict[str, Any]:
    """ray.worker_status() as a dict."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM ray.worker_status()")
        row = cur.fetchone()
        assert row is not None
        return row


def wait_for_worker(other_than: int | None = None) -> int:
    """Wait until the pg_ray worker is connected (a new one, if other_than names
    the old pid) and return its pid.  pg_stat_activity answers even while the
    extension is not installed."""
    def worker_pid() -> int | None:
        with connect() as conn:
            row = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ray worker'"
                               ).fetchone()
        if row and row[0] != other_than:
            return row[0]
        return None
    return wait_for(worker_pid, "the pg_ray worker to run")


@pytest.fixture
def db() -> Iterator[psycopg.Connection]:
    """A superuser connection to the database the worker runs in, with pg_ray installed."""
    conn = wait_for(lambda: connect(), "the server to accept connections")
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_ray")
    yield conn
    conn.close()


@pytest.fixture
def group(db: psycopg.Connection, request: pytest.FixtureRequest) -> Iterator[str]:
    """A resource group with one CPU worker group, named after the test."""
    name = "it-" + request.node.name.lower().replace("_", "-")[:40]
    db.execute("SELECT ray.create_resource_group(%s)", (name,))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 2)", (name,))
    yield name
    # a fresh connection: the test may have restarted the server
    with wait_for(lambda: connect(), "the server to accept connections") as conn:
        conn.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
                     "WHERE name = %s AND delete_requested_at IS NULL", (name,))
