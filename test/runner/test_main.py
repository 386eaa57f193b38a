"""The runner's verdict on a failure: its own (exit 1), or the database
going away under it (exit 75, which pg_ray takes as a lost attempt and runs
again)."""

from __future__ import annotations

import psycopg
import pytest
import ray

from pg_ray_runner.__main__ import database_lost


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
    assert database_lost(error) is lost


def test_a_lost_connection_is_found_through_causes() -> None:
    try:
        try:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        except psycopg.OperationalError as inner:
            raise RuntimeError("the write task failed") from inner
    except RuntimeError as outer:
        assert database_lost(outer)


def test_a_lost_connection_is_found_in_a_ray_task_error() -> None:
    cause = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    wrapped = ray.exceptions.RayTaskError("write", "Traceback ...", cause)
    assert database_lost(wrapped)
    assert not database_lost(ray.exceptions.RayTaskError("score", "Traceback ...", ValueError("bad row")))
