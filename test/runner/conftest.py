"""Fixtures of the runner's tests: the import path, the test cluster, a schema of stand-ins.

The runner is tested without pg_ray's SQL side: its pipeline takes the spec,
the model bytes and the schema of the progress function as arguments, and
the schema runner_test holds stand-ins of ray._run_spec, ray._run_model_data
and ray._run_progress that record what they are told, and of the reads
(ray._run_read, _run_count, _run_source_size) that read the source the spec
in runner_test.run names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

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
-- the reads: the server builds and runs them as the run's owner; here, from the spec as it is
CREATE FUNCTION {SCHEMA}._run_read_query(lo bigint, hi bigint, shard integer, shards integer) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  spec jsonb := (SELECT spec FROM {SCHEMA}.run);
  filters text[] := ARRAY[]::text[];
BEGIN
  IF lo IS NOT NULL THEN filters := filters || format('ctid >= %L::tid', format('(%s,0)', lo)); END IF;
  IF hi IS NOT NULL THEN filters := filters || format('ctid < %L::tid', format('(%s,0)', hi)); END IF;
  IF shards IS NOT NULL THEN
    filters := filters || format('mod(coalesce(hashtext((%s)::text), 0)::bigint + 2147483648, %s) = %s',
                                 spec -> 'source' ->> 'shard_key', shards, shard);
  END IF;
  RETURN format('SELECT %s FROM %s',
                (SELECT string_agg(format('(%I)::text', c ->> 'name'), ', ' ORDER BY o)
                 FROM jsonb_array_elements(spec -> 'columns') WITH ORDINALITY x(c, o)),
                coalesce(spec -> 'source' ->> 'table', '(' || (spec -> 'source' ->> 'query') || ') q'))
         || CASE WHEN cardinality(filters) > 0 THEN ' WHERE ' || array_to_string(filters, ' AND ') ELSE '' END;
END
$$;
CREATE FUNCTION {SCHEMA}._run_read(lo bigint, hi bigint, shard integer, shards integer) RETURNS SETOF record
LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE {SCHEMA}._run_read_query(lo, hi, shard, shards); END $$;
CREATE FUNCTION {SCHEMA}._run_count() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM (%s) s', {SCHEMA}._run_read_query(NULL, NULL, NULL, NULL)) INTO n;
  RETURN n;
END
$$;
CREATE FUNCTION {SCHEMA}._run_source_size(OUT pages bigint, OUT bytes bigint) LANGUAGE sql AS $$
  SELECT pg_relation_size(t) / current_setting('block_size')::bigint, pg_relation_size(t)
  FROM (SELECT to_regclass(spec -> 'source' ->> 'table') t FROM {SCHEMA}.run) r
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
def put_run(db: Database) -> Callable[..., None]:
    """Set the run the stand-ins answer for: its spec, and its model's bytes."""
    def put(spec: dict[str, Any], data: bytes | None = None) -> None:
        with db.connect(autocommit=True) as conn:
            conn.execute("TRUNCATE runner_test.run")
            conn.execute("INSERT INTO runner_test.run VALUES (%s::jsonb, %s)", (json.dumps(spec), data))
    return put


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection]:
    with db.connect(autocommit=True) as connection:
        yield connection
