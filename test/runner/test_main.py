"""The runner's verdict on a failure: its own (exit 1), or the
infrastructure's, the database going away or a Ray node dying under it (exit
75, which pg_ray takes as a lost attempt and runs again)."""

from __future__ import annotations

import psycopg
import pytest
import ray

from pg_ray_runner.__main__ import DATABASE_LOST, NODE_LOST, infrastructure_lost
from pg_ray_runner.db import Database, SnapshotGone, begin_snapshot


@pytest.mark.parametrize("error, lost", [
    (psycopg.OperationalError("server closed the connection unexpectedly"), True),
    (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
    (psycopg.errors.CrashShutdown("terminating connection because of crash of another server process"), True),
    (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
    (psycopg.errors.ConnectionFailure("connection failure"), True),
    (psycopg.errors.LockNotAvailable("could not obtain lock"), False),
    (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
    (psycopg.errors.InsufficientPrivilege("permission denied for table x"), False),
    (ValueError("a model's bad input"), False),
])
def test_what_counts_as_the_database_lost(error: BaseException, lost: bool) -> None:
    assert infrastructure_lost(error) == (DATABASE_LOST if lost else None)


def test_a_lost_connection_is_found_through_causes() -> None:
    try:
        try:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        except psycopg.OperationalError as inner:
            raise RuntimeError("the write task failed") from inner
    except RuntimeError as outer:
        assert infrastructure_lost(outer) == DATABASE_LOST


def test_a_lost_connection_is_found_in_a_ray_task_error() -> None:
    cause = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    wrapped = ray.exceptions.RayTaskError("write", "Traceback ...", cause)
    assert infrastructure_lost(wrapped) == DATABASE_LOST
    assert infrastructure_lost(ray.exceptions.RayTaskError("score", "Traceback ...", ValueError("bad row"))) is None


def test_a_node_that_died_under_a_task_is_the_infrastructure() -> None:
    """Found by the crash matrix: a write task on a worker node killed while
    the run was RUNNING failed with NodeDiedError, and the job FAILED."""
    died = ray.exceptions.NodeDiedError("Task failed because the node it was running on is dead or unavailable.")
    assert infrastructure_lost(died) == NODE_LOST
    try:
        try:
            raise died
        except ray.exceptions.NodeDiedError as inner:
            raise RuntimeError("the pipeline failed") from inner
    except RuntimeError as outer:
        assert infrastructure_lost(outer) == NODE_LOST
    assert infrastructure_lost(ray.exceptions.OwnerDiedError("ffff", None, "")) == NODE_LOST
    # as text only, as Ray Data sometimes keeps it
    assert infrastructure_lost(RuntimeError("ray.exceptions.NodeDiedError: Task failed")) == NODE_LOST
    assert infrastructure_lost(RuntimeError("The actor died because its node has died.")) == NODE_LOST
    # an actor that died of its own (a crash of the model's code) is not
    assert infrastructure_lost(ray.exceptions.ActorDiedError()) is None


def test_a_snapshot_gone_after_a_restart_is_the_database_lost(db: Database) -> None:
    """A read task that starts after the server restarted imports a snapshot
    whose session is gone: the infrastructure's failure (InvalidParameterValue
    from PostgreSQL, the run's own otherwise)."""
    with db.connect(autocommit=True) as conn:
        with pytest.raises(SnapshotGone) as raised:
            begin_snapshot(conn, "00000005-00000035-1")
    assert "invalid snapshot identifier" in str(raised.value)
    assert infrastructure_lost(raised.value) == DATABASE_LOST
    wrapped = ray.exceptions.RayTaskError("ReadPg", "Traceback ...", raised.value)
    assert infrastructure_lost(wrapped) == DATABASE_LOST
    # as Ray keeps a remote error only as text
    assert infrastructure_lost(RuntimeError("pg_ray_runner.db.SnapshotGone: the run's snapshot is gone")) == \
        DATABASE_LOST
