"""The crash matrix: for each victim (the background worker, killed with
SIGKILL, which makes PostgreSQL restart every backend; the postmaster,
stopped immediately and started again; the Ray head and a Ray worker node
of a local group, each killed with everything it started), each state a job
can be caught in, and both kinds of job (a script on the real Ray head and on
a local group; a batch inference on a local group), crash the victim there
and check the invariants: the job
reaches its true final state; Ray holds exactly one submission per attempt;
a batch run's target holds each source row exactly once (none if it
failed); no staging table or run role is left behind.

States that last milliseconds are held with the worker's fault points
(pg_ray.fault_pause_at, src/fault.c): SUBMITTING before the POST is sent,
SUBMITTING after Ray accepted it but before that is recorded, PENDING before
the next status is applied.  QUEUED is a second job submitted while the
worker is held; RUNNING is a job that sleeps.  A sweep then crashes the
server, the worker or the runner at ten offsets into one batch run, through
its reading, scoring and staging (every victim at every offset with
PG_RAY_CRASH_SWEEP=full).  The table of cells is written to
build/crash_matrix.md."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from conftest import (ROOT, RayHead, as_role, connect, restart_server_immediately, wait_for,
                      wait_for_state, wait_for_worker)

ENTRYPOINT = "python -c \"import time; print('crash-matrix', flush=True); time.sleep(2)\""
RESULTS: list[tuple[str, str, str, str]] = []

# state -> (fault point that holds it, the job's state while held)
HOLDS = {
    "QUEUED": ("before_submit", "QUEUED"),
    "SUBMITTING, POST not sent": ("before_submit", "SUBMITTING"),
    "SUBMITTING, POST answered, not recorded": ("after_submit", "SUBMITTING"),
    "PENDING": ("before_status", "PENDING"),
    "RUNNING": (None, "RUNNING"),
}


def arm(db: psycopg.Connection, point: str | None) -> None:
    if point is None:
        db.execute("ALTER SYSTEM RESET pg_ray.fault_pause_at")
    else:
        db.execute(f"ALTER SYSTEM SET pg_ray.fault_pause_at = '{point}'")
    db.execute("SELECT pg_reload_conf()")


def paused_at(point: str) -> bool:
    with connect() as c:
        return c.execute("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_ray worker'"
                         " AND query = %s)", (f"pg_ray: paused at fault point {point}",)).fetchone()[0]


def submit(db: psycopg.Connection, group: str) -> int:
    return db.execute("SELECT ray.submit_job(%s, %s)", (group, ENTRYPOINT)).fetchone()[0]


def crash(victim: str) -> None:
    """Crash the victim and wait until the server and a worker are back; the
    fault point is already reset in the configuration file."""
    if victim == "worker":
        pid = wait_for_worker()
        os.kill(pid, signal.SIGKILL)
        wait_for_worker(other_than=pid)
    elif victim in ("ray head", "ray worker node"):
        # a node of the local group, with every process it started
        with connect() as c:
            pid = c.execute("SELECT pid FROM ray.node WHERE resource_group = %s AND kind = %s AND pid IS NOT NULL",
                            (GROUP, "head" if victim == "ray head" else "worker")).fetchone()[0]
        os.killpg(pid, signal.SIGKILL)
    else:
        restart_server_immediately()
    # a worker restarted by the crash may hold at the point again until it reloads
    with wait_for(lambda: connect(), "the server after the crash") as c:
        c.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="module", autouse=True)
def table() -> None:
    yield
    lines = ["| job | victim | state when crashed | result |", "| --- | --- | --- | --- |"]
    lines += [f"| {k} | {v} | {s} | {r} |" for k, v, s, r in RESULTS]
    out = ROOT / "build" / "crash_matrix.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    with connect() as c:
        arm(c, None)


@pytest.mark.parametrize("state", list(HOLDS))
@pytest.mark.parametrize("victim", ["worker", "postmaster"])
def test_crash(victim: str, state: str, ray_group: str, ray_head: RayHead) -> None:
    point, held_state = HOLDS[state]
    result = "FAILED"
    try:
        with connect() as db:
            arm(db, point)
            first = submit(db, ray_group)
            jobs = [first]
            if point is not None:
                wait_for(lambda: paused_at(point), f"the worker to pause at {point}")
            if state == "QUEUED":
                # the worker is held: a job submitted now stays queued
                jobs.append(submit(db, ray_group))
            victim_job = jobs[-1]
            wait_for_state(db, victim_job, {held_state})
            db.execute("ALTER SYSTEM RESET pg_ray.fault_pause_at")
            assert db.execute("SELECT state FROM ray.job WHERE job_id = %s", (victim_job,)).fetchone()[0] == held_state
        crash(victim)
        with wait_for(lambda: connect(), "the server after the crash") as db:
            for job in jobs:
                assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
                assert db.execute("SELECT attempts FROM ray.job WHERE job_id = %s", (job,)).fetchone()[0] == 1
                runs = ray_head.submissions_of(job)
                assert len(runs) == 1, runs
                assert runs[0]["status"] == "SUCCEEDED"
                log = wait_for(lambda: db.execute("SELECT log FROM ray.job_log WHERE job_id = %s", (job,)).fetchone(),
                               "the job's log to be kept")
                assert "crash-matrix" in log[0]
        result = "holds: SUCCEEDED, 1 attempt, 1 Ray submission, log kept"
    finally:
        RESULTS.append(("script", victim, state, result))


# ---------------------------------------------------------------------------
# batch inference on a local group
# ---------------------------------------------------------------------------

GROUP = "it-crash"
USER = "crash_user"
ROWS = 2000
BATCH_HOLDS = {**HOLDS, "PUBLISHING": (None, "PUBLISHING")}


def drop_user(db: psycopg.Connection) -> None:
    db.execute("DROP SCHEMA IF EXISTS crash CASCADE")
    db.execute("DELETE FROM ray.model WHERE owner = %s", (USER,))
    if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (USER,)).fetchone():
        db.execute(f"DROP OWNED BY {USER}")
        db.execute(f"DROP ROLE {USER}")


@pytest.fixture(scope="module")
def batch_group(local_nodes: psycopg.Connection) -> Iterator[None]:
    """A local group, a user, a source table and a model that takes a moment per batch."""
    db = local_nodes
    db.execute("INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, num_gpus, cpu_units, description)"
               " VALUES ('bi4', 'CPU', 4, 4096, 0, 4, 'batch inference tests') ON CONFLICT DO NOTHING")
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)", (GROUP, '{"object_store_memory_mb": 200}'))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'bi4', 1, 1)", (GROUP,))
    drop_user(db)
    db.execute(f"CREATE ROLE {USER} LOGIN IN ROLE ray_user")
    db.execute("SELECT ray.grant_usage(%s, %s)", (GROUP, USER))
    db.execute(f"CREATE SCHEMA crash AUTHORIZATION {USER}")
    db.execute("CREATE TABLE crash.src (id bigint PRIMARY KEY, age integer)")
    db.execute("INSERT INTO crash.src SELECT g, g %% 90 FROM generate_series(1, %s) g", (ROWS,))
    db.execute(f"GRANT SELECT ON crash.src TO {USER}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("slow.py", "import time\n\nclass Slow:\n    def __call__(self, batch):\n"
                                    "        time.sleep(0.3)\n        return batch['age'] * 1.0\n")
    as_role(db, USER, "SELECT ray.register_model('slow', 'python', %s::bytea, '{\"class\": \"slow:Slow\"}')",
            (buffer.getvalue(),))
    wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = %s",
                                (GROUP,)).fetchone()[0], "the crash group to be READY", 240)
    yield
    with wait_for(lambda: connect(), "the server") as c:
        drop_user(c)


def group_rest(db: psycopg.Connection, path: str) -> Any:
    """GET from the local group's dashboard, waiting for a head killed by the
    test to come back."""
    url = db.execute("SELECT dashboard_url FROM ray.resource_group WHERE name = %s", (GROUP,)).fetchone()[0]
    token = db.execute("SELECT token FROM ray.resource_group_secret WHERE resource_group = %s", (GROUP,)).fetchone()[0]
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})

    def fetch() -> Any:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except OSError:
            return None

    return wait_for(lambda: (answer := fetch()) is not None and [answer], "the group's head to answer", 120)[0]


def group_runs(db: psycopg.Connection, job_id: int) -> list[dict[str, Any]]:
    """The runs the local group's Ray holds for a job."""
    return [r for r in group_rest(db, "/api/jobs/") if (r.get("metadata") or {}).get("pg_ray_job_id") == str(job_id)]


def group_logs(db: psycopg.Connection, submission_id: str) -> str:
    """What the local group's Ray says the log of a run is."""
    return group_rest(db, f"/api/jobs/{submission_id}/logs")["logs"]


@pytest.mark.parametrize("state", list(BATCH_HOLDS))
@pytest.mark.parametrize("victim", ["worker", "postmaster", "ray head", "ray worker node"])
def test_crash_batch(victim: str, state: str, batch_group: None) -> None:
    point, held_state = BATCH_HOLDS[state]
    target = f"crash.{victim.replace(' ', '_')}_{state.split(',')[0].lower()}_{len(RESULTS)}"
    result = "FAILED"
    locker = None
    try:
        with connect() as db:
            db.execute(f"CREATE TABLE {target} (id bigint, prediction double precision)")
            db.execute(f"ALTER TABLE {target} OWNER TO {USER}")
            arm(db, point)

            def run() -> int:
                return as_role(db, USER, "SELECT ray.batch_inference(%s, 'crash.src', 'slow', %s, "
                               "input_columns => ARRAY['age'], create_target => false, "
                               "options => '{\"batch_size\": 250, \"concurrency\": 1}')",
                               (GROUP, target))[0]
            jobs = [run()]
            if point is not None:
                wait_for(lambda: paused_at(point), f"the worker to pause at {point}", 120)
            if state == "QUEUED":
                other = target + "_q"
                db.execute(f"CREATE TABLE {other} (id bigint, prediction double precision)")
                db.execute(f"ALTER TABLE {other} OWNER TO {USER}")
                jobs.append(as_role(db, USER, "SELECT ray.batch_inference(%s, 'crash.src', 'slow', %s, "
                                    "input_columns => ARRAY['age'], create_target => false, "
                                    "options => '{\"batch_size\": 250, \"concurrency\": 1}')",
                                    (GROUP, other))[0])
            if state == "PUBLISHING":
                # a lock on the target keeps the finished run waiting to publish
                locker = connect()
                locker.autocommit = False
                locker.execute(f"LOCK TABLE {target} IN ACCESS EXCLUSIVE MODE")
            if state == "RUNNING":
                wait_for(lambda: (db.execute("SELECT rows_processed FROM ray.jobs WHERE job_id = %s",
                                             (jobs[-1],)).fetchone()[0] or 0) > 0, "the run to stage rows", 180)
            wait_for_state(db, jobs[-1], {held_state}, 180)
            db.execute("ALTER SYSTEM RESET pg_ray.fault_pause_at")
        crash(victim)
        if locker is not None:
            # a crash of the server took the lock with it; a crash in Ray did not
            try:
                locker.close()
            except psycopg.Error:
                pass
            locker = None
        with wait_for(lambda: connect(), "the server after the crash") as db:
            outcomes = []
            for job in jobs:
                state_now = db.execute("SELECT ray.wait_job(%s, '5 minutes')", (job,)).fetchone()[0]
                attempts, table, message = db.execute("SELECT attempts, target_table, message FROM ray.job "
                                                      "WHERE job_id = %s", (job,)).fetchone()
                runs = group_runs(db, job)
                if victim == "ray head":
                    # a head killed takes its job list with it: the runs the new
                    # one has are of this job's attempts, each at most once
                    ids = [r["submission_id"] for r in runs]
                    assert len(ids) == len(set(ids)) <= attempts, (ids, attempts)
                else:
                    assert len(runs) == attempts, (runs, attempts)
                rows, keys, wrong = db.execute(f"SELECT count(*), count(DISTINCT id), count(*) FILTER "
                                               f"(WHERE prediction IS DISTINCT FROM s.age) FROM {table} t "
                                               f"JOIN crash.src s USING (id)").fetchone()
                # a crash is the infrastructure's fault: every run ends published, each row once
                # (a run whose database went away under it is run again)
                assert state_now == "SUCCEEDED", (state_now, message)
                assert (rows, keys, wrong) == (ROWS, ROWS, 0)
                outcomes.append(f"SUCCEEDED in {attempts} attempt(s), {ROWS} rows once")
            wait_for(lambda: not db.execute("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname LIKE 'pgray\\_run\\_%')"
                                            ).fetchone()[0]
                     and not db.execute("SELECT EXISTS (SELECT FROM pg_class "
                                        "WHERE relnamespace = 'ray_staging'::regnamespace)").fetchone()[0],
                     "no run role and no staging table left", 60)
            # and no runner (the job's driver) goes on somewhere
            wait_for(lambda: subprocess.run(["pgrep", "-f", "python -m pg_ray_runner"],
                                            capture_output=True).returncode == 1, "no runner left running", 60)
        result = "holds: " + "; ".join(outcomes) + ", no role, staging or runner left"
    finally:
        if locker is not None:
            try:
                locker.close()
            except psycopg.Error:
                pass
        RESULTS.append(("batch", victim, state, result))


# ---------------------------------------------------------------------------
# script jobs on the local group, with Ray's own processes as victims
# ---------------------------------------------------------------------------

def local_entrypoint(marker: str) -> str:
    # long enough to be caught RUNNING and crashed there
    return f"python -c \"import time; print('{marker}', flush=True); time.sleep(8)\""


@pytest.mark.parametrize("state", list(HOLDS))
@pytest.mark.parametrize("victim", ["ray head", "ray worker node"])
def test_crash_script_on_local_group(victim: str, state: str, batch_group: None) -> None:
    """A script job whose driver runs on the group's worker node (the head
    has no CPUs: entrypoint_num_cpus puts it there), crashed with the head or
    that node.  A run lost with them is the infrastructure's fault: the job
    runs again (max_attempts 2) and ends SUCCEEDED; no driver of a lost run
    is left running."""
    point, held_state = HOLDS[state]
    marker = f"crash-matrix-local-{len(RESULTS)}-end"
    result = "FAILED"

    def run(db: psycopg.Connection) -> int:
        return db.execute("SELECT ray.submit_job(%s, %s, entrypoint_num_cpus => 1, max_attempts => 2)",
                          (GROUP, local_entrypoint(marker))).fetchone()[0]
    try:
        with connect() as db:
            arm(db, point)
            jobs = [run(db)]
            if point is not None:
                wait_for(lambda: paused_at(point), f"the worker to pause at {point}", 120)
            if state == "QUEUED":
                jobs.append(run(db))
            wait_for_state(db, jobs[-1], {held_state}, 180)
            db.execute("ALTER SYSTEM RESET pg_ray.fault_pause_at")
        crash(victim)
        with wait_for(lambda: connect(), "the server after the crash") as db:
            outcomes = []
            for job in jobs:
                state_now = db.execute("SELECT ray.wait_job(%s, '5 minutes')", (job,)).fetchone()[0]
                attempts, message = db.execute("SELECT attempts, message FROM ray.job WHERE job_id = %s",
                                               (job,)).fetchone()
                assert state_now == "SUCCEEDED", (state_now, message)
                runs = group_runs(db, job)
                ids = [r["submission_id"] for r in runs]
                if victim == "ray head":
                    # the new head holds at most the runs made since it started
                    assert len(ids) == len(set(ids)) <= attempts, (ids, attempts)
                else:
                    assert len(ids) == len(set(ids)) == attempts, (ids, attempts)
                # the log kept is Ray's (which, for a driver on a worker node
                # of a group whose nodes share one host, is only the head's
                # part: docs/operations.md, local resource groups)
                sid = db.execute("SELECT ray_submission_id FROM ray.job WHERE job_id = %s", (job,)).fetchone()[0]
                ray_log = group_logs(db, sid)
                wait_for(lambda: db.execute("SELECT log FROM ray.job_log WHERE job_id = %s", (job,)).fetchone()
                         == (ray_log,), "the job's log to be kept")
                outcomes.append(f"SUCCEEDED in {attempts} attempt(s)")
            # no driver of a lost run goes on somewhere
            wait_for(lambda: subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1,
                     "no driver of the job left running", 60)
        result = "holds: " + "; ".join(outcomes) + ", each run once in Ray, Ray's log kept, no driver left"
    finally:
        RESULTS.append(("script (local group)", victim, state, result))


# ---------------------------------------------------------------------------
# a sweep of crashes through one batch run: while it reads, scores and stages
# ---------------------------------------------------------------------------

# Where in a run a crash comes: a delay after the run is RUNNING with nothing
# staged yet (its driver starting, taking its snapshot, the read tasks
# starting), or a number of the ROWS staged (reading, scoring and staging
# overlap in Ray Data's stream; 8 partitions of about 250 rows, one batch
# each, so that rows are staged as the run goes).
SWEEP_OFFSETS: list[tuple[str, float | None, int | None]] = [
    ("RUNNING", 0.0, None), ("RUNNING + 1 s", 1.0, None), ("RUNNING + 2 s", 2.0, None),
    ("250+ rows staged", None, 250), ("500+ rows staged", None, 500), ("750+ rows staged", None, 750),
    ("1000+ rows staged", None, 1000), ("1250+ rows staged", None, 1250), ("1500+ rows staged", None, 1500),
    ("1750+ rows staged", None, 1750)]
SWEEP_VICTIMS = ["postmaster", "worker", "runner"]
# CI: each offset once, the victims taking turns; PG_RAY_CRASH_SWEEP=full: every victim at every offset
SWEEP = ([(victim, offset) for offset in SWEEP_OFFSETS for victim in SWEEP_VICTIMS]
         if os.environ.get("PG_RAY_CRASH_SWEEP") == "full"
         else [(SWEEP_VICTIMS[i % len(SWEEP_VICTIMS)], offset) for i, offset in enumerate(SWEEP_OFFSETS)])


def kill_runner() -> None:
    """SIGKILL the run's driver (python -m pg_ray_runner), as the OOM killer would."""
    def driver() -> list[int]:
        found = subprocess.run(["pgrep", "-f", "python -m pg_ray_runner"], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]
    for pid in wait_for(driver, "the runner to be running", 60):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("victim, offset", SWEEP, ids=[f"{v}-{o[0]}" for v, o in SWEEP])
def test_crash_sweep_through_a_batch_run(victim: str, offset: tuple[str, float | None, int | None],
                                         batch_group: None) -> None:
    """Crash the server, the worker or the runner at an offset into a batch run: a read that
    starts after a restart finds the run's snapshot gone, a runner killed never gives its verdict;
    either is the infrastructure's, so the run goes again and publishes every row once."""
    where, delay, staged = offset
    target = f"crash.sweep_{len(RESULTS)}"
    result = "FAILED"
    try:
        with connect() as db:
            db.execute(f"CREATE TABLE {target} (id bigint, prediction double precision)")
            db.execute(f"ALTER TABLE {target} OWNER TO {USER}")
            job = as_role(db, USER, "SELECT ray.batch_inference(%s, 'crash.src', 'slow', %s, "
                          "input_columns => ARRAY['age'], create_target => false, "
                          "options => '{\"batch_size\": 250, \"concurrency\": 1, \"partitions\": 8}')",
                          (GROUP, target))[0]
            wait_for_state(db, job, {"RUNNING"}, 180)
            if delay is not None:
                deadline = time.monotonic() + delay
                wait_for(lambda: time.monotonic() >= deadline, where)
            else:
                wait_for(lambda: (db.execute("SELECT rows_processed FROM ray.jobs WHERE job_id = %s",
                                             (job,)).fetchone()[0] or 0) >= staged, where, 180)
            at = db.execute("SELECT state, rows_processed FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()
        if victim == "runner":
            kill_runner()
        else:
            crash(victim)
        with wait_for(lambda: connect(), "the server after the crash") as db:
            state_now = db.execute("SELECT ray.wait_job(%s, '5 minutes')", (job,)).fetchone()[0]
            attempts, message = db.execute("SELECT attempts, message FROM ray.job WHERE job_id = %s",
                                           (job,)).fetchone()
            assert state_now == "SUCCEEDED", (state_now, message, at)
            rows, keys, wrong = db.execute(f"SELECT count(*), count(DISTINCT id), count(*) FILTER "
                                           f"(WHERE prediction IS DISTINCT FROM s.age) FROM {target} t "
                                           f"JOIN crash.src s USING (id)").fetchone()
            assert (rows, keys, wrong) == (ROWS, ROWS, 0)
            wait_for(lambda: not db.execute("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname LIKE 'pgray\\_run\\_%')"
                                            ).fetchone()[0]
                     and not db.execute("SELECT EXISTS (SELECT FROM pg_class "
                                        "WHERE relnamespace = 'ray_staging'::regnamespace)").fetchone()[0],
                     "no run role and no staging table left", 60)
        result = (f"holds: caught {at[0]} with {at[1] or 0} rows staged; SUCCEEDED in {attempts} attempt(s), "
                  f"{ROWS} rows once")
    finally:
        RESULTS.append(("batch sweep", victim, where, result))
