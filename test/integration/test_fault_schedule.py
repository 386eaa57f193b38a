"""Faults on a schedule at the HTTP boundary: jobs on the real Ray head,
through a proxy (test/fault_server.py's FaultProxy) that spoils every POST
of a submission and half of the other requests, in turn each way a dashboard or what stands before it can:
a reset before the request reaches Ray, a 5xx before or after Ray did the
work, an answer lost after the work, an HTML page, truncated JSON, a body
that is not JSON, a 20 MB body, an answer slower than pg_ray.http_timeout.

Then the invariants of the crash matrix: every job reaches its true final
state (a script that exits 0 SUCCEEDED, one that exits 3 FAILED, a stopped
one STOPPED) in one attempt; Ray holds exactly one submission per job, in
the same state; no submission was sent to Ray twice; the log kept is Ray's
log, not a spoiled answer.  The faults injected, by endpoint and kind, and
the jobs' outcomes are written to build/fault_schedule.md."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import pytest

from conftest import ROOT, RayHead, wait_for, wait_for_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fault_server import KINDS, Fault, FaultProxy, endpoint  # noqa: E402

GROUP = "it-proxy"
HTTP_TIMEOUT_S = 2
WAVES = 3
# per wave: what each job does and the state it must end in (a wave at a
# time: a two-core Ray head given a dozen drivers at once fails some of them
# itself, which is not what this test is about)
WAVE = [("succeed", "SUCCEEDED"), ("succeed", "SUCCEEDED"), ("fail", "FAILED"), ("stop", "STOPPED")]
SCRIPTS = {
    "succeed": "import sys; print('fault-schedule', {n}, flush=True)",
    "fail": "import sys; print('fault-schedule', {n}, flush=True); sys.exit(3)",
    "stop": "import time; print('fault-schedule', {n}, flush=True); time.sleep(120)",
}


class Schedule:
    """Spoils a request of an endpoint with the probability rates gives it
    (default otherwise); each endpoint takes the kinds of fault in turn, so
    that every endpoint used often meets every kind."""

    def __init__(self, default: float, rates: dict[str, float], seed: int) -> None:
        self.default = default
        self.rates = rates
        self.random = random.Random(seed)
        self.turn: Counter[str] = Counter()

    def __call__(self, method: str, path: str) -> Fault | None:
        key = endpoint(method, path)
        if self.random.random() >= self.rates.get(key, self.default):
            return None
        turn = self.turn[key]
        self.turn[key] += 1
        return Fault(KINDS[turn % len(KINDS)], status=(500, 502, 503)[turn % 3], delay=HTTP_TIMEOUT_S + 1.0)


@pytest.fixture
def proxy(db: psycopg.Connection, ray_head: RayHead,
          settings: Callable[[str, str], None]) -> Iterator[FaultProxy]:
    settings("pg_ray.http_timeout", f"{HTTP_TIMEOUT_S}s")
    server = FaultProxy(upstream=ray_head.url).start()
    db.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
               "WHERE name = %s AND delete_requested_at IS NULL", (GROUP,))
    db.execute("SELECT ray.register_cluster(%s, %s, %s)", (GROUP, server.url, ray_head.token))
    wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = %s",
                                (GROUP,)).fetchone()[0], "the proxied group to be READY")
    yield server
    server.heal()
    db.execute("SELECT ray.drop_resource_group(%s, force => true)", (GROUP,))
    server.stop()


def test_jobs_keep_their_guarantees_through_faults_on_a_schedule(
        db: psycopg.Connection, ray_head: RayHead, proxy: FaultProxy) -> None:
    # every POST of a submission is spoiled: one that never reached Ray is
    # made again (and spoiled again), one that Ray took must be adopted
    proxy.schedule = Schedule(default=0.5, rates={"POST /api/jobs/": 1.0}, seed=20261124)
    outcomes: list[tuple[int, str, str, str]] = []
    n = 0
    for _ in range(WAVES):
        wave = []
        for what, expected in WAVE:
            n += 1
            entrypoint = f"python -c \"{SCRIPTS[what].format(n=n)}\""
            job = db.execute("SELECT ray.submit_job(%s, %s)", (GROUP, entrypoint)).fetchone()[0]
            wave.append((job, n, what, expected))
        for job, _, what, _ in wave:
            if what == "stop":
                wait_for_state(db, job, {"RUNNING"}, 180)
                db.execute("SELECT ray.stop_job(%s)", (job,))
        for job, number, what, expected in wave:
            final = db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job,)).fetchone()[0]
            outcomes.append((job, what, expected, final))
    proxy.heal()
    table = report(proxy, outcomes)

    for job, what, expected, final in outcomes:
        assert final == expected, (job, what, final, table)
        assert db.execute("SELECT attempts FROM ray.job WHERE job_id = %s", (job,)).fetchone()[0] == 1
        runs = ray_head.submissions_of(job)
        assert len(runs) == 1, (job, runs)
        assert runs[0]["status"] == expected, (job, runs[0])
        sid = runs[0]["submission_id"]
        # sent to Ray once, and taken
        assert [f for f in proxy.forwarded if f[2] == sid] == [("POST /api/jobs/", 200, sid)], sid
        # the log kept is Ray's own, whole
        ray_log = ray_head.rest("GET", f"/api/jobs/{sid}/logs")["logs"]
        assert "fault-schedule" in ray_log
        wait_for(lambda: db.execute("SELECT log FROM ray.job_log WHERE job_id = %s", (job,)).fetchone()
                 == (ray_log,), f"job {job}'s log to be Ray's")
    # no submission that belongs to no job
    posted = [f[2] for f in proxy.forwarded if f[0] == "POST /api/jobs/"]
    assert len(posted) == len(set(posted)) == len(outcomes)
    # the schedule reached the endpoints a job's life uses most with every kind
    injected = Counter(proxy.injected)
    for key in ("POST /api/jobs/", "GET /api/jobs/"):
        missing = [kind for kind in KINDS if not injected[(key, kind)]]
        assert not missing, (key, missing, table)


def report(proxy: FaultProxy, outcomes: list[tuple[int, str, str, str]]) -> str:
    """The faults injected by endpoint and kind, and each job's outcome, as
    Markdown in build/fault_schedule.md and on stdout."""
    injected = Counter(proxy.injected)
    asked = Counter(endpoint(m, p) for m, p, _ in proxy.requests)
    endpoints = sorted(asked)
    lines = ["| endpoint | requests | " + " | ".join(KINDS) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in KINDS) + " |"]
    lines += [f"| {e} | {asked[e]} | " + " | ".join(str(injected[(e, k)]) for k in KINDS) + " |"
              for e in endpoints]
    lines += ["", "| job | script | expected | final state |", "| --- | --- | --- | --- |"]
    lines += [f"| {job} | {what} | {expected} | {final} |" for job, what, expected, final in outcomes]
    text = "\n".join(lines) + "\n"
    out = ROOT / "build" / "fault_schedule.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print("\n" + text)
    return text
