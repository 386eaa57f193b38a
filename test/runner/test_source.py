"""The spec, and the partitions a source is read in: every row exactly once, in one snapshot."""

from __future__ import annotations

from typing import Any

import psycopg
import pyarrow as pa
import pytest

from pg_ray_runner.db import Database, begin_snapshot
from pg_ray_runner.source import (PAGES_PER_PARTITION, partition_count, plan_partitions, query_partitions,
                                  read_partition)
from pg_ray_runner.spec import RunSpec, Source, arrow_type


def spec_json(**changes: Any) -> dict[str, Any]:
    spec = {
        "job_id": 12, "attempt": 1,
        "source": {"table": '"public"."impressions"', "select_list": '"id", "age", "price"'},
        "columns": [{"name": "id", "type": "bigint"}, {"name": "age", "type": "integer"},
                    {"name": "price", "type": "double precision"}],
        "key": ["id"], "inputs": ["age", "price"],
        "output": {"name": "prediction", "type": "double precision"},
        "staging_table": 'ray_staging."job_12_1"', "staging_columns": ["id", "prediction"],
        "model": {"name": "ctr", "version": 1, "kind": "sklearn", "options": {"prompt": "x"}, "uri": None,
                  "has_data": True},
        "options": {"batch_size": 4096, "concurrency": 2, "num_cpus": 1, "num_gpus": 0,
                    "output": "probability", "partitions": None, "prompt": "y"},
    }
    spec.update(changes)
    return spec


def test_spec_from_json() -> None:
    spec = RunSpec.from_json(spec_json())
    assert spec.source.select() == 'SELECT "id", "age", "price" FROM "public"."impressions"'
    assert spec.read_schema() == pa.schema([("id", pa.int64()), ("age", pa.int64()), ("price", pa.float64())])
    assert spec.staging_schema() == pa.schema([("id", pa.int64()), ("prediction", pa.float64())])
    assert "partitions" not in spec.options, "a null option is no option"
    # a run's option overrides the model's, the run's own options stay out
    assert spec.model_options() == {"prompt": "y"}
    assert spec.output_mode == "probability"


def test_spec_checks() -> None:
    with pytest.raises(ValueError, match="lack nope"):
        RunSpec.from_json(spec_json(inputs=["nope"]))
    with pytest.raises(ValueError, match="staging_columns"):
        RunSpec.from_json(spec_json(staging_columns=["prediction", "id"]))
    with pytest.raises(ValueError, match="exactly one of table and query"):
        Source(select_list="*")


def test_types() -> None:
    assert arrow_type("smallint") == pa.int64()
    assert arrow_type("numeric(12,2)") == pa.float64()
    assert arrow_type("real") == pa.float64()
    assert arrow_type("boolean") == pa.bool_()
    assert arrow_type("character varying(20)") == pa.string()
    assert arrow_type("integer[]") == pa.string()
    assert arrow_type("timestamp with time zone") == pa.string()
    # a numeric key is kept as text, so it comes back to the staging table digit for digit
    spec = RunSpec.from_json(spec_json(columns=[{"name": "id", "type": "numeric(30,0)"},
                                                {"name": "age", "type": "integer"},
                                                {"name": "price", "type": "numeric"}]))
    assert spec.read_schema().field("id").type == pa.string()
    assert spec.read_schema().field("price").type == pa.float64()


def test_partition_count() -> None:
    assert partition_count(None, 0, 4) == 1
    assert partition_count(None, PAGES_PER_PARTITION - 1, 4) == 1
    assert partition_count(None, 10 * PAGES_PER_PARTITION, 4) == 10
    assert partition_count(None, 100 * PAGES_PER_PARTITION, 4) == 16
    assert partition_count(8, 3, 4) == 3, "never more partitions than pages"
    assert partition_count(None, None, 6) == 6
    assert partition_count(3, None, 6) == 3
    with pytest.raises(ValueError):
        partition_count(0, 10, 2)


@pytest.fixture(scope="module")
def source_table(db: Database) -> str:
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS runner_test.parts")
        conn.execute("CREATE TABLE runner_test.parts (id bigint, grp text, v double precision) "
                     "WITH (fillfactor = 10)")
        conn.execute("INSERT INTO runner_test.parts SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'g' || g % 5 END,"
                     " g / 3.0 FROM generate_series(1, 5000) g")
        conn.execute("DELETE FROM runner_test.parts WHERE id % 11 = 0")
    return "runner_test.parts"


SCHEMA = pa.schema([("id", pa.int64()), ("grp", pa.string()), ("v", pa.float64())])


def read_all(db: Database, conn: psycopg.Connection, queries: list[str]) -> list[list[int]]:
    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    return [sorted(i for t in read_partition(db, snapshot, q, SCHEMA) for i in t.column("id").to_pylist())
            for q in queries]


def test_table_partitions_read_every_row_once(db: Database, source_table: str) -> None:
    source = Source(table=source_table, select_list="id, grp, v")
    with db.connect(autocommit=True) as conn:
        begin_snapshot(conn)
        pages = conn.execute("SELECT pg_relation_size('runner_test.parts') / 8192").fetchone()[0]
        assert pages > 50
        queries = plan_partitions(conn, source, 5, 2)
        assert len(queries) == 5 and "ctid" in queries[2]
        parts = read_all(db, conn, queries)
    assert all(parts), "every range has rows"
    assert sorted(i for p in parts for i in p) == [i for i in range(1, 5001) if i % 11]


def test_query_shards_read_every_row_once_null_keys_too(db: Database, source_table: str) -> None:
    source = Source(query=f"SELECT * FROM {source_table} WHERE id <= 3000", select_list="id, grp, v",
                    shard_key="grp")
    with db.connect(autocommit=True) as conn:
        begin_snapshot(conn)
        queries = plan_partitions(conn, source, 3, 2)
        parts = read_all(db, conn, queries)
        unsharded = plan_partitions(conn, Source(query=source.query, select_list="id"), 3, 2)
    assert len(queries) == 3 and len(unsharded) == 1, "without a shard key a query is read whole"
    assert sum(1 for p in parts if p) >= 2, "the shards split the rows"
    assert sorted(i for p in parts for i in p) == [i for i in range(1, 3001) if i % 11]
    assert query_partitions(source, 1) == [source.select()]


def test_reads_see_the_snapshot_not_later_rows(db: Database, source_table: str) -> None:
    with db.connect(autocommit=True) as conn, db.connect(autocommit=True) as writer:
        begin_snapshot(conn)
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        writer.execute("INSERT INTO runner_test.parts VALUES (-1, 'late', 0)")
        try:
            ids = [i for t in read_partition(db, snapshot, f"SELECT id, grp, v FROM {source_table}", SCHEMA)
                   for i in t.column("id").to_pylist()]
        finally:
            writer.execute("DELETE FROM runner_test.parts WHERE id = -1")
    assert -1 not in ids and len(ids) == 5000 - 5000 // 11
