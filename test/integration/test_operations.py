"""Operations on a real server: history retention purges in batches while users submit, and
the worker purges by itself; usage metering equals the lifetimes of real local nodes, measured
from their processes, across an immediate restart of PostgreSQL; a group's Ray Client address
takes a client of the pinned Ray (a virtualenv of its own) with the group's token, and no client
without it."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import connect, reload_settings, restart_server_immediately, wait_for
from test_local import wait_for_group_state

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def old_finished_jobs(db: psycopg.Connection, group: str, count: int, days: int = 40) -> list[int]:
    """count jobs on group that were stopped `days` days ago (each with its events)."""
    ids = [r[0] for r in db.execute(
        "SELECT ray.submit_job(%s, 'echo old') FROM generate_series(1, %s)", (group, count)).fetchall()]
    db.execute("SELECT count(ray.stop_job(id)) FROM unnest(%s::bigint[]) id", (ids,))
    db.execute("UPDATE ray.job SET finished_at = now() - make_interval(days => %s),"
               " submitted_at = now() - make_interval(days => %s) WHERE job_id = ANY(%s)", (days, days + 1, ids))
    return ids


def left(db: psycopg.Connection, ids: list[int]) -> int:
    return db.execute("SELECT count(*) FROM ray.job WHERE job_id = ANY(%s)", (ids,)).fetchone()[0]


@pytest.fixture
def catalog_group(db: psycopg.Connection) -> str:
    """A group with no nodes (the worker leaves local groups alone here): its jobs stay queued."""
    db.execute("SELECT ray.create_resource_group('it-purge')")
    yield "it-purge"
    db.execute("DELETE FROM ray.job WHERE resource_group = 'it-purge'")
    db.execute("DELETE FROM ray.resource_group WHERE name = 'it-purge'")


def test_purge_goes_in_batches_while_submissions_go_on(db: psycopg.Connection, catalog_group: str) -> None:
    old = old_finished_jobs(db, catalog_group, 3500)
    # a user's open transaction holds one old job: the purge passes it over, waits for nothing
    holder = connect()
    holder.execute("BEGIN")
    holder.execute("SELECT ray.stop_job(%s)", (old[0],))
    counts: list[int] = []
    submitted: list[int] = []
    done = threading.Event()

    def submit_and_watch() -> None:
        with connect() as other:
            while not done.is_set():
                submitted.append(other.execute("SELECT ray.submit_job(%s, 'echo new')",
                                               (catalog_group,)).fetchone()[0])
                counts.append(left(other, old))

    watcher = threading.Thread(target=submit_and_watch)
    watcher.start()
    try:
        with connect() as admin:
            purged = admin.execute("CALL ray.purge_history()").fetchone()
    finally:
        done.set()
        watcher.join()
    assert purged == (3499, 0)
    # it committed batch by batch: others saw the count fall in steps, and went on submitting
    assert any(0 < c < 3499 for c in counts), counts[:20]
    assert len(submitted) > 0 and left(db, submitted) == len(submitted)
    assert left(db, old) == 1
    assert db.execute("SELECT count(*) FROM ray.job_event WHERE job_id = ANY(%s)", (old[1:],)).fetchone()[0] == 0
    holder.execute("COMMIT")
    holder.close()
    assert db.execute("CALL ray.purge_history()").fetchone() == (1, 0)
    # inside a transaction block it cannot commit, and so purges nothing
    more = old_finished_jobs(db, catalog_group, 2)
    with pytest.raises(psycopg.errors.InvalidTransactionTermination):
        with db.transaction():
            db.execute("CALL ray.purge_history()")
    assert left(db, more) == 2


def test_the_worker_purges_by_itself(db: psycopg.Connection, catalog_group: str) -> None:
    old = old_finished_jobs(db, catalog_group, 1200)
    recent = old_finished_jobs(db, catalog_group, 3, days=20)
    try:
        reload_settings(db, purge_interval="1s")
        wait_for(lambda: left(db, old) == 0, "the worker to purge the old jobs")
        assert left(db, recent) == 3
        reload_settings(db, history_retention="10d")
        wait_for(lambda: left(db, recent) == 0, "the worker to purge with a shorter retention")
    finally:
        reload_settings(db, purge_interval=None, history_retention=None)


GROUP = "it-usage"


def process_start(pid: int) -> float:
    """When a process started, in seconds since the epoch (to a clock tick)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime + ticks / CLOCK_TICKS


def session_alive(leader: int) -> bool:
    """Whether any process of the session that leader leads is left (a zombie, dead and
    waiting for its parent to reap it, is not)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[3]) == leader and fields[0] != "Z":
                LINGERING[leader] = Path(f"/proc/{entry}/cmdline").read_bytes()[:200]
                return True
    return False


LINGERING: dict[int, bytes] = {}


def test_usage_equals_node_lifetimes_across_an_immediate_restart(local_nodes: psycopg.Connection) -> None:
    db = local_nodes
    # what an earlier run of this test metered under this name
    db.execute("DELETE FROM ray.node_lifetime WHERE resource_group = %s", (GROUP,))
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (GROUP, '{"object_store_memory_mb": 100}'))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 1, disk_gb => 40)", (GROUP,))
    wait_for_group_state(db, "READY", GROUP)
    leaders = dict(db.execute("SELECT node_id, pid FROM ray.node WHERE resource_group = %s", (GROUP,)).fetchall())
    starts = {node: process_start(pid) for node, pid in leaders.items()}
    lives = db.execute("SELECT node_id, lifetime_id, extract(epoch FROM started_at)::float8 FROM ray.node_lifetime"
                       " WHERE resource_group = %s AND ended_at IS NULL", (GROUP,)).fetchall()
    assert {node for node, _, _ in lives} == set(leaders)
    for node, _, started in lives:
        assert abs(started - starts[node]) < 1, (node, started, starts[node])
    # a node may have had a short life before (a worker that came up before its head answered)
    all_lives = "SELECT lifetime_id, node_id, started_at, ended_at FROM ray.node_lifetime WHERE resource_group = %s"
    before_restart = sorted(db.execute(all_lives, (GROUP,)).fetchall())
    earlier = dict(db.execute("SELECT node_id, sum(extract(epoch FROM ended_at - started_at))::float8"
                              " FROM ray.node_lifetime WHERE resource_group = %s AND ended_at IS NOT NULL"
                              " GROUP BY node_id", (GROUP,)).fetchall())

    restart_server_immediately()
    db = wait_for(lambda: connect(), "the server after the restart")
    wait_for_group_state(db, "READY", GROUP)
    assert dict(db.execute("SELECT node_id, pid FROM ray.node WHERE resource_group = %s", (GROUP,)).fetchall()) \
        == leaders
    # the nodes outlived the restart: each is counted once, from its start
    assert sorted(db.execute(all_lives, (GROUP,)).fetchall()) == before_restart

    ends: dict[int, float] = {}
    db.execute("SELECT ray.drop_resource_group(%s, force => true)", (GROUP,))
    deadline = time.time() + 120
    while len(ends) < len(leaders) and time.time() < deadline:
        for node, pid in leaders.items():
            if node not in ends and not session_alive(pid):
                ends[node] = time.time()
        time.sleep(0.05)
    assert len(ends) == len(leaders)
    wait_for(lambda: not db.execute("SELECT EXISTS (SELECT FROM ray.resource_group WHERE name = %s)",
                                    (GROUP,)).fetchone()[0], "the group to be removed", 120)
    open_lives = [lifetime for _, lifetime, _ in lives]
    recorded = dict(db.execute("SELECT node_id, extract(epoch FROM ended_at)::float8 FROM ray.node_lifetime"
                               " WHERE lifetime_id = ANY(%s)", (open_lives,)).fetchall())
    for node in leaders:
        assert abs(recorded[node] - ends[node]) < 1, (node, recorded[node], ends[node], LINGERING)
    # ray.usage, hour by hour, adds up to each node's measured life
    metered = dict(db.execute("SELECT coalesce(worker_group, 'head'), sum(node_seconds)::float8 FROM ray.usage"
                              " WHERE resource_group = %s GROUP BY 1", (GROUP,)).fetchall())
    kinds = dict(db.execute("SELECT DISTINCT node_id, coalesce(worker_group, 'head') FROM ray.node_lifetime"
                            " WHERE resource_group = %s", (GROUP,)).fetchall())
    for node, kind in kinds.items():
        measured = ends[node] - starts[node] + earlier.get(node, 0)
        assert abs(metered[kind] - measured) < 1, (kind, metered[kind], measured)
    db.close()


CLIENT_PYTHON = Path(os.environ.get("PG_RAY_CLIENT_VENV", "/opt/pg_ray/client-venv")) / "bin" / "python"
# a task that needs a CPU: the head has none, so it runs on a worker node, whose Ray node id it says
CLIENT_TASK = """
import sys, ray
ray.init(sys.argv[1])
@ray.remote(num_cpus=1)
def where():
    return ray.get_runtime_context().get_node_id()
print("ran on", ray.get(where.remote(), timeout=120))
"""
CLIENT_CONNECT_ONCE = """
import sys, ray
ray.util.connect(sys.argv[1].removeprefix("ray://"), connection_retries=0)
print("connected")
"""


def run_client_python(script: str, address: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLIENT_PYTHON), "-c", script, address], capture_output=True, text=True,
                          timeout=180, cwd="/tmp", env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env})


def test_the_ray_client_address_takes_the_token_and_runs_tasks_on_workers(
        local_nodes: psycopg.Connection) -> None:
    # (a connection of its own: the fixture's may have gone with a restart of the server)
    db = connect()
    group = "it-client"
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (group, '{"object_store_memory_mb": 100}'))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 1)", (group,))
    wait_for_group_state(db, "READY", group)
    address = db.execute("SELECT client_address FROM ray.resource_groups WHERE name = %s", (group,)).fetchone()[0]
    port = db.execute("SELECT port_base + 2 FROM ray.node WHERE resource_group = %s AND kind = 'head'",
                      (group,)).fetchone()[0]
    assert address == f"ray://127.0.0.1:{port}"
    token = db.execute("SELECT token FROM ray.resource_group_secret WHERE resource_group = %s",
                       (group,)).fetchone()[0]

    refused = run_client_python(CLIENT_CONNECT_ONCE, address)
    assert refused.returncode != 0 and "connected" not in refused.stdout, refused.stdout
    assert "ConnectionError" in refused.stderr, refused.stderr[-2000:]
    wrong = run_client_python(CLIENT_CONNECT_ONCE, address, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * len(token))
    assert wrong.returncode != 0 and "connected" not in wrong.stdout

    ran = run_client_python(CLIENT_TASK, address, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    assert ran.returncode == 0, ran.stderr[-3000:]
    worker = db.execute("SELECT ray_node_id FROM ray.nodes WHERE resource_group = %s AND kind = 'worker'",
                        (group,)).fetchone()[0]
    assert f"ran on {worker}" in ran.stdout, ran.stdout
