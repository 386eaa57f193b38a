"""The Ray job entrypoint: python -m pg_ray_runner.

It connects with libpq's environment (a role made for this run), asks
ray._run_spec() what to do, runs the pipeline, prints one summary line and
exits 0, or prints one line saying what failed and exits 1, or
EXIT_INFRASTRUCTURE_LOST when the failure was the infrastructure's, not the
run's: the database going away (a crash or restart of the server) or a Ray
node dying under a task or actor of the run.  pg_ray then runs the attempt
again, since nothing of an attempt is published unless it finished.
"""

from __future__ import annotations

import re
import sys
import traceback

import psycopg
import ray
from psycopg import sql

from .db import Database, SnapshotGone
from .pipeline import RunError, RunResult, run
from .predictor import ModelError
from .spec import RunSpec

MAX_MESSAGE = 500
# EX_TEMPFAIL of sysexits.h; ray._apply_job_info knows it
EXIT_INFRASTRUCTURE_LOST = 75
# connection exceptions, and the server shutting down or restarting under us
_LOST_STATES = ("57P01", "57P02", "57P03")
DATABASE_LOST = "the database connection was lost"
NODE_LOST = "a Ray node was lost"
# what errors Ray keeps only as text say of each
_LOST_TEXTS = (
    ("server closed the connection unexpectedly", DATABASE_LOST),
    ("terminating connection due to", DATABASE_LOST),
    ("SnapshotGone", DATABASE_LOST),
    ("NodeDiedError", NODE_LOST),
    ("its node has died", NODE_LOST),
)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE] + "..."


_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*): (.+)$")


def describe(error: BaseException) -> str:
    """One line saying what failed: the model's or the database's error, not Ray's wrappers of it."""
    # a task's error comes back wrapped, with the original as its cause
    while isinstance(error, ray.exceptions.RayTaskError) and isinstance(error.cause, BaseException):
        error = error.cause
    if type(error).__module__.startswith("ray."):
        # errors Ray keeps only as text, such as an actor's failing __init__:
        # the last line of the traceback in it names the original
        for line in reversed(str(error).splitlines()):
            match = _EXCEPTION_LINE.match(line)
            if match:
                return f"{match[1]}: {_first_line(match[2])}"
    text = _first_line(str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def infrastructure_lost(error: BaseException) -> str | None:
    """Why a failure was the infrastructure's, not the run's own fault: the
    database connection going away, or a Ray node dying under a task (Ray
    retries tasks, but the writes of a run are not retried, and an actor
    that died with its node fails its batches); None if it was the run's.
    Looked for through Ray's task wrappers and the exception's causes."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, psycopg.OperationalError):
            state = current.sqlstate
            if state is None or state.startswith("08") or state in _LOST_STATES:
                return DATABASE_LOST
        if isinstance(current, SnapshotGone):
            return DATABASE_LOST
        if isinstance(current, (ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError)):
            return NODE_LOST
        if isinstance(current, ray.exceptions.RayTaskError) and isinstance(current.cause, BaseException):
            pending.append(current.cause)
        pending += [current.__cause__, current.__context__]
    # errors Ray keeps only as text, such as an actor's failing __init__
    text = str(error)
    return next((why for needle, why in _LOST_TEXTS if needle in text), None)


def fetch_spec(db: Database) -> tuple[RunSpec, bytes | None]:
    """The run's spec, and its model's bytes when the database keeps them."""
    with db.connect(autocommit=True) as conn:
        raw = conn.execute(sql.SQL("SELECT {}()").format(db.function("_run_spec"))).fetchone()
        if raw is None or raw[0] is None:
            raise RunError("ray._run_spec() returned no spec for this login")
        spec = RunSpec.from_json(raw[0])
        data = None
        if spec.model.has_data:
            row = conn.execute(sql.SQL("SELECT {}()").format(db.function("_run_model_data"))).fetchone()
            if row is None or row[0] is None:
                raise RunError(f"model {spec.model.name} version {spec.model.version} has no data")
            data = bytes(row[0])
    return spec, data


def main(db: Database | None = None) -> int:
    what = "pg_ray runner"
    try:
        db = db or Database.from_environment()
        if not ray.is_initialized():
            ray.init()
        # job logs are files: progress bars would only fill them
        ray.data.DataContext.get_current().enable_progress_bars = False
        spec, data = fetch_spec(db)
        what = f"pg_ray runner: job {spec.job_id} attempt {spec.attempt}"
        result: RunResult = run(spec, db, data)
    except Exception as error:  # noqa: BLE001 - every failure ends the job the same way
        if not isinstance(error, (ModelError, RunError, ValueError, psycopg.Error, ray.exceptions.RayError)):
            # a failure of the runner itself: where it happened matters
            traceback.print_exception(error, file=sys.stderr)
        lost = infrastructure_lost(error)
        if lost:
            print(f"{what} failed: {lost}: {describe(error)}", file=sys.stderr, flush=True)
            return EXIT_INFRASTRUCTURE_LOST
        print(f"{what} failed: {describe(error)}", file=sys.stderr, flush=True)
        return 1
    print(result.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
