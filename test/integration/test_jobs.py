"""Jobs on a real Ray cluster: submitted, followed, stopped, logged, waited
for, private to their owner, and never submitted twice."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import zipfile
from pathlib import Path

import psycopg
import pytest

from conftest import (ROOT, RayHead, connect, events, job_state, wait_for, wait_for_state,
                      wait_for_worker)

PY = "python -c"


def submit(db: psycopg.Connection, group: str, entrypoint: str, **options: object) -> int:
    names = ", ".join(f"{k} => %({k})s" for k in options)
    sql = f"SELECT ray.submit_job(%(group)s, %(entrypoint)s{', ' + names if names else ''})"
    return db.execute(sql, {"group": group, "entrypoint": entrypoint, **options}).fetchone()[0]


def saved_log(db: psycopg.Connection, job_id: int) -> str | None:
    row = db.execute("SELECT log FROM ray.job_log WHERE job_id = %s ORDER BY attempt DESC LIMIT 1",
                     (job_id,)).fetchone()
    return row[0] if row else None


def test_registered_cluster_is_ready_with_its_version(db: psycopg.Connection, ray_group: str,
                                                      ray_head: RayHead) -> None:
    row = db.execute("SELECT provider, state, dashboard_url, ray_version, client_address "
                     "FROM ray.resource_groups WHERE name = %s", (ray_group,)).fetchone()
    assert row[0:3] == ("external", "READY", ray_head.url)
    assert row[3] == ray_head.rest("GET", "/api/version")["ray_version"]
    # registered without one: no guessed Ray Client address (another service may listen there)
    assert row[4] is None
    # the token is kept away from every readable view
    assert ray_head.token not in str(db.execute("SELECT * FROM ray.resource_groups").fetchall())


def test_job_succeeds_and_its_log_is_saved(db: psycopg.Connection, ray_group: str,
                                           ray_head: RayHead) -> None:
    job = submit(db, ray_group, f"{PY} \"print('hello from ray')\"",
                 metadata=psycopg.types.json.Jsonb({"team": "ads"}))
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"

    row = db.execute("SELECT attempts, started_at IS NOT NULL, finished_at >= started_at, message "
                     "FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()
    assert row[0:3] == (1, True, True)
    states = [e[1] for e in events(db, job)]
    assert states[:3] == ["QUEUED", "SUBMITTING", "PENDING"] and states[-1] == "SUCCEEDED"

    log = wait_for(lambda: saved_log(db, job), "the driver log to be saved")
    assert "hello from ray" in log
    assert "hello from ray" in db.execute("SELECT ray.job_logs(%s)", (job,)).fetchone()[0]

    [run] = ray_head.submissions_of(job)
    assert run["status"] == "SUCCEEDED"
    assert run["metadata"]["team"] == "ads" and run["metadata"]["pg_ray_owner"] == "postgres"


def test_failing_job_records_exit_code_and_is_not_retried(db: psycopg.Connection, ray_group: str,
                                                          ray_head: RayHead) -> None:
    job = submit(db, ray_group, f"{PY} \"import sys; print('boom'); sys.exit(3)\"", max_attempts=3)
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "FAILED"
    row = db.execute("SELECT attempts, error_type, driver_exit_code, message FROM ray.jobs "
                     "WHERE job_id = %s", (job,)).fetchone()
    assert row[0:3] == (1, "JOB_ENTRYPOINT_COMMAND_ERROR", 3)
    assert "exit code 3" in row[3]
    assert "boom" in wait_for(lambda: saved_log(db, job), "the failed run's log")
    assert len(ray_head.submissions_of(job)) == 1


def test_failing_job_is_retried_when_it_asks(db: psycopg.Connection, ray_group: str,
                                             ray_head: RayHead) -> None:
    job = submit(db, ray_group, f"{PY} \"import sys; sys.exit(1)\"", max_attempts=2,
                 retry_on_failure=True)
    assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job,)).fetchone()[0] == "FAILED"
    assert db.execute("SELECT attempts FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0] == 2
    requeued = [e for e in events(db, job) if e[1] == "QUEUED" and e[0] is not None]
    assert len(requeued) == 1 and "requeued" in requeued[0][3]
    runs = sorted(r["submission_id"] for r in ray_head.submissions_of(job))
    assert [r.rsplit("-", 1)[1] for r in runs] == ["1", "2"]


def test_running_job_is_stopped_through_ray(db: psycopg.Connection, ray_group: str,
                                            ray_head: RayHead) -> None:
    job = submit(db, ray_group, "sleep 120")
    wait_for_state(db, job, {"RUNNING"})
    assert db.execute("SELECT ray.stop_job(%s)", (job,)).fetchone()[0] is True
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "STOPPED"
    assert db.execute("SELECT stopped_by FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0] == "postgres"
    [run] = ray_head.submissions_of(job)
    assert run["status"] == "STOPPED"
    assert any(e[3] == "stop sent to Ray" for e in events(db, job))


def test_a_stop_left_open_does_not_hold_the_groups_other_jobs(db: psycopg.Connection, ray_group: str) -> None:
    """ray.stop_job in a user's transaction that stays open holds its job's row;
    the worker applies Ray's answers for the group's other runs all the same,
    and the stop takes effect once the transaction commits."""
    victim = submit(db, ray_group, "sleep 120")
    wait_for_state(db, victim, {"RUNNING"})
    holder = connect()
    holder.autocommit = False
    try:
        holder.execute("SELECT ray.stop_job(%s)", (victim,))  # and left open
        other = submit(db, ray_group, "echo while-a-stop-is-open")
        assert wait_for_state(db, other, {"SUCCEEDED", "FAILED", "STOPPED"}) == "SUCCEEDED"
        holder.commit()
    finally:
        holder.close()
    assert wait_for_state(db, victim, {"SUCCEEDED", "FAILED", "STOPPED"}) == "STOPPED"


def test_live_log_while_the_job_runs(db: psycopg.Connection, ray_group: str) -> None:
    job = submit(db, ray_group, f"{PY} \"import time; print('tick', flush=True); time.sleep(120)\"")
    wait_for_state(db, job, {"RUNNING"})
    wait_for(lambda: "tick" in db.execute("SELECT ray.job_logs(%s)", (job,)).fetchone()[0],
             "the live log to show the first line")
    db.execute("SELECT ray.stop_job(%s)", (job,))
    wait_for_state(db, job, {"STOPPED"})


def test_jobs_are_private_to_their_owner(db: psycopg.Connection, ray_group: str) -> None:
    for role in ("it_alice", "it_bob"):
        db.execute(f"DROP ROLE IF EXISTS {role}")
        db.execute(f"CREATE ROLE {role} IN ROLE ray_user")
    try:
        db.execute("SET ROLE it_alice")
        job = submit(db, ray_group, f"{PY} \"print('alice')\"")
        db.execute("RESET ROLE")
        db.execute("SET ROLE it_bob")
        assert db.execute("SELECT count(*) FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0] == 0
        with pytest.raises(psycopg.errors.UndefinedObject):
            db.execute("SELECT ray.wait_job(%s, '1 second')", (job,))
        with pytest.raises(psycopg.errors.UndefinedObject):
            db.execute("SELECT ray.stop_job(%s)", (job,))
        with pytest.raises(psycopg.errors.UndefinedObject):
            db.execute("SELECT ray.job_logs(%s)", (job,))
        db.execute("RESET ROLE")
        db.execute("SET ROLE it_alice")
        assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
        assert db.execute("SELECT owner FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0] == "it_alice"
    finally:
        db.execute("RESET ROLE")
        db.execute("DELETE FROM ray.job WHERE owner IN ('it_alice', 'it_bob')")
        db.execute("DROP ROLE it_alice")
        db.execute("DROP ROLE it_bob")


def test_submission_made_before_a_crash_is_adopted_not_repeated(db: psycopg.Connection, ray_group: str,
                                                                ray_head: RayHead) -> None:
    """A worker that POSTed and died before recording it leaves the job in
    SUBMITTING while Ray has the run: the next worker must adopt that run."""
    with connect() as hold:
        hold.autocommit = False
        job = submit(hold, ray_group, f"{PY} \"print('once')\"")
        # the worker skips the locked row; we play the worker that crashed after its POST
        sid = hold.execute("SELECT ray_submission_id FROM ray.job WHERE job_id = %s", (job,)).fetchone()[0]
        assert sid is None
        install = hold.execute("SELECT id FROM ray.installation").fetchone()[0]
        sid = f"pgray-{install}-{job}-1"
        hold.execute("UPDATE ray.job SET attempts = 1, ray_submission_id = %s WHERE job_id = %s", (sid, job))
        hold.execute("SELECT ray._job_transition(%s, 'SUBMITTING', 'test: crashed after POST', 'test')", (job,))
        ray_head.rest("POST", "/api/jobs/", {"entrypoint": f"{PY} \"print('once')\"", "submission_id": sid,
                                             "metadata": {"pg_ray_job_id": str(job)}})
        hold.commit()
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
    assert len(ray_head.submissions_of(job)) == 1
    messages = [e[3] for e in events(db, job)]
    assert not any(m and m.startswith("submitted to Ray as") for m in messages), messages
    assert not any(m and "refused" in m for m in messages), messages


def test_submission_lost_before_it_reached_ray_is_made_once(db: psycopg.Connection, ray_group: str,
                                                           ray_head: RayHead) -> None:
    """A worker that died before its POST leaves SUBMITTING and nothing in
    Ray: the next worker submits that same attempt, once."""
    with connect() as hold:
        hold.autocommit = False
        job = submit(hold, ray_group, f"{PY} \"print('late')\"")
        install = hold.execute("SELECT id FROM ray.installation").fetchone()[0]
        hold.execute("UPDATE ray.job SET attempts = 1, ray_submission_id = %s WHERE job_id = %s",
                     (f"pgray-{install}-{job}-1", job))
        hold.execute("SELECT ray._job_transition(%s, 'SUBMITTING', 'test: crashed before POST', 'test')", (job,))
        hold.commit()
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
    [run] = ray_head.submissions_of(job)
    assert run["submission_id"].endswith(f"-{job}-1")


def test_worker_termination_and_server_restart_mid_run_keep_one_run(ray_group: str,
                                                                    ray_head: RayHead) -> None:
    with connect() as db:
        job = submit(db, ray_group, "sleep 8")
        wait_for_state(db, job, {"PENDING", "RUNNING"})
        pid = wait_for_worker()
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_for_worker(other_than=pid)
        wait_for_state(db, job, {"RUNNING"})
    subprocess.run([str(ROOT / "scripts/test-cluster"), "restart"], check=True, capture_output=True)
    db = wait_for(lambda: connect(), "the restarted server")
    with db:
        assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
        assert db.execute("SELECT attempts FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0] == 1
    assert len(ray_head.submissions_of(job)) == 1


def test_a_crash_of_every_backend_mid_run_keeps_one_run(ray_group: str, ray_head: RayHead) -> None:
    with connect() as db:
        job = submit(db, ray_group, "sleep 6")
        wait_for_state(db, job, {"SUBMITTING", "PENDING", "RUNNING"})
        pid = wait_for_worker()
    os.kill(pid, signal.SIGKILL)
    wait_for_worker(other_than=pid)
    db = wait_for(lambda: connect(), "the server after crash recovery")
    with db:
        assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
    assert len(ray_head.submissions_of(job)) == 1


def zip_of(files: dict[str, str]) -> bytes:
    """A working directory as a zip, files at the root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_working_dir_zip_is_uploaded_and_used(db: psycopg.Connection, ray_group: str,
                                              ray_head: RayHead) -> None:
    app = zip_of({"main.py": "print(open('data/greeting.txt').read().strip() + '!')\n",
                  "data/greeting.txt": "hello from the working dir\n"})
    with db.transaction():
        job = submit(db, ray_group, "python main.py", working_dir=app)
        package = db.execute("SELECT package FROM ray.job_package WHERE job_id = %s", (job,)).fetchone()[0]
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
    assert "hello from the working dir!" in wait_for(lambda: saved_log(db, job), "the log")
    [run] = ray_head.submissions_of(job)
    assert run["runtime_env"]["working_dir"] == f"gcs://{package}"
    # once the job has finished, no attempt needs it: it is not kept
    assert db.execute("SELECT count(*) FROM ray.job_package WHERE job_id = %s", (job,)).fetchone()[0] == 0


def test_server_directory_is_zipped_for_admins_only(db: psycopg.Connection, ray_group: str) -> None:
    # a directory the server (the postgres OS user) can read
    app = Path(tempfile.mkdtemp(prefix="pgray_app_", dir="/tmp"))
    try:
        (app / "main.py").write_text("import helper; print(helper.WORD)\n")
        (app / "helper.py").write_text("WORD = 'zipped on the server'\n")
        (app / ".git").mkdir()
        (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        for path in [app, app / ".git"]:
            path.chmod(0o755)
        for path in app.rglob("*"):
            if path.is_file():
                path.chmod(0o644)
        with db.transaction():
            job = db.execute("SELECT ray.submit_job(%s, 'python main.py', working_dir => ray.zip_directory(%s))",
                             (ray_group, str(app))).fetchone()[0]
            names = zipfile.ZipFile(io.BytesIO(db.execute(
                "SELECT content FROM ray.job_package WHERE job_id = %s", (job,)).fetchone()[0])).namelist()
        assert sorted(names) == ["helper.py", "main.py"]
        assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
        assert "zipped on the server" in wait_for(lambda: saved_log(db, job), "the log")

        db.execute("DROP ROLE IF EXISTS it_admin")
        db.execute("CREATE ROLE it_admin IN ROLE ray_admin")
        db.execute("SET ROLE it_admin")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("SELECT ray.zip_directory(%s)", (str(app),))
    finally:
        db.execute("RESET ROLE")
        db.execute("DROP ROLE IF EXISTS it_admin")
        shutil.rmtree(app, ignore_errors=True)


def test_wait_job_answers_query_cancel(db: psycopg.Connection, ray_group: str) -> None:
    job = submit(db, ray_group, "sleep 120")
    with connect() as waiter:
        pid = waiter.execute("SELECT pg_backend_pid()").fetchone()[0]
        outcome: list[BaseException] = []

        def wait() -> None:
            try:
                waiter.execute("SELECT ray.wait_job(%s, '10 minutes')", (job,))
            except BaseException as error:  # noqa: BLE001 - the cancel is the point
                outcome.append(error)

        thread = threading.Thread(target=wait)
        thread.start()
        wait_for(lambda: db.execute("SELECT wait_event = 'Extension' FROM pg_stat_activity WHERE pid = %s",
                                    (pid,)).fetchone()[0], "the session to wait")
        db.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert isinstance(outcome[0], psycopg.errors.QueryCanceled)
    db.execute("SELECT ray.stop_job(%s)", (job,))
    wait_for_state(db, job, {"STOPPED"})


def test_cluster_settings_are_checked_before_they_change(db: psycopg.Connection, ray_group: str,
                                                         ray_head: RayHead) -> None:
    with pytest.raises(psycopg.errors.ConnectionFailure) as caught:
        db.execute("SELECT ray.alter_cluster(%s, token => 'not-the-token')", (ray_group,))
    assert caught.value.diag.message_hint == "The dashboard refused the token: check it."
    # the group still works with its old token
    job = submit(db, ray_group, f"{PY} \"print('still here')\"")
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
    # the same token again changes nothing; a real change is recorded without the secret
    db.execute("SELECT ray.alter_cluster(%s, token => %s)", (ray_group, ray_head.token))
    db.execute("SELECT ray.alter_cluster(%s, options => %s)",
               (ray_group, psycopg.types.json.Jsonb({"client_address": "ray://127.0.0.1:10002"})))
    wait_for(lambda: db.execute("SELECT client_address = 'ray://127.0.0.1:10002' FROM ray.resource_groups "
                                "WHERE name = %s", (ray_group,)).fetchone()[0], "the new client address")
    assert ray_head.token not in str(db.execute("SELECT * FROM ray.resource_group_event").fetchall())
    # whoever may change the URL cannot have the stored token sent to a server of theirs
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        db.execute("SELECT ray.alter_cluster(%s, dashboard_url => 'http://127.0.0.1:9')", (ray_group,))
    assert refused.value.diag.message_primary == \
        f'the token of resource group "{ray_group}" is not sent to another dashboard'
    with pytest.raises(psycopg.errors.InvalidParameterValue):  # nor to a server another CA vouches for
        db.execute("SELECT ray.alter_cluster(%s, options => '{\"ca_file\": \"/tmp/other-ca.pem\"}')", (ray_group,))
    assert db.execute("SELECT endpoint = %s AND NOT options ? 'ca_file' FROM ray.resource_group WHERE name = %s",
                      (ray_head.url, ray_group)).fetchone()[0]
    with pytest.raises(psycopg.errors.WrongObjectType):
        db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 1)", (ray_group,))


def test_run_whose_supervisor_died_is_requeued(db: psycopg.Connection, ray_group: str,
                                               ray_head: RayHead) -> None:
    job = submit(db, ray_group, "sleep 300", max_attempts=2)
    wait_for_state(db, job, {"RUNNING"})
    [first] = ray_head.submissions_of(job)
    # kill the Ray actor that supervises this run, as a node failure would
    supervisors = subprocess.run(["pgrep", "-f", "JobSupervisor"], capture_output=True, text=True).stdout.split()
    assert supervisors, "no JobSupervisor process found"
    for pid in supervisors:
        os.kill(int(pid), signal.SIGKILL)
    wait_for(lambda: db.execute("SELECT attempts = 2 FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0],
             "the second attempt")
    lost = [e for e in events(db, job) if e[1] == "QUEUED" and e[0] is not None]
    assert len(lost) == 1 and "JOB_SUPERVISOR_ACTOR_DIED" in lost[0][3] and " lost: " in lost[0][3]
    assert ray_head.rest("GET", f"/api/jobs/{first['submission_id']}")["status"] == "FAILED"
    wait_for_state(db, job, {"RUNNING"})
    db.execute("SELECT ray.stop_job(%s)", (job,))
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (job,)).fetchone()[0] == "STOPPED"
    assert sorted(r["submission_id"][-2:] for r in ray_head.submissions_of(job)) == ["-1", "-2"]
