"""Releases: a released install script never changes, and ALTER EXTENSION
pg_ray UPDATE from each released version keeps every row and gives the
catalog of a fresh install, across a real package upgrade.

For each version in extension/releases, a cluster of its own runs a copy of
PostgreSQL with that release installed (scripts/install-release builds its
library from the release's commit), and that release's worker and API fill
it: a local group whose Ray nodes run, an external group on the Ray test
head, grants, models (two versions of one), jobs in every state with their
events and logs, batch runs.  Then the package is upgraded as a DBA does it:
the current build installed over the release, the server restarted.  Under
the old schema the new library's worker leaves the catalog alone and says
once what to run, and SQL functions that reach the library refuse with that
error.  ALTER EXTENSION pg_ray UPDATE keeps every row, gives the catalog of
a fresh install (test/integration/catalog.py), and the worker resumes by
itself: it adopts the running nodes and carries every job on.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from catalog import catalog, catalog_differences, contents
from conftest import ROOT, OtherCluster, RayHead, as_role, wait_for
from test_batch_inference import joblib_bytes, train_click_model

# The sha256 of every released install script: they never change again.
FROZEN = {"0.1": "90f9ea18f8c7470d3b796ba31c6998e55ccedc14a05bdb58c4e5bfefa824956b"}
USER = "up_alice"


# Columns holding the OID of the role another column names: the update from 0.1 adds them,
# and a restore binds them to the roles of those names in the new cluster (ray._bind_roles).
ROLE_OIDS = {"ray.job": {"owner_oid": "owner"}, "ray.model": {"owner_oid": "owner"},
             "ray.resource_group_grant": {"grantee_oid": "grantee"},
             "ray.model_grant": {"grantee_oid": "grantee", "granted_by_oid": "granted_by"},
             "ray.job_run_usage": {"owner_oid": "owner"}}


def without_role_oids(rows: dict[str, list[str]]) -> dict[str, list[str]]:
    """The rows of contents() with the role OID columns left out."""
    def strip(table: str, row: str) -> str:
        values = json.loads(row, parse_float=str)
        for column in ROLE_OIDS.get(table, {}):
            values.pop(column, None)
        return json.dumps(values)
    return {table: sorted(strip(table, row) for row in table_rows) for table, table_rows in rows.items()}


def misbound_role_oids(db: psycopg.Connection) -> list[tuple[str, str, str]]:
    """Rows whose role OID is not that of the role their name column names now."""
    wrong = []
    for table, columns in ROLE_OIDS.items():
        for oid_column, name_column in columns.items():
            wrong += [(table, name_column, name) for (name,) in db.execute(
                f"SELECT {name_column} FROM {table} WHERE {oid_column} IS DISTINCT FROM ray._role_oid({name_column})")]
    return wrong


def releases() -> dict[str, str]:
    """extension/releases: version -> the commit it was released from."""
    found = {}
    for line in (ROOT / "extension/releases").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            version, commit = line.split()
            found[version] = commit
    return found


def newest_version() -> str:
    control = (ROOT / "extension/pg_ray.control").read_text()
    return next(line.split("'")[1] for line in control.splitlines() if line.startswith("default_version"))


def test_released_install_scripts_are_frozen() -> None:
    assert set(releases()) == set(FROZEN), "a released version without its frozen checksum"
    for version, commit in releases().items():
        script = (ROOT / f"extension/pg_ray--{version}.sql").read_bytes()
        assert hashlib.sha256(script).hexdigest() == FROZEN[version], \
            f"extension/pg_ray--{version}.sql changed; a released script never does"
        shipped = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:extension/pg_ray--{version}.sql"],
                                 capture_output=True, check=True).stdout
        assert shipped == script, f"extension/pg_ray--{version}.sql is not what {commit} shipped"
    assert newest_version() not in releases() or newest_version() == max(releases())


def install_release(prefix: Path, version: str) -> None:
    result = subprocess.run([str(ROOT / "scripts/install-release"), str(prefix), version],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def state(db: psycopg.Connection, job_id: int) -> str:
    return db.execute("SELECT state FROM ray.job WHERE job_id = %s", (job_id,)).fetchone()[0]


def wait_state(db: psycopg.Connection, job_id: int, wanted: str, timeout: float = 180) -> None:
    def reached() -> bool:
        now = state(db, job_id)
        assert now == wanted or now not in ("SUCCEEDED", "FAILED", "STOPPED"), \
            f"job {job_id} is {now}, not {wanted}: " + str(db.execute(
                "SELECT message FROM ray.job WHERE job_id = %s", (job_id,)).fetchone()[0])
        return now == wanted
    wait_for(reached, f"job {job_id} to be {wanted}", timeout)


def submit(db: psycopg.Connection, group: str, entrypoint: str, **arguments: Any) -> int:
    names = "".join(f", {k} => %({k})s" for k in arguments)
    return as_role(db, USER, f"SELECT ray.submit_job(%(group)s, %(entrypoint)s{names})",
                   {"group": group, "entrypoint": entrypoint, **arguments})[0]


def score(db: psycopg.Connection, target: str, mode: str = "append") -> int:
    return as_role(db, USER, "SELECT ray.batch_inference('up-local', 'up.impressions', 'ctr', %s, mode => %s)",
                   (target, mode))[0]


def owner(pid: int) -> str | None:
    """The OS user a process runs as, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
    return pwd.getpwuid(uid).pw_name


def node_pids(db: psycopg.Connection) -> dict[int, int]:
    return dict(db.execute("SELECT node_id, pid FROM ray.node WHERE pid IS NOT NULL").fetchall())


def fill(db: psycopg.Connection, cluster: OtherCluster, ray_head: RayHead) -> dict[str, int]:
    """Use the release as its users would; the job ids by the state they are left in."""
    db.execute(f"CREATE ROLE {USER} LOGIN IN ROLE ray_user")
    db.execute("CREATE ROLE up_admin LOGIN IN ROLE ray_admin")
    db.execute("INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, num_gpus, cpu_units,"
               " description) VALUES ('up2', 'CPU', 2, 2048, 0, 2, 'upgrade test')")
    db.execute("SELECT ray.create_resource_group('up-local', 'small', options => '{\"object_store_memory_mb\": 100}')")
    db.execute("SELECT ray.add_worker_group('up-local', 'cpu', 'CPU', 'up2', 1, 1)")
    db.execute(f"SELECT ray.grant_usage('up-local', '{USER}')")
    db.execute("SELECT ray.register_cluster('up-ext', %s, %s)", (ray_head.url, ray_head.token))
    db.execute("SELECT ray.grant_usage('up-ext', 'public')")
    for seed in (7, 8):  # two versions of one model
        as_role(db, USER, "SELECT ray.register_model('ctr', 'sklearn', %s::bytea)",
                (joblib_bytes(train_click_model(seed)),))
    as_role(db, USER, "SELECT ray.register_model('remote', 'http', uri => 'http://127.0.0.1:9/v1')")
    db.execute(f"CREATE SCHEMA up AUTHORIZATION {USER}")
    db.execute("CREATE TABLE up.impressions (id bigint PRIMARY KEY, age integer, price double precision)")
    db.execute("INSERT INTO up.impressions SELECT g, 18 + g % 60, (g * 37 % 1000) / 10.0"
               " FROM generate_series(1, 500) g")
    db.execute(f"GRANT SELECT ON up.impressions TO {USER}")
    wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = 'up-local'"
                                ).fetchone()[0], "the local group to be READY", 300)
    wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = 'up-ext'"
                                ).fetchone()[0], "the external group to be READY")

    jobs = {"SUCCEEDED": submit(db, "up-ext", "echo upgrade-ok"), "FAILED": submit(db, "up-ext", "exit 3")}
    wait_state(db, jobs["SUCCEEDED"], "SUCCEEDED")
    wait_state(db, jobs["FAILED"], "FAILED")
    jobs["STOPPED"] = submit(db, "up-ext", "sleep 600")
    wait_state(db, jobs["STOPPED"], "RUNNING")
    as_role(db, USER, "SELECT ray.stop_job(%s)", (jobs["STOPPED"],))
    wait_state(db, jobs["STOPPED"], "STOPPED")
    jobs["batch SUCCEEDED"] = score(db, "up.scores")
    wait_state(db, jobs["batch SUCCEEDED"], "SUCCEEDED", 300)
    jobs["RUNNING"] = submit(db, "up-ext", "sleep 600")
    wait_state(db, jobs["RUNNING"], "RUNNING")

    # a run whose target is locked waits in PUBLISHING
    locker = cluster.connect()
    locker.execute("BEGIN")
    locker.execute("LOCK TABLE up.scores IN ACCESS EXCLUSIVE MODE")
    jobs["PUBLISHING"] = score(db, "up.scores")
    wait_state(db, jobs["PUBLISHING"], "PUBLISHING", 300)
    # no GPU on the head: pending in Ray until Ray gives up (a minute on the test head)
    jobs["PENDING"] = submit(db, "up-ext", "sleep 1", entrypoint_num_gpus=1)
    wait_state(db, jobs["PENDING"], "PENDING")

    # the worker paused before it sends a submission: one job SUBMITTING, one QUEUED
    db.execute("ALTER SYSTEM SET pg_ray.fault_pause_at = 'before_submit'")
    db.execute("SELECT pg_reload_conf()")
    wait_for(lambda: cluster.connect().execute("SHOW pg_ray.fault_pause_at").fetchone()[0] == "before_submit",
             "the fault point to be armed")
    jobs["SUBMITTING"] = submit(db, "up-ext", "echo submitted-after-the-update")
    wait_state(db, jobs["SUBMITTING"], "SUBMITTING")
    wait_for(lambda: db.execute("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE"
                                " 'pg_ray: paused at fault point before_submit%')").fetchone()[0],
             "the worker to pause")
    jobs["QUEUED"] = submit(db, "up-ext", "echo queued-before-the-update")
    # not reloaded: the worker stays paused until the server stops
    db.execute("ALTER SYSTEM RESET pg_ray.fault_pause_at")
    locker.close()
    return jobs


@dataclass
class Release:
    """A cluster filled by a release of pg_ray, then given the current package."""
    version: str
    newest: str
    cluster: OtherCluster
    jobs: dict[str, int]
    states: dict[int, str]
    pids: dict[int, int]


@pytest.fixture(scope="module", params=list(releases()))
def release(request: pytest.FixtureRequest, ray_head: RayHead) -> Iterator[Release]:
    """A cluster that ran the release, with the current package installed over it
    and restarted; the update itself is left to the tests."""
    version = request.param
    prefix = Path(f"/tmp/pg_ray_release_{version}")
    install_release(prefix, version)
    major = subprocess.check_output(["pg_config", "--version"], text=True).split()[1].split(".")[0]
    cluster = OtherCluster(f"up{version.replace('.', '')}", bindir=str(prefix / f"usr/lib/postgresql/{major}/bin"),
                           conf="pg_ray.local_nodes = on\npg_ray.observe_interval = '500ms'\npg_ray.error_retry_seconds = 1\n"
                                "pg_ray.port_range_start = 42000\npg_ray.port_range_end = 42999\n")
    cluster.script("destroy")
    cluster.start()
    jobs: dict[str, int] = {}
    try:
        db = cluster.connect()
        db.execute("CREATE EXTENSION pg_ray")
        assert db.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_ray'").fetchone()[0] == version
        jobs = fill(db, cluster, ray_head)
        states = {job_id: state(db, job_id) for job_id in jobs.values()}
        assert sorted(set(states.values())) == sorted(
            {"QUEUED", "SUBMITTING", "PENDING", "RUNNING", "PUBLISHING", "SUCCEEDED", "FAILED", "STOPPED"})
        pids = node_pids(db)
        assert len(pids) == 2
        db.close()
        # the package is upgraded; the server restarts with the new library
        cluster.script("stop")
        install_release(prefix, "current")
        cluster.script("start")
        yield Release(version, newest_version(), cluster, jobs, states, pids)
    finally:
        stop_jobs_on_the_ray_head(cluster, jobs)
        cluster.script("destroy")


def test_under_the_old_schema_the_worker_waits_and_functions_refuse(release: Release) -> None:
    db = release.cluster.connect()
    check_the_old_schema_is_left_alone(release.cluster, db, release.version, release.newest, release.states)
    # the nodes of the local group run on, untouched
    assert node_pids(db) == release.pids
    for pid in release.pids.values():
        os.kill(pid, 0)


def test_update_keeps_every_row_and_gives_the_catalog_of_a_fresh_install(release: Release) -> None:
    db = release.cluster.connect()
    with db.transaction():
        before = contents(db)
        db.execute("ALTER EXTENSION pg_ray UPDATE")
        after = contents(db, list(before))
        # the plans of unfinished batch runs gain the model registration they run (0.2)
        after["ray.batch_run"] = sorted(r[0] for r in db.execute(
            "SELECT (to_jsonb(b) #- '{plan,model,owner}' #- '{plan,model,registered_at}')::text FROM ray.batch_run b"))
        # local groups an OS user of their own each, external ones none
        groups = [json.loads(r, parse_float=str) for r in after["ray.resource_group"]]
        os_users = {g["name"]: (g["provider"], g.pop("os_user")) for g in groups}
        after["ray.resource_group"] = sorted(json.dumps(g) for g in groups)
        # jobs what admission needs (0.2): priority 0, no requeues by Ray, no worker group, and what
        # each asks for: a script its entrypoint's CPUs and GPUs (one CPU if none), a batch run its replicas'
        jobs = [json.loads(r, parse_float=str) for r in after["ray.job"]]
        admission = {j["job_id"]: tuple(j.pop(k) for k in ("priority", "ray_requeues", "worker_group",
                                                          "cpus_asked", "gpus_asked")) for j in jobs}
        after["ray.job"] = sorted(json.dumps(j) for j in jobs)
        # nodes their disk use (0.2), not measured yet
        nodes = [json.loads(r, parse_float=str) for r in after["ray.node"]]
        disk = [(n.pop("disk_used_bytes"), n.pop("disk_measured_at")) for n in nodes]
        after["ray.node"] = sorted(json.dumps(n) for n in nodes)
        expected_asks = dict(db.execute(
            "SELECT j.job_id, CASE WHEN j.kind = 'script'"
            " THEN ARRAY[coalesce(j.entrypoint_num_cpus, 1), coalesce(j.entrypoint_num_gpus, 0)]"
            " ELSE ARRAY[(b.plan #>> '{options,concurrency}')::numeric * (b.plan #>> '{options,num_cpus}')::numeric,"
            " (b.plan #>> '{options,concurrency}')::numeric * (b.plan #>> '{options,num_gpus}')::numeric] END"
            " FROM ray.job j LEFT JOIN ray.batch_run b USING (job_id)").fetchall())
        # and owners and grantees their OIDs, those of the roles of their names
        misbound = misbound_role_oids(db)
        unpinned = db.execute("SELECT count(*) FROM ray.batch_run b JOIN ray.job j USING (job_id)"
                              " WHERE j.state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED')"
                              " AND NOT b.plan -> 'model' ? 'registered_at'").fetchone()[0]
        # each node running is metered from its start (0.2)
        lifetimes = dict(db.execute(
            "SELECT l.node_id, l.started_at = n.started_at AND l.ended_at IS NULL"
            " FROM ray.node_lifetime l JOIN ray.node n USING (node_id)").fetchall())
        running_nodes = {r[0] for r in db.execute(
            "SELECT node_id FROM ray.node WHERE pid IS NOT NULL AND kind IN ('head', 'worker')")}
        updated = catalog(db)
    # finished jobs' working directories go: no attempt can need them (0.2)
    finished = {json.loads(r)["job_id"] for r in before["ray.job"]
                if json.loads(r)["state"] in ("SUCCEEDED", "FAILED", "STOPPED")}
    kept_packages = [r for r in before["ray.job_package"] if json.loads(r)["job_id"] not in finished]
    assert len(kept_packages) < len(before["ray.job_package"])
    before["ray.job_package"] = kept_packages
    assert without_role_oids(after) == without_role_oids(before)
    assert running_nodes and set(lifetimes) == running_nodes and all(lifetimes.values())
    assert disk and all(d == (None, None) for d in disk)
    local = [user for provider, user in os_users.values() if provider == "local"]
    assert local and all(local) and len(set(local)) == len(local)
    assert all(user is None for provider, user in os_users.values() if provider != "local")
    assert misbound == []
    assert unpinned == 0
    assert {job_id: a[:3] for job_id, a in admission.items()} == {job_id: (0, 0, None) for job_id in admission}
    assert {job_id: [float(x) for x in a[3:]] for job_id, a in admission.items()} == \
        {job_id: [float(x) for x in expected_asks[job_id]] for job_id in admission}
    assert db.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_ray'").fetchone()[0] == release.newest
    with db.transaction():
        db.execute("DROP EXTENSION pg_ray CASCADE")
        db.execute("CREATE EXTENSION pg_ray")
        fresh = catalog(db)
        raise psycopg.Rollback()
    differences = catalog_differences(fresh, updated)
    assert not differences, "\n".join(differences)


def test_after_the_update_the_worker_resumes_by_itself(release: Release) -> None:
    check_the_worker_resumes(release.cluster.connect(), release.jobs, release.pids)


def check_the_old_schema_is_left_alone(cluster: OtherCluster, db: psycopg.Connection, version: str,
                                       newest: str, states: dict[int, str]) -> None:
    """Under the old schema the worker changes nothing and says once why;
    functions that reach the library refuse."""
    message = f"pg_ray library {newest} needs schema version {newest}, found {version}"
    rounds = wait_for(lambda: (r := db.execute("SELECT round_errors FROM ray.worker_status()").fetchone()[0]) >= 3
                      and r, "the worker's rounds under the old schema")
    assert db.execute("SELECT last_error FROM ray.worker_status()").fetchone()[0] == message
    # a round's error may name another team's work: a ray_user does not see it
    db.execute("CREATE ROLE release_user IN ROLE ray_user")
    db.execute("SET ROLE release_user")
    try:
        assert db.execute("SELECT last_error, round_errors >= 3 FROM ray.worker_status()").fetchone() == (None, True)
    finally:
        db.execute("RESET ROLE")
        db.execute("DROP ROLE release_user")
    assert rounds >= 3 and cluster.server_log().count("LOG:  " + message) == 1
    assert "HINT:  Run ALTER EXTENSION pg_ray UPDATE." in cluster.server_log()
    for job_id, was in states.items():
        assert state(db, job_id) == was
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as refused:
        db.execute("SELECT ray.wait_job(1, '1 second')")
    assert refused.value.diag.message_primary == message
    assert refused.value.diag.message_hint == "Run ALTER EXTENSION pg_ray UPDATE."


def check_the_worker_resumes(db: psycopg.Connection, jobs: dict[str, int], pids: dict[int, int]) -> None:
    """After the update the worker goes on by itself, as after a restart."""
    errors, rounds = db.execute("SELECT round_errors, rounds FROM ray.worker_status()").fetchone()
    wait_for(lambda: db.execute("SELECT rounds FROM ray.worker_status()").fetchone()[0] >= rounds + 3,
             "the worker to resume")
    assert db.execute("SELECT round_errors FROM ray.worker_status()").fetchone()[0] == errors
    # 0.1 ran the nodes as the server's OS user: each is stopped and started again, once, as
    # the group's own (security.md); nothing of the old ones is left
    os_user, = db.execute("SELECT os_user FROM ray.resource_group WHERE name = 'up-local'").fetchone()
    wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = 'up-local'"
                                ).fetchone()[0] and set(node_pids(db)) == set(pids)
             and all(owner(pid) == os_user for pid in node_pids(db).values()),
             "the local group to be READY as its OS user", 180)
    assert not set(node_pids(db).values()) & set(pids.values())
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # every job goes on from where it was: each submitted once
    for name in ("SUBMITTING", "QUEUED", "PUBLISHING"):
        wait_state(db, jobs[name], "SUCCEEDED", 300)
    assert db.execute("SELECT count(*) FROM up.scores").fetchone()[0] == 1000
    assert state(db, jobs["RUNNING"]) == "RUNNING"
    log = db.execute("SELECT log FROM ray.job_log WHERE job_id = %s", (jobs["SUBMITTING"],)).fetchone()[0]
    assert "submitted-after-the-update" in log


def stop_jobs_on_the_ray_head(cluster: OtherCluster, jobs: dict[str, int]) -> None:
    """The sleeping jobs run on the shared Ray test head: stop them there, as far
    as the cluster still can (this runs after failures too)."""
    if not jobs:
        return
    try:
        db = cluster.connect()
        for name in ("RUNNING", "PENDING"):
            db.execute("SELECT ray.stop_job(%s)", (jobs[name],))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                state(db, jobs[n]) in ("SUCCEEDED", "FAILED", "STOPPED") for n in ("RUNNING", "PENDING")):
            time.sleep(0.2)
    except psycopg.Error:
        pass  # the failure that brought us here is what the test reports


# Tables pg_dump leaves out, and what a restore has in them instead: the
# installation's id is new, local nodes are processes of the old server, and
# the credentials of a run in flight belong to its attempt.
NOT_DUMPED = {"ray.installation", "ray.node", "ray.batch_run_secret"}


def run(*command: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "ERROR" not in result.stderr, \
        f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def pg_env(cluster: OtherCluster) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **cluster.settings()}


@pytest.mark.parametrize("form", ["custom", "plain"])
def test_a_backup_restores_into_a_new_cluster(release: Release, ray_head: RayHead, tmp_path: Path,
                                              form: str) -> None:
    """pg_dump of a database where pg_ray has run restores with no error into a
    new cluster, every table as it was; the worker then takes the restored
    rows as state after a crash and submits nothing twice."""
    source = release.cluster.connect()
    target = OtherCluster("restore")
    target.script("destroy")
    target.start()
    try:
        # the new server's worker is held before its rounds until the restore is compared
        held = target.connect()
        held.execute("ALTER SYSTEM SET pg_ray.fault_pause_at = 'before_round'")
        held.execute("SELECT pg_reload_conf()")
        wait_for(lambda: held.execute("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query ="
                                      " 'pg_ray: paused at fault point before_round')").fetchone()[0],
                 "the new server's worker to be held")
        # the dump and the rows compared with it are of one snapshot
        with source.transaction():
            source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            snapshot = source.execute("SELECT pg_export_snapshot()").fetchone()[0]
            dumped = contents(source)
            dumped_tables = {r[0] for r in source.execute(
                "SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'pg_ray'")}
            dump = tmp_path / ("pg_ray.dump" if form == "custom" else "pg_ray.sql")
            run("pg_dump", "--snapshot", snapshot, "-F", "c" if form == "custom" else "p", "-f", str(dump),
                "postgres", env=pg_env(release.cluster))
            globals_sql = run("pg_dumpall", "--globals-only", env=pg_env(release.cluster))
        assert set(dumped) - dumped_tables == NOT_DUMPED

        # as a DBA restores: the roles first, then the database
        (tmp_path / "globals.sql").write_text(globals_sql)
        subprocess.run(["psql", "-q", "-f", str(tmp_path / "globals.sql"), "postgres"],
                       env=pg_env(target), capture_output=True, check=True)
        if form == "custom":
            run("pg_restore", "--exit-on-error", "-d", "postgres", str(dump), env=pg_env(target))
        else:
            run("psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(dump), "postgres", env=pg_env(target))

        # while the worker is held before its first round: every table as it was
        db = target.connect()
        restored = without_role_oids(contents(db))
        for table, rows in without_role_oids(dumped).items():
            if table not in NOT_DUMPED:
                assert restored[table] == rows, f"{table} differs after the restore"
        # owners and grantees are the roles of their names in the new cluster
        assert misbound_role_oids(db) == []
        assert db.execute("SELECT count(*) FROM ray.job WHERE owner_oid IS NULL").fetchone()[0] == 0
        # (the roles have other OIDs there: the binding is the restore's, not the dump's)
        owner_oids = "SELECT DISTINCT owner_oid FROM ray.job ORDER BY 1"
        assert db.execute(owner_oids).fetchall() != source.execute(owner_oids).fetchall()
        assert restored["ray.node"] == [] and restored["ray.batch_run_secret"] == []
        assert db.execute("SELECT id FROM ray.installation").fetchone()[0] != \
            source.execute("SELECT id FROM ray.installation").fetchone()[0]
        for sequence in ("ray.job_id_seq", "ray.job_event_id_seq", "ray.resource_group_event_id_seq"):
            assert db.execute(f"SELECT last_value FROM {sequence}").fetchone() == \
                source.execute(f"SELECT last_value FROM {sequence}").fetchone()
        assert db.execute("SELECT count(*) FROM up.scores").fetchone()[0] == \
            source.execute("SELECT count(*) FROM up.scores").fetchone()[0]

        # the worker goes on: restored rows are state after a crash, not new work
        install = db.execute("SELECT id FROM ray.installation").fetchone()[0]
        db.execute("ALTER SYSTEM RESET pg_ray.fault_pause_at")
        db.execute("SELECT pg_reload_conf()")
        wait_for(lambda: db.execute("SELECT rounds >= 3 FROM ray.worker_status()").fetchone()[0],
                 "the worker's rounds after the restore")
        states = dict(db.execute("SELECT job_id, state FROM ray.job").fetchall())
        for job_id, was in release.states.items():
            if was in ("SUCCEEDED", "FAILED", "STOPPED"):
                assert states[job_id] == was
        # the run still going on the Ray head is found there, not submitted again
        assert states[release.jobs["RUNNING"]] == "RUNNING"
        assert not [j for j in ray_head.rest("GET", "/api/jobs/")
                    if (j.get("submission_id") or "").startswith(f"pgray-{install}-")]
    finally:
        target.script("destroy")
