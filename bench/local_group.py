#!/usr/bin/env python3
"""Local resource groups: how fast a group comes up, and how fast its head
comes back after it is killed.

  create -> READY   SELECT ray.create_resource_group + ray.add_worker_group
                    (one CPU worker) until ray.resource_groups says READY;
                    against the same cluster started by hand, as a Ray user
                    would: `ray start --head --block` and `ray start
                    --address ... --block`, until the node state API lists
                    the worker ALIVE.  Alternated, pg_ray first.
  head death        SIGKILL to every process of the head's session, until
                    GET /api/jobs/ answers 200 again (polled every 20 ms,
                    counted only after a failure proved the old head gone);
                    for a group without HA and one with HA (Redis-backed
                    GCS), against the 5 seconds the managed service promises.

Needs the test cluster (scripts/test-cluster); scripts/bench starts it.
Writes CSV and Markdown into bench/results/ (or --out).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from common import arguments, connect, machine, summary, wait_until, write_csv

VENV = Path(os.environ.get("PG_RAY_VENV", "/opt/pg_ray/venv"))
OPTIONS = {"object_store_memory_mb": 100}
MANAGED_SERVICE_PROMISE_S = 5.0



def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
        return 0, b""


def group_state(db: psycopg.Connection, name: str) -> str | None:
    row = db.execute("SELECT state FROM ray.resource_groups WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def drop(db: psycopg.Connection, name: str) -> None:
    db.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
               "WHERE name = %s AND delete_requested_at IS NULL", (name,))
    wait_until(lambda: group_state(db, name) is None, f"{name} to be dropped", every=0.1)


def create(db: psycopg.Connection, name: str, options: dict) -> float:
    start = time.perf_counter()
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)", (name, json.dumps(options)))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 1)", (name,))
    wait_until(lambda: group_state(db, name) == "READY", f"{name} to be READY")
    return time.perf_counter() - start


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def by_hand() -> float:
    """The same cluster started the way a Ray user would, with its own ports and token."""
    top = Path("/tmp/pgrh")
    shutil.rmtree(top, ignore_errors=True)
    token = secrets.token_hex(32)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0",
               RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0", PATH=f"{VENV}/bin:{os.environ['PATH']}")
    head_ports = free_ports(11)
    worker_ports = free_ports(8)
    gcs, dash = head_ports[0], head_ports[1]
    common = ["--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
              "--object-store-memory=104857600"]
    head_cmd = [str(VENV / "bin/ray"), "start", "--head", f"--port={gcs}", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dash}", f"--ray-client-server-port={head_ports[2]}",
                f"--node-manager-port={head_ports[3]}", f"--object-manager-port={head_ports[4]}",
                f"--metrics-export-port={head_ports[5]}", f"--dashboard-agent-listen-port={head_ports[6]}",
                f"--dashboard-agent-grpc-port={head_ports[7]}", f"--runtime-env-agent-port={head_ports[8]}",
                "--num-cpus=0", "--num-gpus=0", f"--temp-dir={top}/h"] + common
    worker_cmd = [str(VENV / "bin/ray"), "start", f"--address=127.0.0.1:{gcs}",
                  f"--node-manager-port={worker_ports[0]}", f"--object-manager-port={worker_ports[1]}",
                  f"--metrics-export-port={worker_ports[2]}", f"--dashboard-agent-listen-port={worker_ports[3]}",
                  f"--dashboard-agent-grpc-port={worker_ports[4]}", f"--runtime-env-agent-port={worker_ports[5]}",
                  "--num-cpus=1", "--memory=4294967296", f"--temp-dir={top}/w"] + common
    head_env = dict(env, DASHBOARD_METRIC_PORT=str(head_ports[9]), AUTOSCALER_METRIC_PORT=str(head_ports[10]))
    start = time.perf_counter()
    head = subprocess.Popen(head_cmd, env=head_env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{dash}"
    wait_until(lambda: get(url + "/api/version", token)[0] == 200, "the hand-started head")
    worker = subprocess.Popen(worker_cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

    def worker_alive() -> bool:
        status, body = get(url + "/api/v0/nodes?detail=1", token)
        if status != 200:
            return False
        nodes = json.loads(body)["data"]["result"]["result"]
        return any(not n["is_head_node"] and n["state"] == "ALIVE" for n in nodes)
    wait_until(worker_alive, "the hand-started worker")
    elapsed = time.perf_counter() - start
    for process in (worker, head):
        os.killpg(process.pid, signal.SIGTERM)
    for process in (worker, head):
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    time.sleep(1)  # the session's other processes exit with their raylet
    for process in (worker, head):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(top, ignore_errors=True)
    return elapsed


def kill_head(db: psycopg.Connection, name: str) -> float:
    """SIGKILL the head's whole session; seconds until its Jobs API answers again."""
    url = db.execute("SELECT dashboard_url FROM ray.resource_groups WHERE name = %s", (name,)).fetchone()[0]
    token = db.execute("SELECT token FROM ray.resource_group_secret WHERE resource_group = %s",
                       (name,)).fetchone()[0]
    pid = db.execute("SELECT pid FROM ray.nodes WHERE resource_group = %s AND kind = 'head'",
                     (name,)).fetchone()[0]
    assert get(url + "/api/jobs/", token)[0] == 200
    start = time.perf_counter()
    for process in Path("/proc").iterdir():
        if process.name.isdigit():
            try:
                if os.getsid(int(process.name)) == pid:
                    os.kill(int(process.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    wait_until(lambda: get(url + "/api/jobs/", token)[0] != 200, "the old head to be gone", every=0.005)
    wait_until(lambda: get(url + "/api/jobs/", token)[0] == 200, "the Jobs API to answer again")
    elapsed = time.perf_counter() - start
    wait_until(lambda: group_state(db, name) == "READY", f"{name} to be READY again", every=0.1)
    return elapsed



def main() -> None:
    args, repeat = arguments(__doc__.splitlines()[0], 5)

    db = connect()
    local_nodes = db.execute("SHOW pg_ray.local_nodes").fetchone()[0]
    db.execute("ALTER SYSTEM SET pg_ray.local_nodes = on")
    db.execute("SELECT pg_reload_conf()")
    wait_until(lambda: connect().execute("SHOW pg_ray.local_nodes").fetchone()[0] == "on",
               "pg_ray.local_nodes to be on")
    rows = []
    try:
        # warm-up: the file cache of Ray's Python
        drop(db, "bench-local")
        create(db, "bench-local", OPTIONS)
        drop(db, "bench-local")
        for i in range(repeat):
            pg_ray_s = create(db, "bench-local", OPTIONS)
            drop(db, "bench-local")
            hand_s = by_hand()
            rows.append({"kind": "create_to_ready", "round": i + 1, "pg_ray_s": pg_ray_s, "by_hand_s": hand_s,
                         "ratio": pg_ray_s / hand_s})
            print(f"create->READY round {i + 1}: pg_ray {pg_ray_s:.2f} s, by hand {hand_s:.2f} s", flush=True)
        for kind, options in (("head_death_no_ha", OPTIONS), ("head_death_ha", dict(OPTIONS, ha=True))):
            create(db, "bench-local", options)
            for i in range(repeat):
                seconds = kill_head(db, "bench-local")
                rows.append({"kind": kind, "round": i + 1, "pg_ray_s": seconds, "by_hand_s": "",
                             "ratio": seconds / MANAGED_SERVICE_PROMISE_S})
                print(f"{kind} round {i + 1}: Jobs API back after {seconds:.2f} s", flush=True)
            drop(db, "bench-local")
        ray_version = subprocess.run([str(VENV / "bin/ray"), "--version"], capture_output=True,
                                     text=True).stdout.split()[-1]
        pg_version = db.execute("SHOW server_version").fetchone()[0]
    finally:
        drop(db, "bench-local")
        db.execute(f"ALTER SYSTEM SET pg_ray.local_nodes = '{local_nodes}'")
        db.execute("SELECT pg_reload_conf()")
        db.close()

    name = write_csv(args, "local_group", rows)

    def column(kind: str, key: str) -> list[float]:
        return [float(r[key]) for r in rows if r["kind"] == kind]
    where = machine(pg_version, ray_version)
    (args.out / f"{name}.md").write_text(f"""# Local resource groups: start and head recovery

{repeat} rounds each after a warm-up, on {where}.
Object stores of 100 MB; one `small` CPU worker (1 CPU).

## Group created -> READY

From `ray.create_resource_group` + `ray.add_worker_group` to `READY` in
`ray.resource_groups` (head answering, its worker ALIVE), against the same
two nodes started by hand with `ray start --block` (head until
`/api/version` answers, then the worker until the node state API lists it
ALIVE). Alternated, pg_ray first.

| way | min / median / max (s) |
| --- | --- |
| pg_ray | {summary(column('create_to_ready', 'pg_ray_s'))} |
| by hand | {summary(column('create_to_ready', 'by_hand_s'))} |
| pg_ray / by hand, pair by pair | {summary(column('create_to_ready', 'ratio'))} |

## Head killed -> Jobs API answers again

SIGKILL to every process of the head's session, then `GET /api/jobs/` every
20 ms until it answers 200 (timed from the kill, counted once a failed
request proved the old head gone). The worker notices the dead head within
its watch interval, clears what the session left and starts the head again
on the same ports.

| group | min / median / max (s) | median / the managed service's 5 s |
| --- | --- | --- |
| without HA (workers restart with the head) | {summary(column('head_death_no_ha', 'pg_ray_s'))} | {statistics.median(column('head_death_no_ha', 'ratio')):.2f} |
| with HA (Redis-backed GCS, workers stay) | {summary(column('head_death_ha', 'pg_ray_s'))} | {statistics.median(column('head_death_ha', 'ratio')):.2f} |

Raw numbers: `{name}.csv`. Rerun with `scripts/bench`.
""")
    print((args.out / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
