"""The spec, and the partitions a source is read in: every row exactly once, in one snapshot."""

from __future__ import annotations

from typing import Any, Callable

import psycopg
import pyarrow as pa
import pytest

from pg_ray_runner.db import Database, begin_snapshot
from pg_ray_runner.source import (PAGES_PER_PARTITION, Partition, partition_count, plan_partitions,
                                  query_partitions, read_partition, read_statement, table_partitions)
from pg_ray_runner.spec import RunSpec, Source, arrow_type


def spec_json(**changes: Any) -> dict[str, Any]:
    spec = {
        "job_id": 12, "attempt": 1,
        "source": {"table": '"public"."impressions"'},
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
    assert spec.source.table == '"public"."impressions"' and spec.source.query is None
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
        Source()


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


def test_partitions_are_numbers_and_cover_the_source() -> None:
    assert table_partitions(100, 1) == [Partition()]
    assert table_partitions(100, 4) == [Partition(None, 25), Partition(25, 50), Partition(50, 75), Partition(75, None)]
    query = Source(query="SELECT 1", shard_key="k")
    assert query_partitions(query, 3) == [Partition(shard=i, shards=3) for i in range(3)]
    assert query_partitions(Source(query="SELECT 1"), 3) == [Partition()], "without a shard key, whole"
    assert plan_partitions(query, None, None, 2) == [Partition(shard=0, shards=2), Partition(shard=1, shards=2)]
    assert plan_partitions(Source(table="t"), 10 * PAGES_PER_PARTITION, None, 4)[-1] == Partition(18000, None)
    assert plan_partitions(Source(table="t"), None, None, 4) == [Partition()], "an empty table is one read"


def test_the_read_statement_holds_numbers_only(db: Database) -> None:
    text = read_statement(db, Partition(25, None), 3).as_string(None)
    assert text == ('COPY (SELECT * FROM "runner_test"."_run_read"(25::bigint, NULL::bigint, NULL::integer, '
                    'NULL::integer) AS t("c0" text, "c1" text, "c2" text)) TO STDOUT WITH (FORMAT csv)')


@pytest.fixture
def source_table(db: Database, put_run: Callable[..., None]) -> Callable[..., None]:
    """The table runner_test.parts, and a run over it (a table, or a query sharded on grp)."""
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS runner_test.parts")
        conn.execute("CREATE TABLE runner_test.parts (id bigint, grp text, v double precision) "
                     "WITH (fillfactor = 10)")
        conn.execute("INSERT INTO runner_test.parts SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'g' || g % 5 END,"
                     " g / 3.0 FROM generate_series(1, 5000) g")
        conn.execute("DELETE FROM runner_test.parts WHERE id % 11 = 0")

    def run_over(**source: Any) -> None:
        put_run(spec_json(source=source or {"table": "runner_test.parts"},
                          columns=[{"name": "id", "type": "bigint"}, {"name": "grp", "type": "text"},
                                   {"name": "v", "type": "double precision"}],
                          inputs=["v"]))
    return run_over


SCHEMA = pa.schema([("id", pa.int64()), ("grp", pa.string()), ("v", pa.float64())])


def read_all(db: Database, conn: psycopg.Connection, partitions: list[Partition]) -> list[list[int]]:
    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    return [sorted(i for t in read_partition(db, snapshot, p, SCHEMA) for i in t.column("id").to_pylist())
            for p in partitions]


def test_table_partitions_read_every_row_once(db: Database, source_table: Callable[..., None]) -> None:
    source_table()
    with db.connect(autocommit=True) as conn:
        begin_snapshot(conn)
        pages = conn.execute("SELECT pg_relation_size('runner_test.parts') / 8192").fetchone()[0]
        assert pages > 50
        partitions = plan_partitions(Source(table="runner_test.parts"), pages, 5, 2)
        assert len(partitions) == 5
        parts = read_all(db, conn, partitions)
    assert all(parts), "every range has rows"
    assert sorted(i for p in parts for i in p) == [i for i in range(1, 5001) if i % 11]


def test_query_shards_read_every_row_once_null_keys_too(db: Database, source_table: Callable[..., None]) -> None:
    query = "SELECT * FROM runner_test.parts WHERE id <= 3000"
    source_table(query=query, shard_key="grp")
    with db.connect(autocommit=True) as conn:
        begin_snapshot(conn)
        partitions = plan_partitions(Source(query=query, shard_key="grp"), None, 3, 2)
        parts = read_all(db, conn, partitions)
    assert len(partitions) == 3
    assert sum(1 for p in parts if p) >= 2, "the shards split the rows"
    assert sorted(i for p in parts for i in p) == [i for i in range(1, 3001) if i % 11]


def test_reads_see_the_snapshot_not_later_rows(db: Database, source_table: Callable[..., None]) -> None:
    source_table()
    with db.connect(autocommit=True) as conn, db.connect(autocommit=True) as writer:
        begin_snapshot(conn)
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        writer.execute("INSERT INTO runner_test.parts VALUES (-1, 'late', 0)")
        try:
            ids = [i for t in read_partition(db, snapshot, Partition(), SCHEMA) for i in t.column("id").to_pylist()]
        finally:
            writer.execute("DELETE FROM runner_test.parts WHERE id = -1")
    assert -1 not in ids and len(ids) == 5000 - 5000 // 11
