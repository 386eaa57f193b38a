"""Error paths at the HTTP boundary, which a real Ray cannot be made to walk
on demand: a small misbehaving dashboard (test/fault_server.py) answers
instead.  Each test checks what a user sees and that nothing is lost or
doubled."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import pytest

from conftest import connect, events, wait_for, wait_for_state, worker_status

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fault_server import FakeRay, Fault  # noqa: E402


@pytest.fixture
def fake(db: psycopg.Connection) -> Iterator[FakeRay]:
    server = FakeRay().start()
    yield server
    server.stop()
    # its group and jobs go with it (a forced drop of an unreachable group
    # waits for pg_ray.cluster_unreachable_timeout, which no test waits for)
    db.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
               "WHERE name = %s AND delete_requested_at IS NULL", (f"it-fake-{server.url.rsplit(':', 1)[1]}",))


def register(db: psycopg.Connection, fake: FakeRay) -> str:
    """Register the fake as a resource group of its own, named after its port."""
    name = f"it-fake-{fake.url.rsplit(':', 1)[1]}"
    db.execute("SELECT ray.register_cluster(%s, %s, 'fake-token')", (name, fake.url))
    db.execute("SELECT ray.grant_usage(%s, 'public')", (name,))
    wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = %s",
                                (name,)).fetchone()[0], "the fake group to be READY")
    return name


def register_error(db: psycopg.Connection, fake: FakeRay) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT ray.register_cluster('it-fake-bad', %s)", (fake.url,))
    return caught.value


def test_html_page_is_not_a_dashboard(db: psycopg.Connection, fake: FakeRay) -> None:
    fake.fail("GET", "/api/version", Fault("html"))
    error = register_error(db, fake)
    assert isinstance(error, psycopg.errors.ProtocolViolation)
    assert error.diag.message_primary == f"{fake.url} did not answer as a Ray dashboard"
    assert "not JSON" in error.diag.message_detail


def test_truncated_and_non_json_answers_are_refused(db: psycopg.Connection, fake: FakeRay) -> None:
    fake.fail("GET", "/api/version", Fault("truncated"))
    assert "not JSON" in register_error(db, fake).diag.message_detail
    fake.fail("GET", "/api/version", Fault("not_json"))
    assert "not JSON" in register_error(db, fake).diag.message_detail


def test_server_errors_are_retried_then_reported(db: psycopg.Connection, fake: FakeRay) -> None:
    fake.fail("GET", "/api/version", Fault("status", status=503))
    error = register_error(db, fake)
    assert isinstance(error, psycopg.errors.ConnectionFailure)
    assert "HTTP 503" in error.diag.message_detail
    assert fake.count("GET", "/api/version") == 3


def test_a_passing_server_error_is_retried_away(db: psycopg.Connection, fake: FakeRay) -> None:
    fake.fail("GET", "/api/version", Fault("status", status=502, times=2))
    db.execute("SELECT ray.register_cluster('it-fake-retry', %s)", (fake.url,))
    # two 502s and the answer (the worker may check the new group right after)
    assert fake.count("GET", "/api/version") >= 3
    assert [s[1] for s in fake.spans[:3]] == ["/api/version"] * 3
    db.execute("SELECT ray.drop_resource_group('it-fake-retry')")


def test_a_refused_token_says_so(db: psycopg.Connection, fake: FakeRay) -> None:
    fake.fail("GET", "/api/version", Fault("status", status=403))
    error = register_error(db, fake)
    assert error.diag.message_hint == "The dashboard refused the token: check it."


def test_a_reset_connection_is_reported(db: psycopg.Connection, fake: FakeRay) -> None:
    fake.fail("GET", "/api/version", Fault("reset"))
    error = register_error(db, fake)
    assert isinstance(error, psycopg.errors.ConnectionFailure)
    assert "after 3 tries" in error.diag.message_detail


def test_a_slow_dashboard_times_out(db: psycopg.Connection, fake: FakeRay,
                                    settings: Callable[[str, str], None]) -> None:
    settings("pg_ray.http_timeout", "300ms")
    fake.fail("GET", "/api/version", Fault("slow", delay=2.0))
    error = register_error(db, fake)
    assert "timed out" in error.diag.message_detail.lower()


def test_an_oversized_answer_is_cut_off(db: psycopg.Connection, fake: FakeRay) -> None:
    fake.fail("GET", "/api/version", Fault("huge"))
    error = register_error(db, fake)
    assert "exceeded" in error.diag.message_detail


def test_submission_waits_out_an_outage_and_is_made_once(db: psycopg.Connection, fake: FakeRay) -> None:
    group = register(db, fake)
    fake.fail("GET", r"/api/jobs/[^/]+", Fault("status", status=503))
    job = db.execute("SELECT ray.submit_job(%s, 'python x.py')", (group,)).fetchone()[0]
    message = wait_for(lambda: (m := db.execute("SELECT message FROM ray.jobs WHERE job_id = %s", (job,)
                                                ).fetchone()[0]) and "will retry" in m and m,
                       "the submission to report the outage")
    assert "HTTP 503" in message
    assert job_state(db, job) == "SUBMITTING"
    assert fake.count("POST", "/api/jobs/") == 0
    fake.heal()
    wait_for_state(db, job, {"PENDING"})
    assert fake.count("POST", "/api/jobs/") == 1
    [sid] = fake.jobs
    fake.set_status(sid, "SUCCEEDED", message="done")
    assert db.execute("SELECT ray.wait_job(%s, '1 minute')", (job,)).fetchone()[0] == "SUCCEEDED"
    assert fake.count("POST", "/api/jobs/") == 1


def test_a_post_that_never_arrived_is_made_again_once(db: psycopg.Connection, fake: FakeRay) -> None:
    group = register(db, fake)
    fake.fail("POST", "/api/jobs/", Fault("reset", times=1))
    job = db.execute("SELECT ray.submit_job(%s, 'python x.py')", (group,)).fetchone()[0]
    # Ray never saw the first POST: the next check finds nothing and the same
    # attempt is POSTed again
    wait_for_state(db, job, {"PENDING"})
    assert fake.count("POST", "/api/jobs/") == 2
    [sid] = fake.jobs
    assert sid.endswith(f"-{job}-1")


def test_a_post_whose_answer_was_lost_is_adopted_not_repeated(db: psycopg.Connection, fake: FakeRay) -> None:
    group = register(db, fake)
    fake.fail("POST", "/api/jobs/", Fault("drop_answer", times=1))
    job = db.execute("SELECT ray.submit_job(%s, 'python x.py')", (group,)).fetchone()[0]
    # Ray took the job but its answer was lost: the next check finds the run
    # and adopts it; there is no second POST
    wait_for(lambda: db.execute("SELECT ray_status FROM ray.job WHERE job_id = %s", (job,)).fetchone()[0],
             "the run to be adopted")
    assert fake.count("POST", "/api/jobs/") == 1
    [sid] = fake.jobs
    fake.set_status(sid, "SUCCEEDED")
    assert db.execute("SELECT ray.wait_job(%s, '1 minute')", (job,)).fetchone()[0] == "SUCCEEDED"
    assert fake.count("POST", "/api/jobs/") == 1


def test_a_run_the_head_forgot_is_requeued_as_a_new_attempt(db: psycopg.Connection, fake: FakeRay) -> None:
    group = register(db, fake)
    job = db.execute("SELECT ray.submit_job(%s, 'python x.py', max_attempts => 2)", (group,)).fetchone()[0]
    wait_for_state(db, job, {"PENDING"})
    [first] = fake.jobs
    fake.set_status(first, "RUNNING")
    wait_for_state(db, job, {"RUNNING"})
    with fake.lock:
        fake.jobs.clear()  # the head restarted without its state
    wait_for(lambda: len(fake.jobs) == 1 and first not in fake.jobs, "the second attempt to be submitted")
    [second] = fake.jobs
    assert second.endswith(f"-{job}-2")
    fake.set_status(second, "SUCCEEDED")
    assert db.execute("SELECT ray.wait_job(%s, '1 minute')", (job,)).fetchone()[0] == "SUCCEEDED"
    assert db.execute("SELECT attempts FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0] == 2
    assert any("no longer knows run" in (e[3] or "") and e[1] == "QUEUED" for e in events(db, job))


def test_a_garbled_job_list_does_not_lose_runs(db: psycopg.Connection, fake: FakeRay) -> None:
    group = register(db, fake)
    job = db.execute("SELECT ray.submit_job(%s, 'python x.py')", (group,)).fetchone()[0]
    wait_for_state(db, job, {"PENDING"})
    [sid] = fake.jobs
    fake.set_status(sid, "RUNNING")
    wait_for_state(db, job, {"RUNNING"})
    fake.fail("GET", "/api/jobs/", Fault("not_json"))
    polls = fake.count("GET", "/api/jobs/")
    wait_for(lambda: fake.count("GET", "/api/jobs/") >= polls + 2, "two garbled polls")
    assert job_state(db, job) == "RUNNING"
    fake.heal()
    fake.set_status(sid, "SUCCEEDED")
    assert db.execute("SELECT ray.wait_job(%s, '1 minute')", (job,)).fetchone()[0] == "SUCCEEDED"
    assert db.execute("SELECT attempts FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0] == 1


def test_a_cluster_gone_too_long_loses_its_runs_and_stops_them_when_back(
        db: psycopg.Connection, fake: FakeRay, settings: Callable[[str, str], None]) -> None:
    settings("pg_ray.cluster_unreachable_timeout", "1s")
    group = register(db, fake)
    job = db.execute("SELECT ray.submit_job(%s, 'python x.py')", (group,)).fetchone()[0]
    wait_for_state(db, job, {"PENDING"})
    [sid] = fake.jobs
    fake.set_status(sid, "RUNNING")
    wait_for_state(db, job, {"RUNNING"})
    fake.fail("GET", r"/api/.*", Fault("status", status=503))
    assert wait_for_state(db, job, {"FAILED"}, timeout=60) == "FAILED"
    message = db.execute("SELECT message FROM ray.jobs WHERE job_id = %s", (job,)).fetchone()[0]
    assert "unreachable" in message and "no attempts left" in message
    assert db.execute("SELECT state FROM ray.resource_groups WHERE name = %s", (group,)).fetchone()[0] == "DEGRADED"
    assert db.execute("SELECT count(*) FROM ray.lost_run WHERE job_id = %s", (job,)).fetchone()[0] == 1
    # back: the group is READY again and the orphaned run is stopped
    fake.heal()
    db.execute("SELECT ray.alter_resource_group(%s, options => '{}')", (group,))  # nudge a round
    wait_for(lambda: db.execute("SELECT count(*) = 0 FROM ray.lost_run WHERE job_id = %s", (job,)).fetchone()[0],
             "the lost run to be stopped")
    assert fake.jobs[sid]["status"] == "STOPPED"


def job_state(db: psycopg.Connection, job_id: int) -> str:
    return db.execute("SELECT state FROM ray.job WHERE job_id = %s", (job_id,)).fetchone()[0]


def test_a_slow_cluster_does_not_stall_another(db: psycopg.Connection, fake: FakeRay, ray_group: str) -> None:
    group = register(db, fake)
    stuck = db.execute("SELECT ray.submit_job(%s, 'python x.py')", (group,)).fetchone()[0]
    wait_for_state(db, stuck, {"PENDING"})
    # every poll of the fake now hangs far longer than the other job takes
    fake.fail("GET", "/api/jobs/", Fault("slow", delay=8.0))
    polls = fake.count("GET", "/api/jobs/")
    wait_for(lambda: fake.count("GET", "/api/jobs/") > polls, "a poll of the slow cluster to start")
    quick = db.execute("SELECT ray.submit_job(%s, 'python -c \"print(1)\"')", (ray_group,)).fetchone()[0]
    assert db.execute("SELECT ray.wait_job(%s, '2 minutes')", (quick,)).fetchone()[0] == "SUCCEEDED"
    first, last = db.execute("SELECT extract(epoch FROM min(at)), extract(epoch FROM max(at)) "
                             "FROM ray.job_event WHERE job_id = %s", (quick,)).fetchone()
    # the whole life of the quick job fits inside one hanging request to the slow cluster
    with fake.lock:
        hanging = [s for s in fake.spans if s[1] == "/api/jobs/" and s[2] < float(first)
                   and (s[3] is None or s[3] > float(last))]
    assert hanging, "the worker waited for the slow cluster before moving the other job"
    assert job_state(db, stuck) == "PENDING"


def test_a_worker_waiting_on_connections_that_hang_is_idle(db: psycopg.Connection, fake: FakeRay,
                                                           settings: Callable[[str, str], None]) -> None:
    """With its connections to Ray hanging in SYN-SENT (a dashboard whose
    accept queue is full drops the SYNs), the worker waits for them instead
    of running round after round: 60 jobs, 50 of them SUBMITTING (the
    starting cap, raised for the test), each with a check that cannot connect."""
    settings("pg_ray.max_starting_jobs", "50")
    group = register(db, fake)
    port = int(fake.url.rsplit(":", 1)[1])
    fake.stop()
    # the same port, never accepting, its one-place queue filled by the test
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", port))
    hole.listen(0)
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        jobs = [db.execute("SELECT ray.submit_job(%s, 'python x.py')", (group,)).fetchone()[0] for _ in range(60)]
        wait_for(lambda: sum(job_state(db, j) == "SUBMITTING" for j in jobs) == min(len(jobs), 50),
                 "the jobs to be SUBMITTING")
        with connect() as other:
            before = worker_status(other)["rounds"]
            # a window shorter than the HTTP timeout: every request hangs throughout
            other.execute("SELECT pg_sleep(3)")
            after = worker_status(other)["rounds"]
        # a few a second may be other groups' work (earlier tests' groups being
        # polled or dropped); a worker woken by hanging connections ran ~70
        assert after - before <= 30, f"{after - before} rounds while waiting on the network"
        db.execute("SELECT ray.stop_job(j) FROM unnest(%s::bigint[]) j", (jobs,))
    finally:
        for filler in fillers:
            filler.close()
        hole.close()
