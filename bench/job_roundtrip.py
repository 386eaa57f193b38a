#!/usr/bin/env python3
"""Job round trip: SQL submit -> terminal state, against what a Ray user would
do instead.

Three ways to run the same trivial job on the same Ray head, alternated
(A B C A B C ...) after a warm-up, so that the noise of a shared machine
falls on all three alike:

  pg_ray    SELECT ray.submit_job(...); SELECT ray.wait_job(...)
  ray_cli   ray job submit --address ... -- <entrypoint>   (waits, tails the log)
  rest      POST /api/jobs/, then GET /api/jobs/{id} every 100 ms until it ends

For pg_ray it also measures status propagation: from Ray's end_time of the
run to the moment the job's row turned terminal (its job_event).

Needs the test cluster (scripts/test-cluster) and a Ray head
(scripts/ray-test-head) running; scripts/bench starts both.  Writes CSV and
Markdown into bench/results/ (or --out).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg

from common import arguments, connect, machine, read_env, summary, write_csv

ENTRYPOINT = "python -c \"print('hi')\""



def rest(url: str, token: str, method: str, path: str, body: object = None) -> object:
    request = urllib.request.Request(url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def run_pg_ray(db: psycopg.Connection, url: str, token: str) -> tuple[float, float]:
    start = time.perf_counter()
    job = db.execute("SELECT ray.submit_job('bench', %s)", (ENTRYPOINT,)).fetchone()[0]
    state = db.execute("SELECT ray.wait_job(%s, '5 minutes')", (job,)).fetchone()[0]
    elapsed = time.perf_counter() - start
    assert state == "SUCCEEDED", state
    sid, seen_at = db.execute(
        "SELECT j.ray_submission_id, extract(epoch FROM e.at) FROM ray.job j JOIN ray.job_event e USING (job_id) "
        "WHERE j.job_id = %s AND e.to_state = 'SUCCEEDED'", (job,)).fetchone()
    ray_end = rest(url, token, "GET", f"/api/jobs/{sid}")["end_time"] / 1000.0
    return elapsed, float(seen_at) - ray_end


def run_ray_cli(url: str, token: str, venv: Path) -> float:
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token,
               PATH=f"{venv}/bin:{os.environ['PATH']}")
    start = time.perf_counter()
    subprocess.run([str(venv / "bin/ray"), "job", "submit", "--address", url, "--", "python", "-c",
                    "print('hi')"], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def run_rest(url: str, token: str) -> float:
    sid = f"bench-{uuid.uuid4().hex[:12]}"
    start = time.perf_counter()
    rest(url, token, "POST", "/api/jobs/", {"entrypoint": ENTRYPOINT, "submission_id": sid})
    while rest(url, token, "GET", f"/api/jobs/{sid}")["status"] not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(0.1)
    return time.perf_counter() - start



def main() -> None:
    args, repeat = arguments(__doc__.splitlines()[0], 7)

    ray_env = read_env(Path(os.environ.get("PG_RAY_RAY_DIR", "/tmp/pgray_ray")) / "env")
    url, token = ray_env["RAY_TEST_URL"], ray_env["RAY_TEST_TOKEN"]
    venv = Path(os.environ.get("PG_RAY_VENV", "/opt/pg_ray/venv"))

    db = connect()
    if not db.execute("SELECT EXISTS (SELECT FROM ray.resource_groups WHERE name = 'bench')").fetchone()[0]:
        db.execute("SELECT ray.register_cluster('bench', %s, %s)", (url, token))
    while db.execute("SELECT state FROM ray.resource_groups WHERE name = 'bench'").fetchone()[0] != "READY":
        time.sleep(0.1)

    # warm-up: runtime env, connections, caches
    run_pg_ray(db, url, token)
    run_ray_cli(url, token, venv)
    run_rest(url, token)

    rows = []
    for i in range(repeat):
        pg_s, lag = run_pg_ray(db, url, token)
        cli_s = run_ray_cli(url, token, venv)
        rest_s = run_rest(url, token)
        rows.append({"round": i + 1, "pg_ray_s": pg_s, "ray_cli_s": cli_s, "rest_poll_s": rest_s,
                     "pg_ray_over_cli": pg_s / cli_s, "pg_ray_over_rest": pg_s / rest_s,
                     "status_lag_s": lag})
        print(f"round {i + 1}: pg_ray {pg_s:.2f} s, ray CLI {cli_s:.2f} s, REST {rest_s:.2f} s, "
              f"status lag {lag:.3f} s", flush=True)

    ray_version = db.execute("SELECT ray_version FROM ray.resource_groups WHERE name = 'bench'").fetchone()[0]
    pg_version = db.execute("SHOW server_version").fetchone()[0]
    poll = (db.execute("SHOW pg_ray.poll_interval_min").fetchone()[0],
            db.execute("SHOW pg_ray.poll_interval").fetchone()[0])
    db.close()

    name = write_csv(args, "job_roundtrip", rows)
    col = {k: [r[k] for r in rows] for k in rows[0]}
    where = machine(pg_version, ray_version)
    (args.out / f"{name}.md").write_text(f"""# Job round trip

A trivial job (`{ENTRYPOINT}`) from submission to its terminal state, on one
Ray head, {repeat} rounds alternating the three ways after a warm-up.
Machine: {where}. pg_ray polls between {poll[0]} and {poll[1]}.

| way | min / median / max (s) |
| --- | --- |
| pg_ray: `ray.submit_job` + `ray.wait_job` | {summary(col['pg_ray_s'])} |
| `ray job submit` (CLI, waits) | {summary(col['ray_cli_s'])} |
| REST POST + GET every 100 ms | {summary(col['rest_poll_s'])} |

| ratio, pair by pair | min / median / max |
| --- | --- |
| pg_ray / CLI | {summary(col['pg_ray_over_cli'])} |
| pg_ray / REST polling | {summary(col['pg_ray_over_rest'])} |

Status propagation (Ray's end time of the run to the job's row turning
terminal in pg_ray): {summary(col['status_lag_s'])} s.

Raw numbers: `{name}.csv`. Rerun with `scripts/bench`.
""")
    print((args.out / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
