"""Writing scored rows into the run's staging table with COPY.

Each write task commits its own COPY, then reports its rows to
ray._run_progress.  Write tasks are never retried (see pipeline.py): a
retried task could stage its rows twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import pyarrow as pa
from psycopg import sql
from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink

from .db import Database
from .pgcsv import to_csv


def copy_statement(staging_table: str, columns: list[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.SQL(staging_table), sql.SQL(", ").join(map(sql.Identifier, columns)))


def stage_tables(db: Database, staging_table: str, columns: list[str], tables: Iterable[pa.Table],
                 report_progress: bool = True) -> int:
    """COPY the tables into the staging table in one transaction; the rows written."""
    rows = 0
    with db.connect() as conn:
        with conn.cursor() as cur, cur.copy(copy_statement(staging_table, columns)) as copy:
            for table in tables:
                if table.num_rows:
                    copy.write(to_csv(table.select(columns)))
                    rows += table.num_rows
        conn.commit()
        if report_progress and rows:
            db.report_progress(conn, rows, None)
            conn.commit()
    return rows


@dataclass(eq=False)
class PgStagingSink(Datasink[int]):
    db: Database
    staging_table: str
    columns: list[str]
    report_progress: bool = True

    def get_name(self) -> str:
        return "PostgreSQLStaging"

    def write(self, blocks: Iterable[Block], ctx: Any) -> int:
        return stage_tables(self.db, self.staging_table, self.columns,
                            (BlockAccessor.for_block(b).to_arrow() for b in blocks), self.report_progress)
