"""Reading the source in parallel: partitions, and a Ray Data datasource over them.

Every read task joins the snapshot the driver exported, so the partitions
together see exactly the rows the driver counted, as parallel pg_dump does.
A read only reads, so Ray may retry it.  The server runs the source query
(ray._run_read), as the run's owner: the runner names partitions by numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import pyarrow as pa
from psycopg import sql
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from .db import Database, begin_snapshot
from .pgcsv import iter_csv
from .spec import Source

# a table gets one partition per this many pages (16 MiB of 8 kB pages)
PAGES_PER_PARTITION = 2000


def partition_count(requested: int | None, pages: int | None, read_parallelism: int) -> int:
    """How many partitions to read a table (pages known) or a sharded query (pages None) in."""
    if requested is not None:
        n = int(requested)
        if n < 1:
            raise ValueError(f"partitions must be at least 1, not {n}")
    elif pages is None:
        n = read_parallelism
    else:
        n = min(pages // PAGES_PER_PARTITION, 4 * read_parallelism)
    if pages is not None:
        n = min(n, pages)
    return max(n, 1)


@dataclass(frozen=True)
class Partition:
    """A read task's part of the source: pages [lo_page, hi_page) of a table (None is open), or a query's shard."""
    lo_page: int | None = None
    hi_page: int | None = None
    shard: int | None = None
    shards: int | None = None


def table_partitions(pages: int, n: int) -> list[Partition]:
    """Page ranges of about equal size; the first and last are open so that no page is missed."""
    if n <= 1:
        return [Partition()]
    return [Partition(lo_page=i * pages // n if i > 0 else None,
                      hi_page=(i + 1) * pages // n if i < n - 1 else None) for i in range(n)]


def query_partitions(source: Source, n: int) -> list[Partition]:
    """Hash shards of a query on its shard key, or the whole query without one."""
    if source.shard_key is None or n <= 1:
        return [Partition()]
    return [Partition(shard=i, shards=n) for i in range(n)]


def plan_partitions(source: Source, pages: int | None, requested: int | None,
                    read_parallelism: int) -> list[Partition]:
    """The partitions of a source: a table's by its pages (counted in the driver's snapshot), a query's by shards."""
    if source.table is None:
        n = partition_count(requested, None, read_parallelism) if source.shard_key else 1
        return query_partitions(source, n)
    return table_partitions(pages or 0, partition_count(requested, pages or 0, read_parallelism))


def read_statement(db: Database, partition: Partition, columns: int) -> sql.Composed:
    """COPY of one partition as the server's ray._run_read returns it: the source's columns, as text.

    The run reads through the server, which runs the source query as the run's owner;
    the run's own role may not read the owner's tables, or name their types."""
    bounds = [partition.lo_page, partition.hi_page, partition.shard, partition.shards]
    casts = ["bigint", "bigint", "integer", "integer"]
    return sql.SQL("COPY (SELECT * FROM {}({}) AS t({})) TO STDOUT WITH (FORMAT csv)").format(
        db.function("_run_read"),
        sql.SQL(", ").join(sql.SQL("{}::{}").format(sql.Literal(b), sql.SQL(c)) for b, c in zip(bounds, casts)),
        sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(f"c{i}")) for i in range(columns)))


def read_partition(db: Database, snapshot_id: str, partition: Partition, schema: pa.Schema) -> Iterator[pa.Table]:
    """COPY one partition out in the exported snapshot and parse it as it streams."""
    with db.connect(autocommit=True) as conn:
        begin_snapshot(conn, snapshot_id)
        with conn.cursor() as cur, cur.copy(read_statement(db, partition, len(schema))) as copy:
            yield from iter_csv(copy, schema)
        conn.execute("COMMIT")


@dataclass(eq=False)
class PgSource(Datasource):
    """The source's partitions, one read task each."""
    db: Database
    snapshot_id: str
    partitions: list[Partition]
    schema: pa.Schema
    size_bytes: int | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def get_name(self) -> str:
        return "PostgreSQL"

    def estimate_inmemory_data_size(self) -> int | None:
        return self.size_bytes

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        # the partitions are fixed by the plan; Ray's parallelism was set to their number
        db, snapshot_id, schema = self.db, self.snapshot_id, self.schema
        return [ReadTask(lambda p=p: read_partition(db, snapshot_id, p, schema),
                         BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None),
                         schema=schema, per_task_row_limit=per_task_row_limit)
                for p in self.partitions]
