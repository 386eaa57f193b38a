#!/usr/bin/env python3
"""Admission: a flood from one role and a few jobs from two others, on a
group smaller than the flood, through pg_ray and straight to Ray.

  pg_ray    role A queues --flood short jobs (`true`) in one statement;
            --late-after seconds later roles B and C queue --late jobs
            each.  pg_ray admits what fits (docs/sql.md, "Admission").
  Ray       the same jobs POSTed to the same group's Jobs API (what
            `ray job submit --no-wait` sends: the CLI itself takes ~8 s a
            call here, which would pace the flood for Ray), A's at once,
            B's and C's --late-after seconds later.

  cap sweep jobs that ask for no CPU (so that the group's capacity does not
            bind, and every driver runs on the head) through pg_ray with
            pg_ray.max_starting_jobs at each of --caps: how fast they get
            through and how many Ray could not start, to choose the default.

The group: a local group whose head runs no tasks and one worker group of
1 to 2 `small` workers (1 CPU each).  Reported for each way: jobs that
failed, each role's queue wait (submission to the run's start: pg_ray's
first SUBMITTING, Ray's first RUNNING seen in a 0.25 s poll) p50 / p95,
and the makespan (first submission to the last job's end).

Needs the test cluster (scripts/test-cluster); scripts/bench starts it.
Writes CSV and Markdown into bench/results/ (or --out).
"""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

import psycopg

from common import arguments, connect, machine, wait_until, write_csv

GROUP = "bench-admission"
ROLES = ("bench_flood", "bench_late_b", "bench_late_c")
VENV = Path("/opt/pg_ray/venv")


def rest(url: str, token: str, method: str, path: str, body: object = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def group_state(db: psycopg.Connection) -> str | None:
    row = db.execute("SELECT state FROM ray.resource_groups WHERE name = %s", (GROUP,)).fetchone()
    return row[0] if row else None


def run_pg_ray(db: psycopg.Connection, flood: int, late: int, late_after: float) -> dict:
    """The flood and the late jobs through pg_ray; every job's role, queue wait and end."""
    start = time.time()
    db.execute(f"SET ROLE {ROLES[0]}")
    db.execute("SELECT count(ray.submit_job(%s, 'true')) FROM generate_series(1, %s)", (GROUP, flood))
    db.execute("RESET ROLE")
    time.sleep(late_after)
    for role in ROLES[1:]:
        db.execute(f"SET ROLE {role}")
        db.execute("SELECT count(ray.submit_job(%s, 'true')) FROM generate_series(1, %s)", (GROUP, late))
        db.execute("RESET ROLE")
    wait_until(lambda: db.execute("SELECT count(*) = 0 FROM ray.job WHERE resource_group = %s "
                                  "AND state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED')", (GROUP,)).fetchone()[0],
               "every job to end", timeout=3600, every=0.5)
    rows = db.execute("""
        SELECT j.owner, j.state, j.ray_requeues,
               extract(epoch FROM (SELECT min(e.at) FROM ray.job_event e
                                   WHERE e.job_id = j.job_id AND e.to_state = 'SUBMITTING') - j.submitted_at),
               extract(epoch FROM j.finished_at), extract(epoch FROM j.submitted_at)
        FROM ray.job j WHERE j.resource_group = %s""", (GROUP,)).fetchall()
    return {"jobs": [{"role": r[0], "state": r[1], "requeues": r[2], "wait_s": float(r[3] or 0),
                      "end": float(r[4])} for r in rows],
            "start": min(float(r[5]) for r in rows)}


def run_ray(url: str, token: str, flood: int, late: int, late_after: float) -> dict:
    """The same jobs POSTed straight to the group's Jobs API."""
    tag = secrets.token_hex(4)
    posted: dict[str, tuple[str, float]] = {}
    started: dict[str, float] = {}
    start = time.time()

    def post(role: str, n: int) -> None:
        for i in range(n):
            sid = f"bench-{tag}-{role}-{i}"
            posted[sid] = (role, time.time())
            rest(url, token, "POST", "/api/jobs/", {"entrypoint": "true", "submission_id": sid})

    def look() -> dict[str, dict]:
        now = time.time()
        runs = {r["submission_id"]: r for r in rest(url, token, "GET", "/api/jobs/")
                if (r.get("submission_id") or "").startswith(f"bench-{tag}-")}
        for sid, run in runs.items():
            if run["status"] != "PENDING" and sid not in started:
                started[sid] = now
        return runs

    post(ROLES[0], flood)
    late_at = time.time() + late_after
    while time.time() < late_at:
        look()
        time.sleep(0.25)
    for role in ROLES[1:]:
        post(role, late)

    def finished() -> dict[str, dict] | None:
        runs = look()
        done = len(runs) == len(posted) and all(r["status"] in ("SUCCEEDED", "FAILED", "STOPPED")
                                                for r in runs.values())
        return runs if done else None

    runs = wait_until(finished, "every run to end", timeout=3600, every=0.25)
    return {"jobs": [{"role": posted[sid][0], "state": run["status"], "error_type": run.get("error_type"),
                      "wait_s": started.get(sid, time.time()) - posted[sid][1],
                      "end": (run.get("end_time") or 0) / 1000.0} for sid, run in runs.items()],
            "start": start}


def set_starting_cap(db: psycopg.Connection, cap: str | None) -> None:
    if cap is None:
        db.execute("ALTER SYSTEM RESET pg_ray.max_starting_jobs")
    else:
        db.execute(f"ALTER SYSTEM SET pg_ray.max_starting_jobs = {int(cap)}")
    db.execute("SELECT pg_reload_conf()")
    want = cap or "4"
    wait_until(lambda: connect().execute("SHOW pg_ray.max_starting_jobs").fetchone()[0] == want,
               f"pg_ray.max_starting_jobs to be {want}")


def run_cap(db: psycopg.Connection, cap: int, jobs: int) -> dict:
    """jobs drivers that ask for no CPU, through pg_ray with the starting cap at cap."""
    set_starting_cap(db, str(cap))
    first = db.execute("SELECT coalesce(max(job_id), 0) FROM ray.job").fetchone()[0]
    start = time.time()
    db.execute("SELECT count(ray.submit_job(%s, 'true', entrypoint_num_cpus => 0)) FROM generate_series(1, %s)",
               (GROUP, jobs))
    wait_until(lambda: db.execute("SELECT count(*) = 0 FROM ray.job WHERE resource_group = %s AND job_id > %s "
                                  "AND state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED')", (GROUP, first)).fetchone()[0],
               "every job to end", timeout=3600, every=0.5)
    succeeded, failed, requeues, end = db.execute(
        "SELECT count(*) FILTER (WHERE state = 'SUCCEEDED'), count(*) FILTER (WHERE state = 'FAILED'), "
        "sum(ray_requeues), extract(epoch FROM max(finished_at)) FROM ray.job WHERE resource_group = %s AND job_id > %s",
        (GROUP, first)).fetchone()
    seconds = float(end) - start
    return {"cap": cap, "jobs": jobs, "succeeded": succeeded, "failed": failed, "ray_requeues": int(requeues or 0),
            "seconds": round(seconds, 2), "jobs_per_s": round(jobs / seconds, 2)}


def summarise(way: str, result: dict) -> dict:
    jobs = result["jobs"]
    row = {"way": way, "jobs": len(jobs),
           "succeeded": sum(j["state"] == "SUCCEEDED" for j in jobs),
           "failed": sum(j["state"] == "FAILED" for j in jobs),
           "ray_requeues": sum(j.get("requeues", 0) for j in jobs),
           "makespan_s": round(max(j["end"] for j in jobs) - result["start"], 2)}
    errors = sorted({j.get("error_type") for j in jobs if j["state"] == "FAILED" and j.get("error_type")})
    row["failure_types"] = " ".join(errors)
    for role in ROLES:
        waits = [j["wait_s"] for j in jobs if j["role"] == role]
        row[f"{role}_wait_p50_s"] = round(statistics.median(waits), 2)
        row[f"{role}_wait_p95_s"] = round(percentile(waits, 95), 2)
    return row


def main() -> None:
    def more(parser):
        parser.add_argument("--flood", type=int, default=300, help="jobs of role A")
        parser.add_argument("--late", type=int, default=10, help="jobs of roles B and C each")
        parser.add_argument("--late-after", type=float, default=5.0, help="seconds between the flood and B, C")
        parser.add_argument("--caps", default="1,2,4,8,16", help="pg_ray.max_starting_jobs values of the sweep")
        parser.add_argument("--cap-jobs", type=int, default=40, help="jobs of each step of the sweep")
    args, _ = arguments(__doc__.splitlines()[0], 1, more)
    if args.smoke:
        args.flood, args.late, args.late_after, args.caps, args.cap_jobs = 12, 2, 1.0, "4", 4

    db = connect()
    local_nodes = db.execute("SHOW pg_ray.local_nodes").fetchone()[0]
    db.execute("ALTER SYSTEM SET pg_ray.local_nodes = on")
    db.execute("SELECT pg_reload_conf()")
    wait_until(lambda: connect().execute("SHOW pg_ray.local_nodes").fetchone()[0] == "on",
               "pg_ray.local_nodes to be on")
    for role in ROLES:
        db.execute(f"DROP ROLE IF EXISTS {role}")
        db.execute(f"CREATE ROLE {role} IN ROLE ray_user")
    load_before = open("/proc/loadavg").read().split()[:3]
    try:
        db.execute("SELECT ray.create_resource_group(%s, 'small', options => '{\"object_store_memory_mb\": 100}')",
                   (GROUP,))
        db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 2)", (GROUP,))
        db.execute("SELECT ray.grant_usage(%s, 'public')", (GROUP,))
        wait_until(lambda: group_state(db) == "READY", "the group to be READY", timeout=600, every=0.5)
        url, token = db.execute("SELECT g.dashboard_url, s.token FROM ray.resource_group g "
                                "JOIN ray.resource_group_secret s ON s.resource_group = g.name WHERE g.name = %s",
                                (GROUP,)).fetchone()
        starting = db.execute("SHOW pg_ray.max_starting_jobs").fetchone()[0]
        pg_ray = summarise("pg_ray", run_pg_ray(db, args.flood, args.late, args.late_after))
        print(pg_ray, flush=True)
        ray = summarise("Ray Jobs API", run_ray(url, token, args.flood, args.late, args.late_after))
        print(ray, flush=True)
        sweep = []
        for cap in (int(c) for c in args.caps.split(",")):
            sweep.append(run_cap(db, cap, args.cap_jobs))
            print(sweep[-1], flush=True)
        ray_version = subprocess.run([str(VENV / "bin/ray"), "--version"], capture_output=True,
                                     text=True).stdout.split()[-1]
        pg_version = db.execute("SHOW server_version").fetchone()[0]
    finally:
        db.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
                   "WHERE name = %s AND delete_requested_at IS NULL", (GROUP,))
        wait_until(lambda: group_state(db) is None, "the group to be dropped", timeout=300, every=0.5)
        db.execute("DELETE FROM ray.job WHERE resource_group = %s", (GROUP,))
        set_starting_cap(db, None)
        for role in ROLES:
            db.execute(f"DROP ROLE IF EXISTS {role}")
        db.execute(f"ALTER SYSTEM SET pg_ray.local_nodes = '{local_nodes}'")
        db.execute("SELECT pg_reload_conf()")
        db.close()
    load_after = open("/proc/loadavg").read().split()[:3]

    rows = [pg_ray, ray]
    name = write_csv(args, "admission", rows)
    write_csv(args, "admission_caps", sweep)
    sweep_table = "\n".join(f"| {r['cap']} | {r['jobs']} | {r['succeeded']} | {r['failed']} | {r['ray_requeues']} | "
                            f"{r['seconds']:.1f} | {r['jobs_per_s']:.2f} |" for r in sweep)
    table = "\n".join(
        f"| {r['way']} | {r['jobs']} | {r['succeeded']} | {r['failed']}"
        f"{' (' + r['failure_types'] + ')' if r['failure_types'] else ''} | {r['ray_requeues']} | "
        + " | ".join(f"{r[f'{role}_wait_p50_s']:.2f} / {r[f'{role}_wait_p95_s']:.2f}" for role in ROLES)
        + f" | {r['makespan_s']:.1f} |" for r in rows)
    (args.out / f"{name}.md").write_text(f"""# Admission: a flood and two late roles on one group

Machine: {machine(pg_version, ray_version)}.
Load average (1, 5, 15 min) before: {', '.join(load_before)}; after: {', '.join(load_after)}.

A local group whose head runs no tasks and one worker group of 1 to 2 `small`
workers (1 CPU each). Role A queues {args.flood} jobs (`true`) at once; {args.late_after:g} s
later roles B and C queue {args.late} each. Through pg_ray (pg_ray.max_starting_jobs = {starting};
each job asks for one CPU, so 2 run at once), then the same jobs POSTed
straight to the group's Jobs API, as `ray job submit --no-wait` does (the CLI
itself takes about 8 s a call on this machine, which would pace the flood).
Queue wait: from submission to the run's start (pg_ray: the job's first
`SUBMITTING`; Ray: its first status other than PENDING, polled every 0.25 s).
A job Ray failed counts as waiting until it failed.
Makespan: from the first submission to the last job's end.

| way | jobs | succeeded | failed | requeued by pg_ray (Ray could not start them) | A wait p50 / p95 (s) | B wait p50 / p95 (s) | C wait p50 / p95 (s) | makespan (s) |
| --- | ---: | ---: | --- | ---: | --- | --- | --- | ---: |
{table}

## The starting cap

{args.cap_jobs} jobs (`true`) that ask for no CPU, so that only pg_ray.max_starting_jobs holds them
back and every driver runs on the head, through pg_ray at each cap; from their submission to the
last one's end.

| pg_ray.max_starting_jobs | jobs | succeeded | failed | requeued (Ray could not start them) | seconds | jobs/s |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{sweep_table}

Run with `scripts/bench` (all benchmarks) or `bench/admission.py [--flood N --late N --late-after S --caps 1,2,4]`;
`--smoke` for a small run that only checks it works.
""")


if __name__ == "__main__":
    main()
