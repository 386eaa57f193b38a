"""The background worker: woken at commit, alive across terminations and
crashes, recovering at start, and confined to its database."""

from __future__ import annotations

import os
import signal

from typing import Callable

import psycopg
import pytest

from conftest import connect, drop_and_wait, reload_settings, wait_for, wait_for_worker, worker_status


def job_message(db: psycopg.Connection, job_id: int) -> str | None:
    row = db.execute("SELECT message FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()
    return row[0] if row else None


def test_worker_runs_in_the_configured_database(db: psycopg.Connection) -> None:
    pid = wait_for_worker()
    row = db.execute("SELECT datname FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert row == ("postgres",)
    status = worker_status(db)
    assert status["running"] and status["pid"] == pid


def quiet(measure: Callable[[], bool], what: str, tries: int = 10) -> None:
    """Check a global counter around an action; other sessions' commits may
    move it meanwhile, so a try that saw noise is made again."""
    for _ in range(tries):
        if measure():
            return
    pytest.fail(what)


def test_commit_wakes_the_worker_and_rollback_does_not(db: psycopg.Connection, group: str) -> None:
    def rollback_wakes_nobody() -> bool:
        before = worker_status(db)["wakeup_requests"]
        with connect() as other:
            other.autocommit = False
            other.execute("SELECT ray.submit_job(%s, 'python rolled_back.py')", (group,))
            other.rollback()
        return worker_status(db)["wakeup_requests"] == before
    quiet(rollback_wakes_nobody, "a rolled-back submission asked for a wakeup")

    before = worker_status(db)
    with connect() as other:
        other.autocommit = False
        job_id = other.execute("SELECT ray.submit_job(%s, 'python wake.py')", (group,)).fetchone()[0]
        # not yet committed: the worker cannot have seen it
        assert job_message(db, job_id) is None
        other.commit()
    assert worker_status(db)["wakeup_requests"] >= before["wakeup_requests"] + 1

    # the worker acted on the committed job, woken by its latch
    message = wait_for(lambda: job_message(db, job_id), "the worker to pick up the job")
    assert message == f'waiting for resource group "{group}" to become ready (it is CREATING)'
    after = worker_status(db)
    assert after["latch_wakeups"] > before["latch_wakeups"]
    assert after["round_errors"] == before["round_errors"]


def test_worker_comes_back_after_pg_terminate_backend(db: psycopg.Connection, group: str) -> None:
    old = wait_for_worker()
    assert db.execute("SELECT pg_terminate_backend(%s)", (old,)).fetchone()[0]
    new = wait_for_worker(other_than=old)
    assert worker_status(db)["pid"] == new

    job_id = db.execute("SELECT ray.submit_job(%s, 'python after.py')", (group,)).fetchone()[0]
    wait_for(lambda: job_message(db, job_id), "the new worker to pick up a job")


def test_worker_comes_back_after_a_crash(group: str) -> None:
    old = wait_for_worker()
    # SIGKILL makes the postmaster reinitialize every backend, as after any crash
    os.kill(old, signal.SIGKILL)
    new = wait_for_worker(other_than=old)
    with connect() as db:
        job_id = db.execute("SELECT ray.submit_job(%s, 'python after_crash.py')", (group,)).fetchone()[0]
        wait_for(lambda: job_message(db, job_id), "the restarted worker to pick up a job")
        assert worker_status(db)["pid"] == new


def test_restarted_worker_records_interrupted_submissions(db: psycopg.Connection, group: str) -> None:
    job_id = db.execute("SELECT ray.submit_job(%s, 'python inflight.py')", (group,)).fetchone()[0]
    # what a worker that died mid-submission leaves behind
    db.execute("SELECT ray._job_transition(%s, 'SUBMITTING', 'submitting', 'pg_ray worker')", (job_id,))
    old = wait_for_worker()
    db.execute("SELECT pg_terminate_backend(%s)", (old,))
    wait_for_worker(other_than=old)

    def recovery_event() -> tuple | None:
        return db.execute(
            "SELECT from_state, to_state, actor, message FROM ray.job_events "
            "WHERE job_id = %s AND actor = 'pg_ray worker' AND message LIKE '%%restarted%%'",
            (job_id,)).fetchone()
    from_state, to_state, actor, message = wait_for(recovery_event, "the recovery event")
    assert (from_state, to_state, actor) == ("SUBMITTING", "SUBMITTING", "pg_ray worker")
    assert "asked whether this attempt exists" in message
    state = db.execute("SELECT state FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()[0]
    assert state == "SUBMITTING"
    db.execute("SELECT ray._job_transition(%s, 'FAILED', 'test cleanup', 'test')", (job_id,))


def test_dropped_group_is_removed_by_the_worker(db: psycopg.Connection) -> None:
    db.execute("SELECT ray.create_resource_group('it-dropped')")
    db.execute("SELECT ray.add_worker_group('it-dropped', 'cpu', 'CPU', 'small', 1, 1)")
    db.execute("SELECT ray.drop_resource_group('it-dropped')")
    wait_for(lambda: db.execute(
        "SELECT NOT EXISTS (SELECT FROM ray.resource_groups WHERE name = 'it-dropped')").fetchone()[0],
        "the worker to remove the dropped group")
    events = db.execute(
        "SELECT to_state, actor FROM ray.resource_group_event WHERE resource_group = 'it-dropped' "
        "AND actor = 'pg_ray worker' ORDER BY event_id").fetchall()
    assert events == [("DELETING", "pg_ray worker"), ("DELETED", "pg_ray worker")]
    assert db.execute("SELECT count(*) FROM ray.worker_group WHERE resource_group = 'it-dropped'"
                      ).fetchone()[0] == 0


def test_each_local_group_has_an_os_user_of_its_own_until_none_is_left(db: psycopg.Connection) -> None:
    """Local groups run as OS users of the pool, each its own; when pg_ray.node_os_users are
    all taken, creating one more is refused with the numbers, and a dropped group's user is
    handed out again once the group is gone.  External groups take none."""
    taken = db.execute("SELECT count(*) FROM ray.resource_group WHERE os_user IS NOT NULL").fetchone()[0]
    reload_settings(db, node_os_users=str(taken + 2))
    try:
        db.execute("SELECT ray.create_resource_group('it-os-a')")
        db.execute("SELECT ray.create_resource_group('it-os-b')")
        users = dict(db.execute("SELECT name, os_user FROM ray.resource_group WHERE name LIKE 'it-os-%'"))
        assert len(set(users.values())) == 2 and all(u.startswith("pgray-g") for u in users.values())
        others = {r[0] for r in db.execute("SELECT os_user FROM ray.resource_group "
                                           "WHERE name NOT LIKE 'it-os-%' AND os_user IS NOT NULL")}
        assert not others & set(users.values())
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded) as refused:
            db.execute("SELECT ray.create_resource_group('it-os-c')")
        assert str(refused.value.diag.message_primary) == \
            "no OS user is free for the nodes of a new local resource group"
        assert refused.value.diag.message_detail == (
            f"Each local group runs as one of pgray-g0 .. pgray-g{taken + 1} "
            f"(pg_ray.node_os_users = {taken + 2}), and each is taken.")
        assert "scripts/install-node-users" in refused.value.diag.message_hint
        assert not db.execute("SELECT EXISTS (SELECT FROM ray.resource_group WHERE name = 'it-os-c')").fetchone()[0]
        drop_and_wait(db, "it-os-a")
        db.execute("SELECT ray.create_resource_group('it-os-c')")
        assert db.execute("SELECT os_user FROM ray.resource_group WHERE name = 'it-os-c'").fetchone()[0] == \
            users["it-os-a"]
    finally:
        for name in ("it-os-a", "it-os-b", "it-os-c"):
            drop_and_wait(db, name)
        reload_settings(db, node_os_users=None)


def test_reload_keeps_the_worker(db: psycopg.Connection) -> None:
    old = wait_for_worker()
    db.execute("ALTER SYSTEM SET pg_ray.error_retry_seconds = 3")
    try:
        db.execute("SELECT pg_reload_conf()")
        wait_for(lambda: connect().execute("SHOW pg_ray.error_retry_seconds").fetchone()[0] == "3s",
                 "the reload")
        assert wait_for_worker() == old
    finally:
        db.execute("ALTER SYSTEM RESET pg_ray.error_retry_seconds")
        db.execute("SELECT pg_reload_conf()")


def test_create_extension_is_refused_in_another_database(db: psycopg.Connection) -> None:
    db.execute("DROP DATABASE IF EXISTS pg_ray_elsewhere")
    db.execute("CREATE DATABASE pg_ray_elsewhere")
    try:
        with connect("pg_ray_elsewhere") as other:
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
                other.execute("CREATE EXTENSION pg_ray")
        diag = caught.value.diag
        assert diag.message_primary == 'pg_ray can only be created in database "postgres"'
        assert diag.message_hint.startswith('Connect to database "postgres"')
    finally:
        db.execute("DROP DATABASE pg_ray_elsewhere")


def test_worker_follows_the_extension_being_dropped_and_created(db: psycopg.Connection) -> None:
    db.execute("DROP EXTENSION pg_ray CASCADE")
    # a worker that starts without the extension idles until it is created
    old = wait_for_worker()
    db.execute("SELECT pg_terminate_backend(%s)", (old,))
    new = wait_for_worker(other_than=old)
    db.execute("CREATE EXTENSION pg_ray")
    db.execute("SELECT ray.create_resource_group('it-again')")
    db.execute("SELECT ray.add_worker_group('it-again', 'cpu', 'CPU', 'small', 1, 1)")
    job_id = db.execute("SELECT ray.submit_job('it-again', 'python again.py')").fetchone()[0]
    wait_for(lambda: job_message(db, job_id), "the worker to see the new extension's jobs")
    assert worker_status(db)["pid"] == new
    db.execute("SELECT ray.drop_resource_group('it-again', force => true)")


def test_the_worker_keeps_owners_names_those_of_their_roles(db: psycopg.Connection) -> None:
    """A renamed role's rows take its new name and a dropped role's rows lose their OID, so
    that a dump binds them on restore to the role they belonged to, or to none."""
    db.execute("DROP ROLE IF EXISTS it_renamed, it_renamed2")
    db.execute("CREATE ROLE it_renamed")
    # as a restore copies a row in: the OID it comes with is rebound by name
    job_id = db.execute("INSERT INTO ray.job (owner, owner_oid, resource_group, entrypoint, state, finished_at)"
                        " VALUES ('it_renamed', 1, 'none', 'true', 'FAILED', now()) RETURNING job_id").fetchone()[0]
    role = db.execute("SELECT 'it_renamed'::regrole::oid").fetchone()[0]
    assert db.execute("SELECT owner_oid FROM ray.job WHERE job_id = %s", (job_id,)).fetchone()[0] == role
    try:
        db.execute("ALTER ROLE it_renamed RENAME TO it_renamed2")
        # a change of pg_ray's catalog wakes the worker for a round (an idle one runs none)
        db.execute("UPDATE ray.node_spec SET description = description WHERE name = 'small'")
        wait_for(lambda: db.execute("SELECT owner FROM ray.job WHERE job_id = %s", (job_id,)).fetchone()[0]
                 == "it_renamed2", "the worker to give the job its owner's new name")
        db.execute("DROP ROLE it_renamed2")
        db.execute("UPDATE ray.node_spec SET description = description WHERE name = 'small'")
        wait_for(lambda: db.execute("SELECT owner_oid IS NULL FROM ray.job WHERE job_id = %s",
                                    (job_id,)).fetchone()[0], "the worker to unbind the dropped role's job")
    finally:
        db.execute("DELETE FROM ray.job WHERE job_id = %s", (job_id,))
        db.execute("DROP ROLE IF EXISTS it_renamed, it_renamed2")


def test_a_users_open_transaction_on_their_job_holds_up_no_round(db: psycopg.Connection, group: str) -> None:
    """A user who keeps a lock on their own job (stop_job in a transaction left open) while
    the worker must change it (its group was dropped) holds up that job, not the worker: the
    rounds go on, without errors, for everyone else."""
    db.execute("DROP ROLE IF EXISTS it_holder")
    db.execute("CREATE ROLE it_holder LOGIN IN ROLE ray_user")
    db.execute("SELECT ray.grant_usage(%s, 'it_holder')", (group,))
    holder = connect(user="it_holder")
    try:
        job_id = holder.execute("SELECT ray.submit_job(%s, 'sleep 600')", (group,)).fetchone()[0]
        # a run in Ray, as far as the catalog knows (no Ray here)
        for state in ("SUBMITTING", "PENDING", "RUNNING"):
            db.execute("SELECT ray._job_transition(%s, %s, 'test', 'test')", (job_id, state))
        # the worker waits before a round while the group is dropped and the user holds the job
        db.execute("SELECT ray.create_resource_group('it-bystander')")
        db.execute("ALTER SYSTEM SET pg_ray.fault_pause_at = 'before_round'")
        db.execute("SELECT pg_reload_conf()")
        db.execute("SELECT ray.submit_job('it-bystander', 'true')")
        wait_for(lambda: db.execute(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_ray worker'"
            " AND query = 'pg_ray: paused at fault point before_round')").fetchone()[0], "the worker to pause")
        db.execute("SELECT ray.drop_resource_group(%s, force => true)", (group,))
        holder.execute("BEGIN")
        holder.execute("SELECT ray.stop_job(%s)", (job_id,))
        db.execute("ALTER SYSTEM RESET pg_ray.fault_pause_at")
        db.execute("SELECT pg_reload_conf()")
        # another user's submissions wake the worker: each commit, a round
        before = worker_status(db)
        for _ in range(3):
            seen = worker_status(db)
            db.execute("SELECT ray.submit_job('it-bystander', 'true')")
            wait_for(lambda: (now := worker_status(db))["rounds"] + now["round_errors"]
                     > seen["rounds"] + seen["round_errors"], "a round", 60)
        after = worker_status(db)
        assert after["round_errors"] == before["round_errors"], after["last_error"]
        assert after["rounds"] >= before["rounds"] + 3
        assert db.execute("SELECT state FROM ray.job WHERE job_id = %s", (job_id,)).fetchone()[0] == "RUNNING"
        holder.execute("ROLLBACK")
        assert wait_for(lambda: db.execute("SELECT state FROM ray.job WHERE job_id = %s",
                                           (job_id,)).fetchone()[0] == "STOPPED", "the job to be stopped")
        drop_and_wait(db, group)
    finally:
        holder.close()
        db.execute("ALTER SYSTEM RESET pg_ray.fault_pause_at")
        db.execute("SELECT pg_reload_conf()")
        db.execute("SELECT ray.drop_resource_group('it-bystander', force => true) FROM ray.resource_group "
                   "WHERE name = 'it-bystander' AND delete_requested_at IS NULL")
        db.execute("DROP OWNED BY it_holder")
        db.execute("DROP ROLE it_holder")


def test_a_submission_left_open_holds_up_no_other_teams_quota(db: psycopg.Connection, group: str) -> None:
    """Queued limits are counted behind a lock on the quota rows that bound the submitter only:
    one team's submission left open does not make another team's wait (and fail after 10 s)."""
    for role in ("it_qa", "it_qb"):
        db.execute(f"DROP ROLE IF EXISTS {role}")
        db.execute(f"CREATE ROLE {role} LOGIN IN ROLE ray_user")
        db.execute("SELECT ray.grant_usage(%s, %s)", (group, role))
        db.execute("SELECT ray.set_quota(%s, %s, max_queued_jobs => 5)", (group, role))
    team_a, team_b = connect(user="it_qa"), connect(user="it_qb")
    try:
        team_a.execute("BEGIN")
        team_a.execute("SELECT ray.submit_job(%s, 'true')", (group,))
        team_b.execute("SET statement_timeout = '5s'")
        assert team_b.execute("SELECT ray.submit_job(%s, 'true')", (group,)).fetchone()[0] > 0
        team_a.execute("ROLLBACK")
    finally:
        team_a.close()
        team_b.close()
        db.execute("SELECT ray.drop_resource_group(%s, force => true)", (group,))
        for role in ("it_qa", "it_qb"):
            db.execute(f"DROP OWNED BY {role}")
            db.execute(f"DROP ROLE {role}")
