"""How the driver and every Ray task reach PostgreSQL, and the run's SQL helpers there.

Ray tasks on other nodes do not necessarily inherit the driver's environment,
so the driver captures the libpq settings once and ships them with each task.
They are never logged: the dataclass keeps them out of its repr.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import psycopg
from psycopg import sql

# libpq's environment variables and the connection keywords they stand for
_LIBPQ_ENVIRONMENT = {
    "PGHOST": "host", "PGHOSTADDR": "hostaddr", "PGPORT": "port", "PGDATABASE": "dbname",
    "PGUSER": "user", "PGPASSWORD": "password", "PGPASSFILE": "passfile",
    "PGOPTIONS": "options", "PGAPPNAME": "application_name",
    "PGCONNECT_TIMEOUT": "connect_timeout", "PGSSLMODE": "sslmode",
    "PGSSLROOTCERT": "sslrootcert", "PGSSLCERT": "sslcert", "PGSSLKEY": "sslkey",
    "PGTARGETSESSIONATTRS": "target_session_attrs",
}


# A run's password comes in its package, beside this one, not in its environment: Ray writes a
# job's environment variables on the command line of every worker process it starts for the job.
CREDENTIALS_FILE = Path(__file__).resolve().parent.parent / "pg_ray_run_credentials.json"


@dataclass(frozen=True)
class Database:
    """Connection settings, and the schema of the run's functions (ray, or a test's stand-ins)."""
    params: Mapping[str, str] = field(default_factory=dict, repr=False)
    schema: str = "ray"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, schema: str = "ray",
                         credentials: Path = CREDENTIALS_FILE) -> Database:
        """libpq's settings from the environment, and the password from the run's credentials file if there is one."""
        params = {kw: environ[var] for var, kw in _LIBPQ_ENVIRONMENT.items() if environ.get(var)}
        if credentials.is_file():
            password = json.loads(credentials.read_text()).get("password")
            if password:
                params["password"] = password
        return cls(params=params, schema=schema)

    def connect(self, autocommit: bool = False) -> psycopg.Connection[Any]:
        params = {"application_name": "pg_ray runner", **self.params}
        return psycopg.connect(autocommit=autocommit, **params)

    def function(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def report_progress(self, conn: psycopg.Connection[Any], rows_done: int, rows_total: int | None) -> None:
        """ray._run_progress(rows_done_delta, rows_total); a NULL total leaves it as it is."""
        conn.execute(sql.SQL("SELECT {}(%s::bigint, %s::bigint)").format(self.function("_run_progress")),
                     (rows_done, rows_total))


class SnapshotGone(RuntimeError):
    """The driver's exported snapshot is gone: the session that holds it ended,
    because the server restarted or the driver's connection was lost.  The
    infrastructure's failure, not the run's: a read task that starts after a
    restart finds only this."""


def begin_snapshot(conn: psycopg.Connection[Any], snapshot_id: str | None = None) -> None:
    """Open a read-only repeatable-read transaction, in the exported snapshot if one is given."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    if snapshot_id is not None:
        try:
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
        except psycopg.errors.InvalidParameterValue as error:
            # the id is the driver's own, well formed: only its session's end makes it unknown
            raise SnapshotGone(f"the run's snapshot {snapshot_id} is gone: {error}") from None
