"""Fixtures of the runner's tests: the import path, the test cluster, a schema of stand-ins.

The runner is tested without pg_ray's SQL side: its pipeline takes the spec,
the model bytes and the schema of the progress function as arguments, and
the schema runner_test holds stand-ins of ray._run_spec, ray._run_model_data
and ray._run_progress that record what they are told.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src" / "runner"))
sys.path.insert(0, str(ROOT / "test" / "integration"))

from pg_ray_runner.db import Database  # noqa: E402

TEST_DIR = Path(os.environ.get("PG_RAY_TEST_DIR", "/tmp/pg_ray_test"))
SCHEMA = "runner_test"

STAND_INS = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.run (spec jsonb, model_data bytea);
CREATE TABLE {SCHEMA}.progress (rows_done bigint NOT NULL, rows_total bigint);
INSERT INTO {SCHEMA}.progress VALUES (0, NULL);
CREATE TABLE {SCHEMA}.progress_call (rows_done_delta bigint, rows_total bigint);
CREATE FUNCTION {SCHEMA}._run_spec() RETURNS jsonb LANGUAGE sql AS 'SELECT spec FROM {SCHEMA}.run';
CREATE FUNCTION {SCHEMA}._run_model_data() RETURNS bytea LANGUAGE sql AS 'SELECT model_data FROM {SCHEMA}.run';
CREATE FUNCTION {SCHEMA}._run_progress(rows_done_delta bigint, rows_total bigint) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO {SCHEMA}.progress_call VALUES (rows_done_delta, rows_total);
  UPDATE {SCHEMA}.progress SET rows_done = rows_done + rows_done_delta,
                              rows_total = coalesce($2, progress.rows_total);
$$;
"""


def cluster_params() -> dict[str, str]:
    """Start the shared test cluster if it is not running (idempotent) and read how to reach it."""
    subprocess.run([str(ROOT / "scripts" / "test-cluster"), "start"], check=True, capture_output=True)
    settings: dict[str, str] = {}
    for line in (TEST_DIR / "env").read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        settings[name] = value
    return {"host": settings["PGHOST"], "port": settings["PGPORT"],
            "user": settings["PGUSER"], "dbname": settings["PGDATABASE"]}


@pytest.fixture(scope="session")
def db() -> Iterator[Database]:
    """The test cluster, with the schema of stand-ins created afresh."""
    database = Database(params=cluster_params(), schema=SCHEMA)
    with database.connect(autocommit=True) as conn:
        conn.execute(STAND_INS)
    yield database
    with database.connect(autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection]:
    with db.connect(autocommit=True) as connection:
        yield connection
