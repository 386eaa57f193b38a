#!/usr/bin/env python3
"""Load: many sessions submitting and stopping jobs at once while the worker
dispatches them, with every job accounted for exactly once.

pgbench runs two custom scripts as an ordinary ray_user, in many concurrent
sessions: nine times in ten `SELECT ray.submit_job(...)`, one time in ten a
submission followed at once by `SELECT ray.stop_job(...)` of that job.
Meanwhile the background worker submits the jobs to Ray, follows them and
records their ends.

Two targets:

  stand-in  the bulk (10,000 jobs from 50 sessions by default) against
            test/fault_server.py's Ray stand-in, which answers the Jobs API
            at once and moves each job through PENDING -> RUNNING ->
            SUCCEEDED on the timings a real Ray showed for the same job in
            this run (recorded behaviour): Ray on two cores cannot run
            10,000 drivers;
  real Ray  a few hundred jobs (`true`) against the real Ray head of
            scripts/ray-test-head.

For each it checks that every job is accounted for exactly once: as many
jobs as pgbench made, each in a final state (SUCCEEDED, or STOPPED when its
stop came first), each attempt submitted to Ray exactly once (one POST per
submission id, as many submissions as attempts), none for a job stopped
before it was submitted, and no submission Ray holds that no job explains.
It reports the submit latency percentiles (pgbench's per-transaction log),
the dispatch rate (jobs from QUEUED to Ray per second while the queue was
full) and the time from submission to Ray.

Needs the test cluster and a Ray head (scripts/bench starts both).  Writes
load.csv and load.md into bench/results/ (or --out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from common import ROOT, arguments, connect, machine, read_env, wait_until, write_csv

sys.path.insert(0, str(ROOT / "test"))
from fault_server import FakeRay  # noqa: E402

USER = "load_user"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def pgbench(pg: dict[str, str], group: str, clients: int, transactions: int, workdir: Path) -> dict[str, Any]:
    """Run the two scripts (submit @9, submit+stop @1) as USER; return the
    latencies (ms) of each script from pgbench's transaction log, and its tps."""
    submit = workdir / "submit.sql"
    submit.write_text(f"SELECT ray.submit_job('{group}', 'true');\n")
    submit_stop = workdir / "submit_stop.sql"
    submit_stop.write_text(f"SELECT ray.submit_job('{group}', 'true') AS job \\gset\n"
                           "SELECT ray.stop_job(:job);\n")
    for old in workdir.glob("pgbench_log*"):
        old.unlink()
    started = time.perf_counter()
    result = subprocess.run(
        ["pgbench", "-n", "-c", str(clients), "-j", str(min(clients, 4)), "-t", str(transactions),
         "-f", f"{submit}@9", "-f", f"{submit_stop}@1", "-l", "--log-prefix", str(workdir / "pgbench_log"),
         "-h", pg["PGHOST"], "-p", pg["PGPORT"], "-U", USER, "postgres"],
        capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{result.stdout}\n{result.stderr}")
    latencies: dict[int, list[float]] = {0: [], 1: []}
    for log in workdir.glob("pgbench_log*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            # client_id transaction_no time_us script_no time_epoch time_us
            latencies[int(fields[3])].append(int(fields[2]) / 1000.0)
    tps = next((float(line.split("=")[1].split()[0]) for line in result.stdout.splitlines()
                if line.startswith("tps =")), clients * transactions / elapsed)
    return {"submit_ms": latencies[0], "submit_stop_ms": latencies[1], "tps": tps, "seconds": elapsed}


def wait_all_final(db: psycopg.Connection, group: str, expected: int, timeout: float) -> float:
    """Wait until every job of the group is in a final state; the seconds it took."""
    started = time.perf_counter()

    def done() -> bool:
        total, final = db.execute("SELECT count(*), count(*) FILTER (WHERE state IN ('SUCCEEDED', 'FAILED', 'STOPPED'))"
                                  " FROM ray.job WHERE resource_group = %s", (group,)).fetchone()
        return total == expected and final == expected

    wait_until(done, f"all {expected} jobs of {group} to end", timeout=timeout, every=0.5)
    return time.perf_counter() - started


def account(db: psycopg.Connection, group: str, expected: int, submissions: dict[str, int],
            posts: dict[str, int]) -> dict[str, Any]:
    """Check that every job is accounted for exactly once; submissions: Ray's
    submission ids with the pg_ray job each names, posts: POSTs per id (None: unknown)."""
    jobs = {job_id: (state, attempts, sid, stop) for job_id, state, attempts, sid, stop in db.execute(
        "SELECT job_id, state, attempts, ray_submission_id, stop_requested_at IS NOT NULL"
        " FROM ray.job WHERE resource_group = %s", (group,)).fetchall()}
    problems: list[str] = []
    if len(jobs) != expected:
        problems.append(f"{len(jobs)} jobs, not {expected}")
    by_job: dict[int, list[str]] = {}
    for sid, job_id in submissions.items():
        by_job.setdefault(job_id, []).append(sid)
    for job_id, (state, attempts, sid, stop) in jobs.items():
        runs = by_job.pop(job_id, [])
        if state not in TERMINAL:
            problems.append(f"job {job_id} is {state}")
        elif state == "STOPPED" and len(runs) > attempts:
            problems.append(f"job {job_id} was stopped with {len(runs)} runs in Ray for {attempts} attempts")
        elif state != "STOPPED" and len(runs) != attempts:
            problems.append(f"job {job_id} {state.lower()} with {attempts} attempts and {len(runs)} runs in Ray")
        if not stop and state == "STOPPED":
            problems.append(f"job {job_id} was stopped without a stop")
    for job_id, runs in by_job.items():
        problems.append(f"Ray has {runs} for job {job_id}, which is not one of this run's")
    doubled = [sid for sid, n in posts.items() if n != 1]
    if doubled:
        problems.append(f"submission ids POSTed more than once: {doubled[:5]}")
    states = db.execute("SELECT state, count(*) FROM ray.job WHERE resource_group = %s GROUP BY 1 ORDER BY 1",
                        (group,)).fetchall()
    never = db.execute("SELECT count(*) FROM ray.job WHERE resource_group = %s AND attempts = 0", (group,)).fetchone()[0]
    if problems:
        raise AssertionError(f"{len(problems)} jobs not accounted for exactly once: {problems[:10]}")
    failures = db.execute("SELECT coalesce(error_type, 'none'), count(*) FROM ray.job WHERE resource_group = %s"
                          " AND state = 'FAILED' GROUP BY 1 ORDER BY 2 DESC", (group,)).fetchall()
    return {"states": dict(states), "stopped_before_ray": never, "runs": len(submissions),
            "failures": ", ".join(f"{n} {kind}" for kind, n in failures)}


def dispatch(db: psycopg.Connection, group: str) -> dict[str, float]:
    """Dispatch rate and the time from submission to Ray, from the jobs' events."""
    rows = db.execute(
        "SELECT extract(epoch FROM j.submitted_at), extract(epoch FROM min(e.at)) FROM ray.job j"
        " JOIN ray.job_event e ON e.job_id = j.job_id AND e.to_state = 'PENDING'"
        " WHERE j.resource_group = %s GROUP BY j.job_id", (group,)).fetchall()
    if not rows:
        return {"dispatched": 0, "rate": 0.0, "to_ray_p50": 0.0, "to_ray_p95": 0.0, "to_ray_p99": 0.0}
    to_ray = [float(pending) - float(submitted) for submitted, pending in rows]
    first = min(float(s) for s, _ in rows)
    last = max(float(p) for _, p in rows)
    return {"dispatched": len(rows), "rate": len(rows) / max(last - first, 1e-9),
            "to_ray_p50": percentile(to_ray, 50), "to_ray_p95": percentile(to_ray, 95),
            "to_ray_p99": percentile(to_ray, 99)}


def ray_timings(url: str, token: str, db: psycopg.Connection, group: str) -> list[tuple[float, str]]:
    """The stand-in's lifecycle, recorded from the real Ray's runs of this benchmark:
    median seconds from submission to RUNNING and to SUCCEEDED."""
    import json
    import urllib.request
    request = urllib.request.Request(url + "/api/jobs/", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        runs = json.loads(response.read())
    ours = {str(j) for (j,) in db.execute("SELECT job_id FROM ray.job WHERE resource_group = %s AND state = 'SUCCEEDED'",
                                          (group,)).fetchall()}
    submitted = dict(db.execute(
        "SELECT ray_submission_id, extract(epoch FROM min(e.at)) FROM ray.job j JOIN ray.job_event e USING (job_id)"
        " WHERE j.resource_group = %s AND e.to_state = 'PENDING' GROUP BY 1", (group,)).fetchall())
    to_running, to_end = [], []
    for run in runs:
        if (run.get("metadata") or {}).get("pg_ray_job_id") in ours and run["submission_id"] in submitted:
            t0 = float(submitted[run["submission_id"]])
            to_running.append(max(0.0, run["start_time"] / 1000 - t0))
            to_end.append(max(0.0, run["end_time"] / 1000 - t0))
    if not to_running:
        return [(0.5, "RUNNING"), (1.5, "SUCCEEDED")]
    return [(statistics.median(to_running), "RUNNING"), (statistics.median(to_end), "SUCCEEDED")]


def ray_submissions(url: str, token: str) -> dict[str, int]:
    """Every submission the real Ray holds that pg_ray made: id -> pg_ray job id."""
    import json
    import urllib.request
    request = urllib.request.Request(url + "/api/jobs/", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        runs = json.loads(response.read())
    return {r["submission_id"]: int(r["metadata"]["pg_ray_job_id"]) for r in runs
            if (r.get("metadata") or {}).get("pg_ray_job_id")}


def phase(db: psycopg.Connection, pg: dict[str, str], group: str, clients: int, transactions: int,
          workdir: Path, timeout: float) -> dict[str, Any]:
    """One pgbench run against a group, up to every job's end."""
    expected = clients * transactions
    bench = pgbench(pg, group, clients, transactions, workdir)
    drain = wait_all_final(db, group, expected, timeout)
    return {**bench, "drain_seconds": drain, **dispatch(db, group), "jobs": expected}


def main() -> None:
    def more(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--jobs", type=int, default=10000, help="jobs against the stand-in")
        parser.add_argument("--clients", type=int, default=50)
        parser.add_argument("--real-jobs", type=int, default=200, help="jobs against the real Ray head")
        parser.add_argument("--real-clients", type=int, default=10)

    args, _ = arguments(__doc__.splitlines()[0], 1, more)
    if args.smoke:
        args.jobs, args.clients, args.real_jobs, args.real_clients = 200, 10, 20, 4
    pg = read_env(Path(os.environ.get("PG_RAY_TEST_DIR", "/tmp/pg_ray_test")) / "env")
    ray = read_env(Path(os.environ.get("PG_RAY_RAY_DIR", "/tmp/pgray_ray")) / "env")
    db = connect()
    pg_version = db.execute("SHOW server_version").fetchone()[0]
    max_connections = int(db.execute("SHOW max_connections").fetchone()[0])
    if max_connections < args.clients + 10:
        raise SystemExit(f"max_connections is {max_connections}: {args.clients} clients need "
                         f"{args.clients + 10} (ALTER SYSTEM SET max_connections and restart)")

    for group in ("load-real", "load-fake"):
        db.execute("DELETE FROM ray.job WHERE resource_group = %s", (group,))
        db.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
                   "WHERE name = %s AND delete_requested_at IS NULL", (group,))
        wait_until(lambda: not db.execute("SELECT EXISTS (SELECT FROM ray.resource_group WHERE name = %s)",
                                          (group,)).fetchone()[0], f"{group} to go", timeout=120, every=0.2)
    db.execute(f"DROP ROLE IF EXISTS {USER}")
    db.execute(f"CREATE ROLE {USER} LOGIN IN ROLE ray_user")
    fake = FakeRay().start()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        with tempfile.TemporaryDirectory(prefix="pgray_load_") as tmp:
            workdir = Path(tmp)
            os.chmod(workdir, 0o777)

            # the real Ray first: its timings are the stand-in's behaviour
            db.execute("SELECT ray.register_cluster('load-real', %s, %s)", (ray["RAY_TEST_URL"], ray["RAY_TEST_TOKEN"]))
            db.execute(f"SELECT ray.grant_usage('load-real', '{USER}')")
            wait_until(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = 'load-real'"
                                          ).fetchone()[0], "load-real to be READY", timeout=120)
            real = phase(db, pg, "load-real", args.real_clients, args.real_jobs // args.real_clients, workdir,
                         timeout=1800)
            install = db.execute("SELECT id FROM ray.installation").fetchone()[0]
            ours = {sid: job for sid, job in ray_submissions(ray["RAY_TEST_URL"], ray["RAY_TEST_TOKEN"]).items()
                    if sid.startswith(f"pgray-{install}-")}
            real_ids = {j for (j,) in db.execute("SELECT job_id FROM ray.job WHERE resource_group = 'load-real'")}
            # this cluster's other jobs on the same head are not this run's
            real_accounting = account(db, "load-real", real["jobs"],
                                      {sid: job for sid, job in ours.items() if job in real_ids}, {})
            ray_version = db.execute("SELECT ray_version FROM ray.resource_group WHERE name = 'load-real'").fetchone()[0]
            fake.lifecycle = ray_timings(ray["RAY_TEST_URL"], ray["RAY_TEST_TOKEN"], db, "load-real")

            db.execute("SELECT ray.register_cluster('load-fake', %s)", (fake.url,))
            db.execute(f"SELECT ray.grant_usage('load-fake', '{USER}')")
            wait_until(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = 'load-fake'"
                                          ).fetchone()[0], "load-fake to be READY", timeout=120)
            bulk = phase(db, pg, "load-fake", args.clients, args.jobs // args.clients, workdir, timeout=3600)
            with fake.lock:
                fake_runs = {sid: int(j["metadata"]["pg_ray_job_id"]) for sid, j in fake.jobs.items()}
                posts = dict(fake.posts)
            bulk_accounting = account(db, "load-fake", bulk["jobs"], fake_runs, posts)
    finally:
        fake.stop()
    load_after = os.getloadavg()

    for name, result, accounting, clients in (("stand-in", bulk, bulk_accounting, args.clients),
                                              ("real Ray", real, real_accounting, args.real_clients)):
        rows.append({
            "target": name, "jobs": result["jobs"], "clients": clients,
            "tps": round(result["tps"], 1),
            "submit_p50_ms": round(percentile(result["submit_ms"], 50), 2),
            "submit_p95_ms": round(percentile(result["submit_ms"], 95), 2),
            "submit_p99_ms": round(percentile(result["submit_ms"], 99), 2),
            "submit_stop_p50_ms": round(percentile(result["submit_stop_ms"], 50), 2) if result["submit_stop_ms"] else "",
            "submit_stop_p99_ms": round(percentile(result["submit_stop_ms"], 99), 2) if result["submit_stop_ms"] else "",
            "dispatched": result["dispatched"], "dispatch_per_s": round(result["rate"], 1),
            "to_ray_p50_s": round(result["to_ray_p50"], 2), "to_ray_p95_s": round(result["to_ray_p95"], 2),
            "to_ray_p99_s": round(result["to_ray_p99"], 2),
            "drain_s": round(result["drain_seconds"], 1),
            "succeeded": accounting["states"].get("SUCCEEDED", 0), "stopped": accounting["states"].get("STOPPED", 0),
            "failed": accounting["states"].get("FAILED", 0), "failures": accounting["failures"],
            "stopped_before_ray": accounting["stopped_before_ray"], "ray_runs": accounting["runs"],
        })
    name = write_csv(args, "load", rows)
    lines = [
        "# Load: concurrent sessions submitting and stopping jobs",
        "",
        f"Machine: {machine(pg_version, ray_version)}.",
        f"Ran {started_at}; load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.2f}' for x in load_before)}; after: {', '.join(f'{x:.2f}' for x in load_after)}.",
        "",
        "pgbench, as an ordinary ray_user, in concurrent sessions: 9 in 10 transactions",
        "`SELECT ray.submit_job(group, 'true')`, 1 in 10 the same followed by",
        "`SELECT ray.stop_job(:job)`. The worker dispatches meanwhile. The stand-in",
        "(test/fault_server.py) moves each job to RUNNING and SUCCEEDED on the median",
        f"timings the real Ray showed in this run ({', '.join(f'{s} at {t:.2f} s' for t, s in fake.lifecycle)}",
        "after submission). Every job was checked to be accounted for exactly once:",
        "final, one submission per attempt (a stopped job: at most one), none for a",
        "job stopped before it reached Ray, no stray submission in Ray, no",
        "submission id POSTed twice (stand-in). A job Ray itself failed (below: the",
        "real head on two cores could not start every job's supervisor actor within",
        "its 60 s) is final too, with its one submission.",
        "",
        "| target | jobs | sessions | pgbench tps | submit p50 / p95 / p99 (ms) | submit+stop p50 / p99 (ms) "
        "| dispatched to Ray | dispatch rate (jobs/s) | submission to Ray p50 / p95 / p99 (s) "
        "| all final after pgbench (s) | succeeded | stopped (before Ray) | failed by Ray |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['target']} | {r['jobs']:,} | {r['clients']} | {r['tps']:,} "
                     f"| {r['submit_p50_ms']} / {r['submit_p95_ms']} / {r['submit_p99_ms']} "
                     f"| {r['submit_stop_p50_ms']} / {r['submit_stop_p99_ms']} | {r['dispatched']:,} "
                     f"| {r['dispatch_per_s']} | {r['to_ray_p50_s']} / {r['to_ray_p95_s']} / {r['to_ray_p99_s']} "
                     f"| {r['drain_s']} | {r['succeeded']:,} | {r['stopped']:,} ({r['stopped_before_ray']:,}) "
                     f"| {r['failed']:,}{' (' + r['failures'] + ')' if r['failures'] else ''} |")
    lines += ["", "Run with `scripts/bench` (all benchmarks) or `bench/load.py [--jobs N --clients C]`; "
              "`--smoke` for a small run that only checks it works.", ""]
    (args.out / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))

    for group in ("load-real", "load-fake"):
        db.execute("DELETE FROM ray.job WHERE resource_group = %s", (group,))
        db.execute("SELECT ray.drop_resource_group(%s, force => true)", (group,))
    db.execute(f"DROP OWNED BY {USER}")
    db.execute(f"DROP ROLE {USER}")


if __name__ == "__main__":
    main()
