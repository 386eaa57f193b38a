"""Reading the source in parallel: partition queries, and a Ray Data datasource over them.

Every read task joins the snapshot the driver exported, so the partitions
together see exactly the rows the driver counted, as parallel pg_dump does.
A read only reads, so Ray may retry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import psycopg
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


def table_partitions(source: Source, pages: int, n: int) -> list[str]:
    """ctid ranges of about equal pages; the last range is open so no page is missed."""
    if n <= 1:
        return [source.select()]
    queries = []
    for i in range(n):
        lo, hi = i * pages // n, (i + 1) * pages // n
        bounds = []
        if i > 0:
            bounds.append(f"ctid >= '({lo},0)'::tid")
        if i < n - 1:
            bounds.append(f"ctid < '({hi},0)'::tid")
        queries.append(f"{source.select()} WHERE {' AND '.join(bounds)}")
    return queries


def query_partitions(source: Source, n: int) -> list[str]:
    """Hash shards of a query on its shard key; NULL keys go with hash 0 rather than nowhere."""
    if source.shard_key is None or n <= 1:
        return [source.select()]
    shard = f"mod(coalesce(hashtext(({source.shard_key})::text), 0)::bigint + 2147483648, {n})"
    return [f"{source.select()} WHERE {shard} = {i}" for i in range(n)]


def plan_partitions(conn: psycopg.Connection[Any], source: Source, requested: int | None,
                    read_parallelism: int) -> list[str]:
    """The partition queries of a source, sized in the driver's snapshot transaction."""
    if source.table is None:
        n = partition_count(requested, None, read_parallelism) if source.shard_key else 1
        return query_partitions(source, n)
    row = conn.execute(sql.SQL("SELECT pg_relation_size({}::regclass) / current_setting('block_size')::int")
                       .format(sql.Literal(source.table))).fetchone()
    pages = int(row[0]) if row else 0
    return table_partitions(source, pages, partition_count(requested, pages, read_parallelism))


def read_partition(db: Database, snapshot_id: str, query: str, schema: pa.Schema) -> Iterator[pa.Table]:
    """COPY one partition out in the exported snapshot and parse it as it streams."""
    with db.connect(autocommit=True) as conn:
        begin_snapshot(conn, snapshot_id)
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)")
                                            .format(sql.SQL(query))) as copy:
            yield from iter_csv(copy, schema)
        conn.execute("COMMIT")


@dataclass(eq=False)
class PgSource(Datasource):
    """The source's partitions, one read task each."""
    db: Database
    snapshot_id: str
    queries: list[str]
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
        return [ReadTask(lambda q=q: read_partition(db, snapshot_id, q, schema),
                         BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None),
                         schema=schema, per_task_row_limit=per_task_row_limit)
                for q in self.queries]
