"""The local provider: resource groups that run as real Ray processes here.

One group is shared by the tests of this file (Ray takes seconds to start
on two cores), in the order they are written: it comes up, runs a job,
scales on demand and back, survives a server restart and the death of its
head, changes with its spec, and leaves nothing behind when dropped.  A
second, highly available group shows a worker node surviving its head.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest

from conftest import (ROOT, as_role, connect, drop_and_wait, reload_settings, wait_for, wait_for_state,
                      wait_for_worker)

GROUP = "it-local"
READY_TIMEOUT = 180


def group_row(db: psycopg.Connection, name: str = GROUP) -> dict[str, Any] | None:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT * FROM ray.resource_groups WHERE name = %s", (name,)).fetchone()


def describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            out.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:
            out.append(f"{pid}: gone")
    return "; ".join(out)


def assert_all_gone(prefix: list[str], gcs_port: int, timeout: float = 30) -> None:
    """No process of the group is left: nodes, their workers, job drivers."""
    deadline = time.monotonic() + timeout
    while (left := processes_under(prefix) + driver_processes(gcs_port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, "left behind: " + describe(left)


def wait_for_group_state(db: psycopg.Connection, state: str, name: str = GROUP,
                         timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    return wait_for(lambda: (row := group_row(db, name)) and row["state"] == state and row,
                    f"resource group {name} to be {state}", timeout)


def nodes(db: psycopg.Connection, name: str = GROUP) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT * FROM ray.nodes WHERE resource_group = %s ORDER BY node_id",
                           (name,)).fetchall()


def workers_alive(db: psycopg.Connection, count: int, name: str = GROUP) -> list[dict[str, Any]] | None:
    alive = [n for n in nodes(db, name) if n["kind"] == "worker" and n["state"] == "ALIVE"]
    others = [n for n in nodes(db, name) if n["kind"] == "worker" and n["state"] != "ALIVE"]
    return alive if len(alive) == count and not others else None


def events_since(db: psycopg.Connection, event_id: int, name: str = GROUP) -> list[tuple[str, str, str]]:
    return db.execute("SELECT to_state, actor, message FROM ray.resource_group_event "
                      "WHERE resource_group = %s AND event_id > %s ORDER BY event_id",
                      (name, event_id)).fetchall()


def last_event_id(db: psycopg.Connection) -> int:
    return db.execute("SELECT coalesce(max(event_id), 0) FROM ray.resource_group_event").fetchone()[0]


def run_directory(db: psycopg.Connection) -> str:
    return db.execute("SELECT format('%s/%s/', rtrim(current_setting('pg_ray.run_directory'), '/'), id) "
                      "FROM ray.installation").fetchone()[0]


def run_directories(db: psycopg.Connection, name: str = GROUP) -> list[str]:
    """The run directories of a group's nodes, each with its trailing slash."""
    return [r[0] + "/" for r in db.execute("SELECT run_dir FROM ray.node WHERE resource_group = %s",
                                           (name,)).fetchall()]


def processes_under(prefixes: list[str] | str) -> list[int]:
    """Pids whose command line points under these run directories (or this one)."""
    prefixes = [prefixes] if isinstance(prefixes, str) else prefixes
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        if any(prefix in cmdline for prefix in prefixes):
            found.append(int(entry.name))
    return found


def proc_uid_or_none(pid: int) -> int | None:
    """A process's real user id, or None once it is gone."""
    try:
        return proc_uid(pid)
    except (OSError, AssertionError):
        return None


def proc_uid(pid: int) -> int:
    """A process's real user id, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def driver_processes(gcs_port: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(b"RAY_ADDRESS=") and e.endswith(f":{gcs_port}".encode()) for e in environ):
            found.append(int(entry.name))
    return found


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a TCP port listens on, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


def http_status(url: str, token: str | None = None, timeout: float = 10) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def group_token(db: psycopg.Connection, name: str = GROUP) -> str:
    return db.execute("SELECT token FROM ray.resource_group_secret WHERE resource_group = %s",
                      (name,)).fetchone()[0]


@pytest.fixture(scope="module")
def local_group(local_nodes: psycopg.Connection) -> str:
    """The shared group: a head and one CPU worker group of 1 to 2 small workers."""
    db = local_nodes
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (GROUP, '{"object_store_memory_mb": 100, "idle_timeout_seconds": 10}'))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 2)", (GROUP,))
    db.execute("SELECT ray.grant_usage(%s, 'public')", (GROUP,))
    wait_for_group_state(db, "READY")
    return GROUP


def test_group_becomes_ready_with_a_head_and_its_workers(local_nodes: psycopg.Connection,
                                                         local_group: str) -> None:
    db = local_nodes
    row = group_row(db)
    assert row["live_workers"] == 1 and row["desired_workers"] == 1
    assert row["ray_version"] or wait_for(lambda: group_row(db)["ray_version"], "the Ray version")
    head, worker = nodes(db)
    assert (head["kind"], head["state"], head["cpus"]) == ("head", "ALIVE", 0)
    assert (worker["kind"], worker["worker_group"], worker["state"], worker["cpus"]) == \
        ("worker", "cpu", "ALIVE", 1)
    assert row["dashboard_url"] == f"http://127.0.0.1:{head['port'] + 1}"
    assert row["client_address"] == f"ray://127.0.0.1:{head['port'] + 2}"
    low, high = (int(db.execute(f"SHOW pg_ray.port_range_{s}").fetchone()[0]) for s in ("start", "end"))
    assert all(low <= n["port"] <= high - 63 for n in (head, worker))
    assert head["port"] != worker["port"]
    # each node is a process of its own, leading its own session, run by the group's OS user
    os_user, = db.execute("SELECT os_user FROM ray.resource_group WHERE name = %s", (GROUP,)).fetchone()
    assert os_user.startswith("pgray-g")
    for node in (head, worker):
        assert os.getsid(node["pid"]) == node["pid"]
        assert proc_uid(node["pid"]) == pwd.getpwnam(os_user).pw_uid
    # the dashboard wants the group's token
    assert http_status(row["dashboard_url"] + "/api/version") == 401
    assert http_status(row["dashboard_url"] + "/api/version", group_token(db)) == 200


def test_dashboard_listens_on_loopback_only(local_nodes: psycopg.Connection, local_group: str) -> None:
    head = nodes(local_nodes)[0]
    assert listening_addresses(head["port"] + 1) == {"127.0.0.1"}


def listening_sockets(pids: set[int]) -> dict[int, str]:
    """Port -> address of the TCP sockets these processes listen on (ss, as root)."""
    listed = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in listed.splitlines():
        fields = line.split()
        if {int(p) for p in re.findall(r"pid=(\d+)", fields[-1])} & pids:
            address, _, port = fields[3].rpartition(":")
            found[int(port)] = address.strip("[]")
    return found


def grpc_answer(port: int, stub: Any, method: str, request: Any, token: str | None = None) -> str:
    """How a gRPC port of a node answers one call: OK or the status code's name."""
    import grpc
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            getattr(stub(channel), method)(request, timeout=10,
                                           metadata=[("authorization", f"Bearer {token}")] if token else None)
            return "OK"
        except grpc.RpcError as error:
            return error.code().name


def test_every_port_of_the_group_is_on_loopback(local_nodes: psycopg.Connection, local_group: str) -> None:
    """Every TCP port any process of the group listens on (GCS, raylets, object managers, agents,
    Ray client, metrics, workers once a job ran) is bound to 127.0.0.1; tried without the token,
    each HTTP one refuses (401) but the metrics ports, which Ray serves to anyone who reaches them,
    and so do the GCS, the raylets, the Ray client server and the agents' gRPC (UNAUTHENTICATED;
    the object managers' and task workers' are on loopback, not tried)."""
    db = local_nodes
    job_id = db.execute("SELECT ray.submit_job(%s, %s)", (GROUP, "python -c \"import ray; ray.init(); "
                        "print(ray.get(ray.remote(lambda: 1).remote()))\"")).fetchone()[0]
    assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job_id,)).fetchone()[0] == "SUCCEEDED"
    uid = pwd.getpwnam(db.execute("SELECT os_user FROM ray.resource_group WHERE name = %s",
                                  (GROUP,)).fetchone()[0]).pw_uid
    pids = {int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and proc_uid_or_none(int(e.name)) == uid}
    ports = listening_sockets(pids)
    bases = [n["port"] for n in nodes(db)]
    # each node's GCS or node manager, object manager, agents; the head's dashboard and Ray client
    assert len(ports) >= 5 * len(bases) + 2, ports
    assert {a for a in ports.values()} <= {"127.0.0.1", "::ffff:127.0.0.1"}, ports
    metrics = {b + 5 for b in bases} | {bases[0] + 9, bases[0] + 10}
    answers = {}
    for port in ports:
        try:
            answers[port] = http_status(f"http://127.0.0.1:{port}/api/version", timeout=3)
        except Exception as error:  # gRPC and Redis speak no HTTP/1
            answers[port] = type(error).__name__
    open_ports = {port for port, answer in answers.items() if answer == 200}
    assert open_ports <= metrics, answers
    # the HTTP ones: the dashboard, each node's agent and runtime environment agent
    assert {b + 1 for b in bases[:1]} | {b + 6 for b in bases} | {b + 8 for b in bases} <= \
        {port for port, answer in answers.items() if answer == 401}, answers
    # the gRPC ones, each asked a question of its own without the token, and with it
    from ray.core.generated import (gcs_service_pb2, gcs_service_pb2_grpc, node_manager_pb2,
                                    node_manager_pb2_grpc, ray_client_pb2, ray_client_pb2_grpc,
                                    reporter_pb2, reporter_pb2_grpc)
    asks = [(bases[0], gcs_service_pb2_grpc.NodeInfoGcsServiceStub, "GetAllNodeInfo",
             gcs_service_pb2.GetAllNodeInfoRequest()),
            (bases[0] + 2, ray_client_pb2_grpc.RayletDriverStub, "ClusterInfo",
             ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING))]
    for b in bases:
        asks += [(b + 3, node_manager_pb2_grpc.NodeManagerServiceStub, "GetNodeStats",
                  node_manager_pb2.GetNodeStatsRequest()),
                 (b + 7, reporter_pb2_grpc.LogServiceStub, "ListLogs", reporter_pb2.ListLogsRequest())]
    token = group_token(db)
    for port, stub, method, request in asks:
        assert port in ports, (port, ports)
        assert grpc_answer(port, stub, method, request) == "UNAUTHENTICATED", (port, method)
        # with it, the call gets past authentication (an empty request may then fail)
        assert grpc_answer(port, stub, method, request, token) != "UNAUTHENTICATED", (port, method)


def test_cluster_status_shows_what_ray_status_would(local_nodes: psycopg.Connection,
                                                    local_group: str) -> None:
    # the autoscaler reports every few seconds: wait for one that has the worker's CPU
    status = wait_for(lambda: (text := local_nodes.execute("SELECT ray.cluster_status(%s)", (GROUP,)
                                                            ).fetchone()[0]) and "/1.0 CPU" in text and text,
                      "the autoscaler's report of the worker")
    assert "Autoscaler status" in status and "Pending Demands" in status


def test_a_job_runs_on_the_local_group(local_nodes: psycopg.Connection, local_group: str) -> None:
    db = local_nodes
    job_id = db.execute("SELECT ray.submit_job(%s, %s)", (GROUP, "python -c \"import ray; ray.init(); "
                        "print('nodes', len([n for n in ray.nodes() if n['Alive']]))\"")).fetchone()[0]
    assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job_id,)).fetchone()[0] == "SUCCEEDED"
    # at once, whether or not the worker has saved the log yet
    assert "nodes 2" in db.execute("SELECT ray.job_logs(%s)", (job_id,)).fetchone()[0]


def ray_active_runs(db: psycopg.Connection, name: str = GROUP) -> list[str]:
    """Submission ids of the runs Ray itself lists as PENDING or RUNNING on a group."""
    url = db.execute("SELECT dashboard_url FROM ray.resource_group WHERE name = %s", (name,)).fetchone()[0]
    request = urllib.request.Request(url + "/api/jobs/", headers={"Authorization": f"Bearer {group_token(db, name)}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        runs = json.loads(response.read())
    return [r["submission_id"] for r in runs if r["status"] in ("PENDING", "RUNNING") and r.get("submission_id")]


def start_order(db: psycopg.Connection, job_ids: list[int]) -> list[int]:
    """The jobs in the order they first went to Ray (their first SUBMITTING event)."""
    rows = db.execute("SELECT job_id FROM ray.job_event WHERE job_id = ANY (%s) AND to_state = 'SUBMITTING' "
                      "GROUP BY job_id ORDER BY min(event_id)", (job_ids,)).fetchall()
    return [r[0] for r in rows]


@pytest.fixture(scope="module")
def admission_roles(local_nodes: psycopg.Connection) -> Iterator[list[str]]:
    """Three roles that share the group: one floods it, two come late."""
    db = local_nodes
    roles = ["it_flood", "it_late", "it_later"]
    for role in roles:
        db.execute(f"DROP ROLE IF EXISTS {role}")
        db.execute(f"CREATE ROLE {role} IN ROLE ray_user")
    yield roles
    db = connect()
    db.execute("DELETE FROM ray.quota WHERE role = ANY (%s)", (roles,))
    for role in roles:
        db.execute(f"REASSIGN OWNED BY {role} TO postgres")
        db.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_flood_larger_than_the_group_all_succeeds_and_a_late_role_goes_first(
        local_nodes: psycopg.Connection, local_group: str, admission_roles: list[str]) -> None:
    """Twice as many jobs as the group holds at once, then three of another role a moment
    later: none fails, none waits in Ray (each starts as a slot frees), and the late role's
    jobs start before the flood's tail (fair share), whatever their arrival."""
    db = local_nodes
    flood = [as_role(db, "it_flood", "SELECT ray.submit_job(%s, 'sleep 1')", (GROUP,))[0] for _ in range(16)]
    wait_for(lambda: db.execute("SELECT count(*) FROM ray.job WHERE job_id = ANY (%s) AND state <> 'QUEUED'",
                                (flood,)).fetchone()[0] >= 2, "the flood to start")
    late = [as_role(db, "it_late", "SELECT ray.submit_job(%s, 'true')", (GROUP,))[0] for _ in range(3)]
    # while it runs, Ray never holds more runs than the group has CPUs (2), each job asking for one
    seen = 0

    def drained() -> bool:
        nonlocal seen
        active = ray_active_runs(db)
        assert len(active) <= 2, f"Ray has {len(active)} runs at once: {active}"
        seen = max(seen, len(active))
        return db.execute("SELECT bool_and(state IN ('SUCCEEDED', 'FAILED', 'STOPPED')) FROM ray.job "
                          "WHERE job_id = ANY (%s)", (flood + late,)).fetchone()[0]

    wait_for(drained, "the flood and the late jobs to end", 300)
    states = dict(db.execute("SELECT state, count(*) FROM ray.job WHERE job_id = ANY (%s) GROUP BY state",
                             (flood + late,)).fetchall())
    assert states == {"SUCCEEDED": 19}, states
    order = start_order(db, flood + late)
    assert max(order.index(j) for j in late) < order.index(flood[-1]), \
        f"the late role's jobs started at {[order.index(j) for j in late]}, the flood's last at {order.index(flood[-1])}"


def test_a_roles_quota_is_never_exceeded_in_ray(local_nodes: psycopg.Connection, local_group: str,
                                                admission_roles: list[str]) -> None:
    """With a quota of one running job, Ray's own job list never shows two of the role's runs,
    its queued limit refuses a submission at once, and a raised quota lets the rest go."""
    db = local_nodes
    db.execute("SELECT ray.set_quota(%s, 'it_later', max_running_jobs => 1, max_queued_jobs => 5)", (GROUP,))
    install = db.execute("SELECT id FROM ray.installation").fetchone()[0]
    jobs = [as_role(db, "it_later", "SELECT ray.submit_job(%s, 'sleep 1')", (GROUP,))[0] for _ in range(5)]
    # over the queued limit at once, unless the worker started one meanwhile
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="allows no more queued jobs"):
        for _ in range(2):
            jobs.append(as_role(db, "it_later", "SELECT ray.submit_job(%s, 'sleep 1')", (GROUP,))[0])
    mine = tuple(f"pgray-{install}-{j}-" for j in jobs)
    quota_seen = set()

    def done() -> bool:
        active = [sid for sid in ray_active_runs(db) if sid.startswith(mine)]
        assert len(active) <= 1, f"the role has {len(active)} runs in Ray at once: {active}"
        waiting = db.execute("SELECT message FROM ray.jobs WHERE job_id = ANY (%s) AND state = 'QUEUED'",
                             (jobs,)).fetchall()
        quota_seen.update(m for (m,) in waiting if m and "role quota" in m)
        return db.execute("SELECT bool_and(state = 'SUCCEEDED') FROM ray.job WHERE job_id = ANY (%s)",
                          (jobs,)).fetchone()[0]

    # a snapshot older than the others' submissions could not count them: refused
    with connect() as other:
        other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        other.execute("SET ROLE it_later")
        with pytest.raises(psycopg.errors.ActiveSqlTransaction, match="REPEATABLE READ transaction"):
            other.execute("SELECT ray.submit_job(%s, 'true')", (GROUP,))
    wait_for(done, "the role's jobs to succeed one at a time", 300)
    assert "waiting for the role quota of it_later: 1 of 1 running jobs" in quota_seen, quota_seen
    db.execute("SELECT ray.drop_quota(%s, 'it_later')", (GROUP,))


def test_higher_priorities_start_first(local_nodes: psycopg.Connection, local_group: str) -> None:
    """Behind two jobs that fill the group, jobs queued together start by priority."""
    db = local_nodes
    blockers = [db.execute("SELECT ray.submit_job(%s, 'sleep 4')", (GROUP,)).fetchone()[0] for _ in range(2)]
    wait_for(lambda: all(wait_for_state(db, j, {"PENDING", "RUNNING"}) for j in blockers), "the blockers to start")
    with db.transaction():
        queued = {p: db.execute("SELECT ray.submit_job(%s, 'true', priority => %s)", (GROUP, p)).fetchone()[0]
                  for p in (0, 7, -2, 3)}
    for job_id in queued.values():
        assert wait_for_state(db, job_id, {"SUCCEEDED", "FAILED"}, 180) == "SUCCEEDED"
    assert start_order(db, list(queued.values())) == [queued[7], queued[3], queued[0], queued[-2]]


def driver_node(db: psycopg.Connection, job_id: int) -> str:
    """The node Ray ran a job's driver on, as Ray's job record says."""
    url, sid = db.execute("SELECT g.dashboard_url, j.ray_submission_id FROM ray.job j "
                          "JOIN ray.resource_group g ON g.name = j.resource_group WHERE j.job_id = %s",
                          (job_id,)).fetchone()
    request = urllib.request.Request(f"{url}/api/jobs/{sid}", headers={"Authorization": f"Bearer {group_token(db)}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["driver_node_id"]


def test_a_job_for_a_worker_group_runs_on_its_nodes(local_nodes: psycopg.Connection, local_group: str) -> None:
    """submit_job(worker_group => ...) puts the driver on that worker group's nodes (by the
    resource each of them has); without it, a driver that asks for no CPUs runs on the head."""
    db = local_nodes
    pinned, free = [db.execute("SELECT ray.submit_job(%s, 'true', entrypoint_num_cpus => 0, worker_group => %s)",
                               (GROUP, worker_group)).fetchone()[0] for worker_group in ("cpu", None)]
    for job_id in (pinned, free):
        assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job_id,)).fetchone()[0] == "SUCCEEDED"
    nodes = dict(db.execute("SELECT ray_node_id, coalesce(worker_group, kind) FROM ray.node "
                            "WHERE resource_group = %s AND ray_node_id IS NOT NULL", (GROUP,)).fetchall())
    assert nodes[driver_node(db, pinned)] == "cpu"
    assert nodes[driver_node(db, free)] == "head"


# What job code on a local group tries against the database host.  Each door must stay shut
# for the reason given (a part of the error); the script checks that itself and where its
# driver runs (a driver on a worker node keeps no log yet, docs/design.md), prints what it
# found, and exits 3 if a door opened or shut for another reason, 4 if it ran on another node.
# Arguments: the run directories of the nodes it may run on (commas between), the data directory, the socket directory, the
# port, the postmaster's pid, another group's head's pid and run directory.
PROBE = r"""
import json, os, sys
import psycopg
nodes, data_dir, socket_dir, port, postmaster, other_pid, other_dir = sys.argv[1:]
def login(host):
    psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", connect_timeout=5).close()
doors = {
    "data directory": (lambda: os.listdir(data_dir), "Permission denied"),
    "PG_VERSION": (lambda: open(os.path.join(data_dir, "PG_VERSION")).read(), "Permission denied"),
    "superuser over the socket": (lambda: login(socket_dir), "Permission denied"),
    "superuser over TCP": (lambda: login("127.0.0.1"), "no password supplied"),
    "signal the postmaster": (lambda: os.kill(int(postmaster), 0), "Operation not permitted"),
    "the postmaster's environment": (lambda: open(f"/proc/{postmaster}/environ", "rb").read(), "Permission denied"),
    "signal another group's head": (lambda: os.kill(int(other_pid), 0), "Operation not permitted"),
    "another group's environment": (lambda: open(f"/proc/{other_pid}/environ", "rb").read(), "Permission denied"),
    "another group's run directory": (lambda: os.listdir(other_dir), "Permission denied"),
}
found = {}
for door, (attempt, reason) in doors.items():
    try:
        attempt()
        found[door] = "OPENED"
    except (OSError, psycopg.Error) as error:
        found[door] = (type(error).__name__ + ": " + str(error)).replace("\n", " ")[:300]
        if reason not in found[door]:
            found[door] = "UNEXPECTED " + found[door]
# where it runs: the first ancestor that shows a node's run directory is that node's raylet
here, pid = None, os.getppid()
while here is None and pid > 1:
    cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    here = next((d for d in nodes.split(",") + [other_dir] if d in cmdline), None)
    pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
print("PROBE " + json.dumps({"uid": os.getuid(), "node": here, "doors": found}), flush=True)
sys.exit(3 if any(v.startswith(("OPENED", "UNEXPECTED")) for v in found.values()) else
         4 if here not in nodes.split(",") else 0)
"""


def test_job_code_on_a_local_group_finds_every_door_shut(local_nodes: psycopg.Connection, local_group: str) -> None:
    """A job on the group, its driver on the head and then on a worker node: it runs as the
    group's OS user, not the server's, and can neither read the data directory, nor log in as
    the superuser over the socket (no password needed there, but its directory is closed) or
    TCP (a password wanted), nor signal the server or read its environment, nor touch another
    local group's processes or files."""
    db = local_nodes
    other = "it-local-other"
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (other, '{"object_store_memory_mb": 100}'))
    try:
        wait_for_group_state(db, "READY", other)
        other_head = nodes(db, other)[0]
        users = dict(db.execute("SELECT name, os_user FROM ray.resource_group WHERE name IN (%s, %s)",
                                (GROUP, other)).fetchall())
        assert users[GROUP] != users[other]
        # every process of either group runs as that group's OS user
        for name in (GROUP, other):
            uid = pwd.getpwnam(users[name]).pw_uid
            pids = processes_under(run_directories(db, name))
            assert pids and all(proc_uid(pid) == uid for pid in pids), describe(pids)
        settings = [db.execute(f"SHOW {name}").fetchone()[0] for name in
                    ("data_directory", "unix_socket_directories", "port")]
        postmaster = int((Path(settings[0]) / "postmaster.pid").read_text().split()[0])
        code = base64.b64encode(PROBE.encode()).decode()
        args = " ".join(shlex.quote(str(a)) for a in (*settings, postmaster, other_head["pid"],
                                                      run_directories(db, other)[0]))
        head, *workers = db.execute("SELECT run_dir || '/' FROM ray.node WHERE resource_group = %s "
                                    "ORDER BY kind <> 'head', node_id", (GROUP,)).fetchall()
        for where, node_ids, cpus in (("head", head[0], None), ("worker node", ",".join(w[0] for w in workers), 1)):
            entrypoint = (f"python -c \"import base64; exec(base64.b64decode('{code}'))\" "
                          f"{node_ids} {args}")
            job_id = db.execute("SELECT ray.submit_job(%s, %s, entrypoint_num_cpus => %s)",
                                (GROUP, entrypoint, cpus)).fetchone()[0]
            state = db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job_id,)).fetchone()[0]
            log = db.execute("SELECT ray.job_logs(%s)", (job_id,)).fetchone()[0]
            message, = db.execute("SELECT message FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()
            assert state == "SUCCEEDED", f"the probe with its driver on the {where} ({node_ids}): {message}"
            if where == "head":
                probe = json.loads(next(line for line in log.splitlines() if line.startswith("PROBE "))[6:])
                assert probe["uid"] == pwd.getpwnam(users[GROUP]).pw_uid
                assert probe["node"] == head[0]
    finally:
        drop_and_wait(db, other)


def escape(markers: list[str]) -> str:
    """A job that leaves a process behind, out of its node's session, without RAY_ADDRESS, and
    showing the run directories of nodes to come on its command line (a leader to adopt)."""
    return ("python -c \"import os, sys\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        os.environ.pop('RAY_ADDRESS', None)\n"
            "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(3600)'] + sys.argv[1:])\n"
            "    os._exit(0)\n"
            "print('left one behind')\" " + " ".join(markers))


def test_what_a_dropped_groups_job_left_is_killed_before_its_os_user_runs_another_group(
        local_nodes: psycopg.Connection, local_group: str) -> None:
    """A job's process that escaped its node's session outlives the drop of its group; before
    the group's OS user runs the next group's first node, it is killed, so that it cannot reach
    the new group's processes and token; showing the next nodes' run directories, it is not
    adopted as the new group's node either."""
    db = local_nodes
    first, second = "it-local-left", "it-local-next"
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (first, '{"object_store_memory_mb": 100}'))
    try:
        wait_for_group_state(db, "READY", first)
        os_user, = db.execute("SELECT os_user FROM ray.resource_group WHERE name = %s", (first,)).fetchone()
        uid = pwd.getpwnam(os_user).pw_uid
        next_id = db.execute("SELECT last_value FROM ray.node_id_seq").fetchone()[0] + 1
        markers = [f"{run_directory(db)}n{i}/" for i in range(next_id, next_id + 20)]
        job_id = db.execute("SELECT ray.submit_job(%s, %s)", (first, escape(markers))).fetchone()[0]
        assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job_id,)).fetchone()[0] == "SUCCEEDED"

        def left() -> list[int]:
            return [pid for pid in (int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit())
                    if proc_uid_or_none(pid) == uid and "time.sleep(3600)" in describe([pid])]
        escaped = wait_for(left, "the job's process left behind", 30)
        drop_and_wait(db, first)
        assert left() == escaped, "the drop could not have seen it"
        db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
                   (second, '{"object_store_memory_mb": 100}'))
        assert db.execute("SELECT os_user FROM ray.resource_group WHERE name = %s", (second,)).fetchone()[0] == os_user
        wait_for_group_state(db, "READY", second)
        # not adopted for the new group's first node, though it shows its run directory: killed
        assert left() == []
        assert all(n["pid"] not in escaped for n in nodes(db, second))
    finally:
        drop_and_wait(db, first)
        drop_and_wait(db, second)


def test_a_submission_left_open_does_not_hold_the_worker(local_nodes: psycopg.Connection,
                                                         local_group: str) -> None:
    """A user's transaction that submitted and stays open holds its group's
    row, so that the group cannot be dropped under it; the worker's rounds,
    which lock every local group, go on, and another job on the group runs.
    (Before 0.2 the worker waited for that transaction with no limit, and
    every user's jobs stayed queued.)"""
    db = local_nodes
    holder = connect()
    holder.autocommit = False
    try:
        holder.execute("SELECT ray.submit_job(%s, 'true')", (GROUP,))  # and left open
        errors = db.execute("SELECT round_errors FROM ray.worker_status()").fetchone()[0]
        job_id = db.execute("SELECT ray.submit_job(%s, 'echo while-another-waits')", (GROUP,)).fetchone()[0]
        assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job_id,)).fetchone()[0] == "SUCCEEDED"
        assert db.execute("SELECT round_errors FROM ray.worker_status()").fetchone()[0] == errors
    finally:
        holder.rollback()
        holder.close()


def test_an_admins_change_left_open_holds_up_no_round(local_nodes: psycopg.Connection, local_group: str) -> None:
    """An admin's change of a group, left open in a transaction, holds the
    group's row: the worker leaves that group for a later round (its nodes
    are reconciled, its answers from Ray applied, once the change commits)
    and its rounds go on without error for the rest."""
    db = local_nodes
    holder = connect()
    holder.autocommit = False
    try:
        holder.execute("SELECT ray.alter_resource_group(%s, options => '{\"idle_timeout_seconds\": 61}')", (GROUP,))
        first = db.execute("SELECT rounds, round_errors FROM ray.worker_status()").fetchone()
        wait_for(lambda: db.execute("SELECT rounds FROM ray.worker_status()").fetchone()[0] >= first[0] + 3,
                 "three rounds while the change is open", 60)
        assert db.execute("SELECT round_errors FROM ray.worker_status()").fetchone()[0] == first[1]
    finally:
        holder.rollback()
        holder.close()


def test_the_workers_statements_have_a_statement_timeout(local_nodes: psycopg.Connection, local_group: str,
                                                         settings: Callable[[str, str], None]) -> None:
    """A background worker has no statement_timeout of its own: pg_ray
    arms pg_ray.worker_statement_timeout for each of its statements.  With
    the lock timeout made longer than it, a table the round reads, held
    open, shows it: the round's statement is cancelled by the statement
    timeout, the round is retried, and once the table is let go the rounds
    go on.  (No user can lock the table: this stands for any statement that
    runs too long.)"""
    db = local_nodes
    settings("pg_ray.worker_lock_timeout", "10min")
    settings("pg_ray.worker_statement_timeout", "300ms")
    holder = connect()
    holder.autocommit = False
    try:
        errors = db.execute("SELECT round_errors FROM ray.worker_status()").fetchone()[0]
        holder.execute("LOCK TABLE ray.resource_group IN ACCESS EXCLUSIVE MODE")
        wait_for(lambda: db.execute("SELECT round_errors > %s AND last_error LIKE '%%statement timeout%%'"
                                    " FROM ray.worker_status()", (errors,)).fetchone()[0],
                 "a round cancelled by the statement timeout")
    finally:
        holder.rollback()
        holder.close()
    last = db.execute("SELECT rounds, round_errors FROM ray.worker_status()").fetchone()

    def a_round_without_error() -> bool:
        nonlocal last
        now = db.execute("SELECT rounds, round_errors FROM ray.worker_status()").fetchone()
        succeeded = now[0] > last[0] and now[1] == last[1]
        last = now
        return succeeded

    wait_for(a_round_without_error, "a round that succeeds")


SCALING_JOB = (
    "python -c \"import ray, time; ray.init()\n"
    "@ray.remote(num_cpus=1)\n"
    "def f(i):\n"
    "    time.sleep(8); return i\n"
    "print(ray.get([f.remote(i) for i in range(2)]))\""
)


def test_scales_up_on_demand_and_down_when_idle(local_nodes: psycopg.Connection, local_group: str) -> None:
    db = local_nodes
    since = last_event_id(db)
    job_id = db.execute("SELECT ray.submit_job(%s, %s)", (GROUP, SCALING_JOB)).fetchone()[0]
    # two 1-CPU tasks on one 1-CPU worker: one waits, and the group grows
    wait_for(lambda: workers_alive(db, 2), "a second worker", 120)
    assert wait_for_state(db, job_id, {"SUCCEEDED", "FAILED", "STOPPED"}, 120) == "SUCCEEDED"
    up = [e for e in events_since(db, since) if e[1] == "pg_ray autoscaler" and "up from 1 to 2" in e[2]]
    assert up and "cannot place" in up[0][2] and '"CPU": 1' in up[0][2]
    # idle for longer than idle_timeout_seconds: back to min_workers
    wait_for(lambda: workers_alive(db, 1), "the group to scale back to one worker", 120)
    down = [e for e in events_since(db, since) if e[1] == "pg_ray autoscaler" and "down from 2 to 1" in e[2]]
    assert down and "idle longer than 10 s" in down[0][2]
    assert group_row(db)["desired_workers"] == 1


def test_never_beyond_max_workers(local_nodes: psycopg.Connection, local_group: str) -> None:
    db = local_nodes
    since = last_event_id(db)
    job_id = db.execute("SELECT ray.submit_job(%s, %s)",
                        (GROUP, SCALING_JOB.replace("range(2)", "range(4)"))).fetchone()[0]
    assert wait_for_state(db, job_id, {"SUCCEEDED", "FAILED", "STOPPED"}, 180) == "SUCCEEDED"
    ups = [e for e in events_since(db, since) if e[1] == "pg_ray autoscaler" and " up " in e[2]]
    assert len(ups) <= 1
    assert db.execute("SELECT max_workers >= desired_workers FROM ray.worker_group WHERE resource_group = %s",
                      (GROUP,)).fetchone()[0]
    wait_for(lambda: workers_alive(db, 1), "the group to scale back to one worker", 120)


def test_postgres_restart_adopts_the_running_nodes(local_nodes: psycopg.Connection, local_group: str) -> None:
    db = local_nodes
    before = {n["node_id"]: n["pid"] for n in nodes(db)}
    prefix = run_directory(db)
    leaders_before = sorted(p for p in processes_under(prefix) if os.getsid(p) == p)
    since = last_event_id(db)
    subprocess.run([str(ROOT / "scripts/test-cluster"), "restart"], check=True, capture_output=True)
    wait_for_worker()
    db2 = wait_for(lambda: connect(), "the server to accept connections")
    # the new worker has been through its rounds and still sees the same processes
    wait_for(lambda: db2.execute("SELECT rounds > 2 FROM ray.worker_status()").fetchone()[0],
             "the new worker's rounds")
    wait_for_group_state(db2, "READY")
    after = {n["node_id"]: n["pid"] for n in nodes(db2)}
    assert after == before
    assert sorted(p for p in processes_under(prefix) if os.getsid(p) == p) == leaders_before
    assert not [e for e in events_since(db2, since) if "started" in e[2]]


def test_head_killed_comes_back(local_nodes: psycopg.Connection, local_group: str) -> None:
    db = wait_for(lambda: connect(), "the server to accept connections")
    head = nodes(db)[0]
    # a run the head takes with it is requeued as a new attempt
    job_id = db.execute("SELECT ray.submit_job(%s, 'python -c \"import time; time.sleep(5)\"', "
                        "max_attempts => 2)", (GROUP,)).fetchone()[0]
    wait_for_state(db, job_id, {"RUNNING"}, 120)
    since = last_event_id(db)
    os.killpg(head["pid"], signal.SIGKILL)
    wait_for(lambda: [e for e in events_since(db, since) if "head node" in e[2] and "exited" in e[2]],
             "the worker to notice the head's death", 60)
    row = wait_for_group_state(db, "READY")
    new_head = nodes(db)[0]
    assert new_head["node_id"] == head["node_id"] and new_head["pid"] != head["pid"]
    assert new_head["port"] == head["port"]
    assert http_status(row["dashboard_url"] + "/api/version", group_token(db)) == 200
    # without HA the cluster started anew, and its worker with it
    wait_for(lambda: workers_alive(db, 1), "the worker to rejoin")
    states = [e[0] for e in events_since(db, since) if e[1] == "pg_ray worker"]
    assert "DEGRADED" in states and states[-1] == "READY"
    assert wait_for_state(db, job_id, {"SUCCEEDED", "FAILED", "STOPPED"}, 180) == "SUCCEEDED"
    attempts, = db.execute("SELECT attempts FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()
    assert attempts == 2


def test_a_process_of_another_os_user_is_never_taken_for_a_node(local_nodes: psycopg.Connection,
                                                               local_group: str) -> None:
    """Another OS user's process that puts the head's run directory on its command line, in a
    session of its own, is not adopted when the head dies (nor is one of another OS user of
    pg_ray's pool, as another group's job could start): the worker starts a head of its own.
    Nor is a backend of the server whose title shows the run directory as its user's name (a
    client chooses it before it authenticates): killing a backend restarts the whole server."""
    db = wait_for(lambda: connect(), "the server to accept connections")
    head = nodes(db)[0]
    marker = run_directories(db)[0]
    started = db.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    impostor = subprocess.Popen(["python3", "-c", "import time; time.sleep(600)", marker],
                                user="nobody", group="nogroup", start_new_session=True)
    os_user, = db.execute("SELECT os_user FROM ray.resource_group WHERE name = %s", (GROUP,)).fetchone()
    other_user = "pgray-g31" if os_user != "pgray-g31" else "pgray-g30"
    pool_impostor = subprocess.Popen(["python3", "-c", "import time; time.sleep(600)", marker],
                                     user=other_user, group=other_user, start_new_session=True)
    db.execute(f'DROP ROLE IF EXISTS "{marker}"')
    db.execute(f'CREATE ROLE "{marker}" LOGIN')
    backend = connect(user=marker)
    try:
        since = last_event_id(db)
        os.killpg(head["pid"], signal.SIGKILL)
        wait_for(lambda: [e for e in events_since(db, since) if "head node" in e[2] and "exited" in e[2]],
                 "the worker to notice the head's death", 60)
        wait_for_group_state(db, "READY")
        new_head = nodes(db)[0]
        assert new_head["pid"] not in (head["pid"], impostor.pid, pool_impostor.pid)
        assert impostor.poll() is None, "the worker signalled another user's process"
        assert pool_impostor.poll() is None, "the worker signalled another group's process"
        assert backend.execute("SELECT 1").fetchone() == (1,), "the worker signalled a backend"
        assert db.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == started
        wait_for(lambda: workers_alive(db, 1), "the worker to rejoin")
    finally:
        for process in (impostor, pool_impostor):
            process.kill()
            process.wait()
        backend.close()
        db.execute(f'DROP ROLE IF EXISTS "{marker}"')


@pytest.mark.parametrize("laid", ["symlink", "foreign"])
def test_a_run_directory_another_user_could_have_laid_is_refused(local_nodes: psycopg.Connection,
                                                                 laid: str) -> None:
    """pg_ray.run_directory that is a symbolic link, or a directory of another OS user: no node
    starts there, and ray.nodes says why."""
    db = wait_for(lambda: connect(), "the server to accept connections")
    base = Path(f"/tmp/pgl_{laid[:4]}")
    target = Path("/tmp/pgl_target")
    group = f"it-dir-{laid[:4]}"

    def clean() -> None:
        for path in (base, target):
            if path.is_symlink():
                path.unlink()
            elif path.exists():
                subprocess.run(["rm", "-rf", str(path)], check=True)
    clean()
    postgres = pwd.getpwnam("postgres")
    if laid == "symlink":
        target.mkdir(mode=0o700)
        os.chown(target, postgres.pw_uid, postgres.pw_gid)
        base.symlink_to(target)
    else:
        # one the server could enter and write in: its owner could read and swap what is in it
        base.mkdir()
        nobody = pwd.getpwnam("nobody")
        os.chown(base, nobody.pw_uid, nobody.pw_gid)
        base.chmod(0o777)
    reload_settings(db, run_directory=str(base))
    try:
        db.execute("SELECT ray.create_resource_group(%s, 'small')", (group,))
        why = wait_for(lambda: db.execute("SELECT last_exit FROM ray.nodes WHERE resource_group = %s"
                                          " AND kind = 'head' AND last_exit LIKE 'could not start: %%'",
                                          (group,)).fetchone(), "the head to be refused", 60)[0]
        run_dir = db.execute("SELECT run_dir FROM ray.node WHERE resource_group = %s", (group,)).fetchone()[0]
        assert run_dir.startswith(str(base) + "/")
        if laid == "symlink":
            assert why.startswith(f'could not start: could not open directory "pgl_syml" on the way to run '
                                  f'directory "{run_dir}": ')
        else:
            assert why == (f'could not start: directory "pgl_fore" on the way to run directory "{run_dir}" '
                           "is not safe")
        assert processes_under([str(base), str(target)]) == []
        assert not any(target.iterdir()) if laid == "symlink" else not any(base.iterdir())
    finally:
        reload_settings(db, run_directory=None)
        drop_and_wait(db, group)
        clean()


def test_alter_and_drop_worker_group_have_their_effects(local_nodes: psycopg.Connection,
                                                        local_group: str) -> None:
    db = wait_for(lambda: connect(), "the server to accept connections")
    db.execute("SELECT ray.alter_worker_group(%s, 'cpu', min_workers => 2)", (GROUP,))
    wait_for(lambda: workers_alive(db, 2), "two workers after raising min_workers")
    wait_for_group_state(db, "READY")
    # lowering max_workers below the count deletes workers
    before = {n["node_id"] for n in nodes(db) if n["kind"] == "worker"}
    db.execute("SELECT ray.alter_worker_group(%s, 'cpu', min_workers => 1, max_workers => 1)", (GROUP,))
    remaining = wait_for(lambda: workers_alive(db, 1), "one worker after lowering max_workers")
    assert remaining[0]["node_id"] in before
    # a different resource type or spec restarts the workers: new nodes
    since = last_event_id(db)
    db.execute("SELECT ray.alter_worker_group(%s, 'cpu', disk_gb => 50)", (GROUP,))
    restarted = wait_for(lambda: (w := workers_alive(db, 1)) and w[0]["node_id"] not in before and w,
                         "the worker to restart with its new spec")
    assert restarted
    assert any("changed" in e[2] for e in events_since(db, since))
    wait_for_group_state(db, "READY")
    # dropping the worker group deletes its workers
    db.execute("SELECT ray.drop_worker_group(%s, 'cpu')", (GROUP,))
    wait_for(lambda: not [n for n in nodes(db) if n["kind"] == "worker"], "the workers to go")
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 2)", (GROUP,))
    wait_for(lambda: workers_alive(db, 1), "a worker of the new worker group")
    wait_for_group_state(db, "READY")


def test_drop_interrupts_jobs_and_leaves_nothing(local_nodes: psycopg.Connection, local_group: str) -> None:
    db = wait_for(lambda: connect(), "the server to accept connections")
    head = nodes(db)[0]
    prefix = run_directories(db)
    job_id = db.execute("SELECT ray.submit_job(%s, 'python -c \"import time; time.sleep(600)\"')",
                        (GROUP,)).fetchone()[0]
    wait_for_state(db, job_id, {"RUNNING"}, 120)
    assert driver_processes(head["port"])
    db.execute("SELECT ray.drop_resource_group(%s, force => true)", (GROUP,))
    # the job is interrupted at once, and says so
    state, message = wait_for(lambda: (r := db.execute("SELECT state, message FROM ray.jobs WHERE job_id = %s",
                                                       (job_id,)).fetchone())[0] == "STOPPED" and r,
                              "the job to be stopped", 30)
    assert "was dropped" in message
    wait_for(lambda: not db.execute("SELECT EXISTS (SELECT FROM ray.resource_group WHERE name = %s)",
                                    (GROUP,)).fetchone()[0], "the group to be removed", 120)
    assert not db.execute("SELECT count(*) FROM ray.node WHERE resource_group = %s", (GROUP,)).fetchone()[0]
    assert_all_gone(prefix, head["port"])


def test_ha_head_restarts_and_a_worker_survives(local_nodes: psycopg.Connection) -> None:
    db = wait_for(lambda: connect(), "the server to accept connections")
    name = "it-local-ha"
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (name, '{"object_store_memory_mb": 100, "ha": true}'))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 1)", (name,))
    wait_for_group_state(db, "READY", name)
    kinds = [n["kind"] for n in nodes(db, name)]
    assert sorted(kinds) == ["head", "redis", "worker"]
    head = next(n for n in nodes(db, name) if n["kind"] == "head")
    worker = next(n for n in nodes(db, name) if n["kind"] == "worker")
    # Ray would list the run as running forever: pg_ray gives it up and requeues it
    job_id = db.execute("SELECT ray.submit_job(%s, 'python -c \"import time; time.sleep(5)\"', "
                        "max_attempts => 2)", (name,)).fetchone()[0]
    wait_for_state(db, job_id, {"RUNNING"}, 120)
    since = last_event_id(db)
    os.killpg(head["pid"], signal.SIGKILL)
    wait_for(lambda: [e for e in events_since(db, since, name) if "exited" in e[2]],
             "the worker to notice the head's death", 60)
    wait_for_group_state(db, "READY", name)
    token = group_token(db, name)
    url = group_row(db, name)["dashboard_url"]
    assert http_status(url + "/api/version", token) == 200
    # the worker node kept its process and its Ray node id through the head's restart
    survivor = next(n for n in nodes(db, name) if n["kind"] == "worker")
    assert (survivor["node_id"], survivor["pid"], survivor["ray_node_id"]) == \
        (worker["node_id"], worker["pid"], worker["ray_node_id"])
    assert survivor["state"] == "ALIVE"
    assert wait_for_state(db, job_id, {"SUCCEEDED", "FAILED", "STOPPED"}, 180) == "SUCCEEDED"
    assert db.execute("SELECT attempts FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()[0] == 2
    prefix = run_directories(db, name)
    drop_and_wait(db, name)
    assert_all_gone(prefix, head["port"])
