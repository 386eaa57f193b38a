"""A local group with several worker groups, on real nodes: each worker group scales on its own
demand, a worker over its disk_gb is replaced with an empty disk, a worker type change restarts
its workers as GPU workers (logical GPUs where the host has none) with one reading of the GPU
distribution unit, and a head spec change restarts the head and requeues the run it interrupted."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import reload_settings, wait_for, wait_for_state
from test_local import events_since, group_token, last_event_id, nodes, wait_for_group_state

GROUP = "it-wgs"
FINAL = {"SUCCEEDED", "FAILED", "STOPPED"}

# two tasks at once, each asking what one node of a worker group has: one must wait for a new node
TWO_TASKS = (
    "python -c \"import ray, time; ray.init()\n"
    "@ray.remote({options})\n"
    "def f(i):\n"
    "    {check}time.sleep(8); return i\n"
    "print(ray.get([f.remote(i) for i in range(2)]))\""
)


def alive(db: psycopg.Connection, worker_group: str) -> list[dict[str, Any]]:
    """The ALIVE workers of a worker group."""
    return [n for n in nodes(db, GROUP)
            if n["worker_group"] == worker_group and n["state"] == "ALIVE"]


def settled(db: psycopg.Connection, counts: dict[str, int]) -> bool:
    """Each worker group has that many workers, all ALIVE, and no other node of a worker
    group is left (starting or stopping)."""
    workers = [n for n in nodes(db, GROUP) if n["kind"] == "worker"]
    return all(len([n for n in workers if n["worker_group"] == wg and n["state"] == "ALIVE"]) == count
               for wg, count in counts.items()) and len(workers) == sum(counts.values())


def scale_ups(db: psycopg.Connection, since: int) -> list[str]:
    return [message for _, actor, message in events_since(db, since, GROUP)
            if actor == "pg_ray autoscaler" and " up from " in message]


def driver_node(db: psycopg.Connection, job_id: int) -> str:
    """The Ray node a job's driver ran on, as Ray's job record says."""
    url, sid = db.execute("SELECT g.dashboard_url, j.ray_submission_id FROM ray.job j "
                          "JOIN ray.resource_group g ON g.name = j.resource_group WHERE j.job_id = %s",
                          (job_id,)).fetchone()
    request = urllib.request.Request(f"{url}/api/jobs/{sid}",
                                     headers={"Authorization": f"Bearer {group_token(db, GROUP)}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["driver_node_id"]


@pytest.fixture(scope="module")
def group(local_nodes: psycopg.Connection) -> str:
    """A head and two CPU worker groups of different specs, each of 1 to 2 workers; the small
    workers have the least disk a worker group may have."""
    db = local_nodes
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (GROUP, '{"object_store_memory_mb": 100, "idle_timeout_seconds": 10}'))
    db.execute("SELECT ray.add_worker_group(%s, 'small', 'CPU', 'small', 1, 2, disk_gb => 30)", (GROUP,))
    db.execute("SELECT ray.add_worker_group(%s, 'big', 'CPU', 'm.xlarge', 1, 2)", (GROUP,))
    wait_for_group_state(db, "READY", GROUP)
    return GROUP


def test_each_worker_group_scales_on_its_own_demand(local_nodes: psycopg.Connection, group: str) -> None:
    db = local_nodes
    assert sorted((n["worker_group"], n["cpus"]) for n in nodes(db, GROUP) if n["kind"] == "worker") == \
        [("big", 4), ("small", 1)]
    # 4-CPU tasks: only the big workers hold one, so only that worker group grows
    since = last_event_id(db)
    job_id = db.execute("SELECT ray.submit_job(%s, %s)",
                        (GROUP, TWO_TASKS.format(options="num_cpus=4", check=""))).fetchone()[0]
    wait_for(lambda: len(alive(db, "big")) == 2, "a second big worker", 120)
    assert wait_for_state(db, job_id, FINAL, 120) == "SUCCEEDED"
    ups = scale_ups(db, since)
    assert ups and all("worker group big up from 1 to 2" in m and '"CPU": 4' in m for m in ups), ups
    assert len(alive(db, "small")) == 1
    wait_for(lambda: settled(db, {"small": 1, "big": 1}), "the big workers to idle back to one", 120)

    # 1-CPU tasks asking for the small workers' resource: the big worker, with CPUs to spare,
    # does not take them, and only the small worker group grows
    since = last_event_id(db)
    job_id = db.execute("SELECT ray.submit_job(%s, %s)", (GROUP, TWO_TASKS.format(
        options="num_cpus=1, resources={'pgray-worker-group:small': 0.001}", check=""))).fetchone()[0]
    wait_for(lambda: len(alive(db, "small")) == 2, "a second small worker", 120)
    assert wait_for_state(db, job_id, FINAL, 120) == "SUCCEEDED"
    ups = scale_ups(db, since)
    assert ups and all("worker group small up from 1 to 2" in m for m in ups), ups
    assert len(alive(db, "big")) == 1
    wait_for(lambda: settled(db, {"small": 1, "big": 1}), "the small workers to idle back to one", 120)


# a task on a small worker that takes 31 GiB of its node's disk (fallocate: real blocks, at once)
# and holds on; the driver, on the head, outlives the node's replacement
FILL_DISK = (
    "python -c \"import os, time, ray; ray.init()\n"
    "@ray.remote(num_cpus=0, max_retries=0, resources={'pgray-worker-group:small': 0.001})\n"
    "def fill():\n"
    "    path = os.path.join(ray._private.worker.global_worker.node.get_session_dir_path(), 'fill')\n"
    "    with open(path, 'wb') as f:\n"
    "        os.posix_fallocate(f.fileno(), 0, 31 * 2 ** 30)\n"
    "    time.sleep(600)\n"
    "try:\n"
    "    ray.get(fill.remote())\n"
    "except Exception as error:\n"
    "    print('the task ended with its node:', type(error).__name__)\""
)


def test_a_worker_over_its_disk_is_replaced_with_an_empty_one(local_nodes: psycopg.Connection,
                                                              group: str) -> None:
    """ray.nodes shows each worker's disk use against its disk_gb; one that goes over is
    replaced, as Kubernetes evicts a pod over its ephemeral storage, and starts empty."""
    db = local_nodes
    reload_settings(db, disk_check_interval="1s")
    try:
        measured = wait_for(lambda: [n for n in alive(db, "small") if n["disk_used_gb"] is not None],
                            "the small worker's disk use", 60)[0]
        used, old_dir = db.execute("SELECT disk_used_bytes, run_dir FROM ray.node WHERE node_id = %s",
                                   (measured["node_id"],)).fetchone()
        assert measured["disk_gb"] == 30 and 0 < used < 30 * 2 ** 30, used
        since = last_event_id(db)
        job_id = db.execute("SELECT ray.submit_job(%s, %s)", (GROUP, FILL_DISK)).fetchone()[0]
        wait_for(lambda: [m for _, _, m in events_since(db, since, GROUP)
                          if "its disk use of 31." in m and "over the 30 GB of its worker group" in m],
                 "the worker over its disk to be replaced", 180)
        replaced = wait_for(lambda: [n for n in alive(db, "small")
                                     if n["node_id"] != measured["node_id"] and n["disk_used_gb"] is not None],
                            "a new small worker in its place, measured", 180)[0]
        assert replaced["disk_used_gb"] < 1
        # the old node's slot went, and its run directory (the 31 GiB) with it
        wait_for(lambda: not [n for n in nodes(db, GROUP) if n["node_id"] == measured["node_id"]],
                 "the old node's slot to go", 120)
        assert os.path.isdir(os.path.dirname(old_dir)) and not os.path.exists(old_dir)
        assert not os.path.exists(old_dir + ".log")
        assert wait_for_state(db, job_id, FINAL, 180) == "SUCCEEDED"
        wait_for_group_state(db, "READY", GROUP)
    finally:
        reload_settings(db, disk_check_interval=None)


def test_a_worker_type_change_restarts_them_as_gpu_workers(local_nodes: psycopg.Connection,
                                                           group: str) -> None:
    """CPU to GPU with a distribution unit of 1/3: each worker has one GPU in Ray (logical
    here), the fit check allows 1 and no more, a driver asking for it runs on a GPU worker,
    and GPU demand grows the GPU worker group, one GPU per worker."""
    db = local_nodes
    before = {n["node_id"] for n in alive(db, "big")}
    db.execute("SELECT ray.alter_worker_group(%s, 'big', spec => 'gpu.small', resource_type => 'GPU', "
               "gpu_distribution_unit => 1.0/3)", (GROUP,))
    restarted = wait_for(lambda: (w := alive(db, "big")) and not {n["node_id"] for n in w} & before and w,
                         "the big workers to restart as GPU workers", 180)
    assert [n["gpus"] for n in restarted] == [1]
    wait_for_group_state(db, "READY", GROUP)
    assert db.execute("SELECT cpus, gpus FROM ray._group_capacity(%s)", (GROUP,)).fetchone() == (10, 2)

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="can hold the entrypoint"):
        db.execute("SELECT ray.submit_job(%s, 'true', entrypoint_num_gpus => 1.5)", (GROUP,))
    job_id = db.execute("SELECT ray.submit_job(%s, 'true', entrypoint_num_gpus => 1)", (GROUP,)).fetchone()[0]
    assert wait_for_state(db, job_id, FINAL, 180) == "SUCCEEDED"
    gpu_nodes = {n["ray_node_id"] for n in alive(db, "big")}
    assert driver_node(db, job_id) in gpu_nodes

    # two tasks of one GPU each, each checking that Ray gave it one: a second GPU worker
    since = last_event_id(db)
    job_id = db.execute("SELECT ray.submit_job(%s, %s)", (GROUP, TWO_TASKS.format(
        options="num_gpus=1", check="assert len(ray.get_gpu_ids()) == 1; "))).fetchone()[0]
    wait_for(lambda: len(alive(db, "big")) == 2, "a second GPU worker", 120)
    assert wait_for_state(db, job_id, FINAL, 120) == "SUCCEEDED"
    ups = scale_ups(db, since)
    assert ups and all("worker group big up from 1 to 2" in m and '"GPU": 1' in m for m in ups), ups
    assert [n["gpus"] for n in alive(db, "big")] == [1, 1]
    assert len(alive(db, "small")) == 1


def test_a_head_spec_change_restarts_the_head_and_requeues_its_run(local_nodes: psycopg.Connection,
                                                                   group: str) -> None:
    """As docs/sql.md says: with force, the head restarts with its new spec, the run on it is
    given up on and the job runs again as a new attempt."""
    db = local_nodes
    head_before = [n for n in nodes(db, GROUP) if n["kind"] == "head"][0]
    job_id = db.execute("SELECT ray.submit_job(%s, 'sleep 20', max_attempts => 2)", (GROUP,)).fetchone()[0]
    assert wait_for_state(db, job_id, {"RUNNING"} | FINAL, 180) == "RUNNING"
    with pytest.raises(psycopg.errors.ObjectInUse, match="restarting the head node would interrupt a job"):
        db.execute("SELECT ray.alter_resource_group(%s, head_spec => 'm.xlarge')", (GROUP,))
    db.execute("SELECT ray.alter_resource_group(%s, head_spec => 'm.xlarge', force => true)", (GROUP,))
    # the head's slot stays; its process and Ray node are new
    wait_for(lambda: [n for n in nodes(db, GROUP) if n["kind"] == "head" and n["state"] == "ALIVE"
                      and n["spec"] == "m.xlarge" and n["pid"] != head_before["pid"]
                      and n["ray_node_id"] not in (None, head_before["ray_node_id"])],
             "the head to restart with its new spec", 180)
    assert wait_for_state(db, job_id, FINAL, 240) == "SUCCEEDED"
    attempts, requeues = db.execute("SELECT attempts, ray_requeues FROM ray.job WHERE job_id = %s",
                                    (job_id,)).fetchone()
    assert (attempts, requeues) == (2, 0)
    wait_for_group_state(db, "READY", GROUP)
    # and users who may use the group read why it restarted
    db.execute("SELECT ray.grant_usage(%s, 'public')", (GROUP,))
    messages = [m for (m,) in db.execute(
        "SELECT message FROM ray.resource_group_events WHERE resource_group = %s", (GROUP,)).fetchall()]
    assert any("head spec small -> m.xlarge" in m for m in messages), messages


LAUNCHER = subprocess.check_output(["pg_config", "--pkglibdir"], text=True).strip() + "/pg_ray_launch"


def launch(*args: str) -> subprocess.CompletedProcess:
    """Run the launcher as the server's OS user, the only one that may."""
    return subprocess.run(["runuser", "-u", "postgres", "--", LAUNCHER, *args],
                          capture_output=True, text=True, timeout=60)


def test_the_launcher_counts_and_empties_a_hostile_run_directory(tmp_path: Path) -> None:
    """What a tenant may leave in its run directory: a chain deeper than the walks go, a
    directory it closed to itself (and the run directory too), a link to a file of someone
    else's, a name with a newline, a name in the way of the walk's own.
    disk-usage counts what it can (the blocks, as the user), empty-dir removes it all, follows
    no link, and tells what it could not remove in one line, never a line per entry."""
    user = "pgray-g31"
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    outside = tmp_path / "not-the-tenants"
    outside.write_text("keep me")
    base = Path(tempfile.mkdtemp(prefix="launch-", dir="/tmp"))
    run_dir = base / "n1"
    try:
        os.chmod(base, 0o711)
        run_dir.mkdir(mode=0o700)
        deep = run_dir
        for _ in range(200):
            deep = deep / "d"
        deep.mkdir(parents=True)
        (deep / "bottom").write_bytes(b"x" * 4096)
        closed = run_dir / "closed"
        closed.mkdir()
        (closed / "inside").write_bytes(os.urandom(1 << 20))
        (run_dir / "link").symlink_to(outside)
        (run_dir / "new\nline").write_text("x")
        with open(run_dir / "sparse", "wb") as f:
            f.truncate(1 << 30)
        # a name the deep chain's moves would take, planted in the way
        (run_dir / ".pg_ray_deep_0").mkdir()
        (run_dir / ".pg_ray_deep_0" / "planted").write_text("x")
        for root, dirs, files in os.walk(run_dir):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, gid)
        os.chown(run_dir, uid, gid)
        os.chmod(closed, 0)
        # and the run directory itself closed to its owner
        os.chmod(run_dir, 0)

        counted = launch("disk-usage", user, str(run_dir))
        assert counted.returncode == 0, counted.stderr
        # the sparse gigabyte counts what it holds; the closed directory's megabyte is not read
        assert 0 < int(counted.stdout) < 1 << 20
        emptied = launch("empty-dir", user, str(run_dir))
        assert emptied.returncode == 0, emptied.stderr
        assert os.listdir(run_dir) == [] and outside.read_text() == "keep me"

        # what the user may not remove (a file of root's in its directory) is told once
        (run_dir / "roots").mkdir()
        for i in range(50):
            (run_dir / "roots" / f"f{i}").write_text("x")
        os.chown(run_dir / "roots", 0, 0)
        refused = launch("empty-dir", user, str(run_dir))
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert "could not remove 51 entries" in refused.stderr
        # and another user's directory, or a link, is refused outright
        assert launch("disk-usage", user, str(tmp_path)).returncode == 2
        (base / "alias").symlink_to(run_dir)
        assert launch("empty-dir", user, str(base / "alias")).returncode == 2
    finally:
        shutil.rmtree(base, ignore_errors=True)
