"""Batch inference on a real local resource group, end to end.

One group with one worker node is shared by the tests of this file.  Each
test scores a small table with a model of a kind (sklearn, onnx, python,
http), through ray.batch_inference as a ray_user, and checks the target
against what the same model computes here, the modes (append, overwrite,
upsert), that the run reads with its owner's privileges through a role that
lives only as long as the run, that stopped or killed runs publish nothing
and their retries publish every row once, and that pg_cron can schedule it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import joblib
import numpy as np
import psycopg
import pytest
from sklearn.linear_model import LogisticRegression

from conftest import RayHead, as_role, connect, reload_settings, run_client, wait_for, wait_for_worker
from fake_openai import FakeOpenAI

GROUP = "it-batch"
USER = "bi_alice"
ROWS = 3000
RUN_TIMEOUT = "5 minutes"


def train_click_model(seed: int = 7) -> LogisticRegression:
    """A click model on synthetic (age, price) impressions."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(18, 80, 2000), rng.uniform(0, 100, 2000)])
    y = (x[:, 0] * 0.05 - x[:, 1] * 0.03 + rng.normal(0, 1, 2000) > 0.5).astype(int)
    return LogisticRegression().fit(x, y)


def joblib_bytes(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def batch(db: psycopg.Connection, target: str, model: str = "ctr", source: str = "bi.impressions",
          function: str = "batch_inference", **arguments: Any) -> Any:
    """ray.batch_inference (or another function of its arguments) as the test user: the job id."""
    names = ", ".join(f"{k} => %({k})s" for k in arguments)
    sql = (f"SELECT ray.{function}(%(group)s, %(source)s, %(model)s, %(target)s"
           f"{', ' + names if names else ''})")
    return as_role(db, USER, sql, {"group": GROUP, "source": source, "model": model, "target": target,
                             **arguments})[0]


def register_python_model(db: psycopg.Connection, name: str, files: dict[str, str], options: str) -> None:
    """Register, as the test user, a python model kept in the database as the zip of these files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    as_role(db, USER, "SELECT ray.register_model(%s, 'python', %s::bytea, %s)", (name, buffer.getvalue(), options))


def finish(db: psycopg.Connection, job_id: int) -> dict[str, Any]:
    """Wait for the job to end and return its row of ray.jobs."""
    db.execute("SELECT ray.wait_job(%s, %s)", (job_id, RUN_TIMEOUT))
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()
    assert row is not None
    return row


def succeeded(db: psycopg.Connection, job_id: int) -> dict[str, Any]:
    row = finish(db, job_id)
    if row["state"] != "SUCCEEDED":
        log = db.execute("SELECT ray.job_logs(%s)", (job_id,)).fetchone()[0]
        pytest.fail(f"job {job_id} is {row['state']}: {row['message']}\n{log}")
    return row


def predictions(db: psycopg.Connection, target: str) -> dict[int, Any]:
    return dict(db.execute(f"SELECT id, prediction FROM {target} ORDER BY id").fetchall())


def features(db: psycopg.Connection) -> tuple[np.ndarray, np.ndarray]:
    rows = db.execute("SELECT id, age, price FROM bi.impressions ORDER BY id").fetchall()
    return (np.array([r[0] for r in rows]), np.array([[r[1], r[2]] for r in rows], dtype=float))


def run_roles(db: psycopg.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'pgray\\_run\\_%'")]


def staging_tables(db: psycopg.Connection) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'ray_staging'::regnamespace")]


@pytest.fixture(scope="module")
def bi(local_nodes: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The shared group, the test user, a source table and a click model."""
    db = local_nodes
    db.execute("INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, num_gpus, cpu_units, description)"
               " VALUES ('bi4', 'CPU', 4, 4096, 0, 4, 'batch inference tests') ON CONFLICT DO NOTHING")
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (GROUP, '{"object_store_memory_mb": 200}'))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'bi4', 1, 1)", (GROUP,))
    drop_user(db)
    db.execute(f"CREATE ROLE {USER} LOGIN IN ROLE ray_user")
    db.execute("SELECT ray.grant_usage(%s, %s)", (GROUP, USER))
    db.execute(f"CREATE SCHEMA bi AUTHORIZATION {USER}")
    db.execute("CREATE TABLE bi.impressions (id bigint PRIMARY KEY, age integer, price double precision,"
               " site text)")
    db.execute("INSERT INTO bi.impressions SELECT g, 18 + g %% 60, (g * 37 %% 1000) / 10.0, 'site' || g %% 7"
               " FROM generate_series(1, %s) g", (ROWS,))
    db.execute(f"GRANT SELECT ON bi.impressions TO {USER}")
    db.execute("CREATE TABLE bi.secret (id bigint PRIMARY KEY, age integer, price double precision)")
    db.execute("INSERT INTO bi.secret SELECT g, g, g FROM generate_series(1, 10) g")
    as_role(db, USER, "SELECT ray.register_model('ctr', 'sklearn', %s::bytea)", (joblib_bytes(train_click_model()),))
    wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = %s",
                                (GROUP,)).fetchone()[0], "the batch group to be READY", 240)
    yield db
    drop_user(db)


def drop_user(db: psycopg.Connection) -> None:
    """The test user and everything it has, left by an earlier run."""
    db.execute("DROP SCHEMA IF EXISTS bi CASCADE")
    db.execute("DELETE FROM ray.model WHERE owner = %s", (USER,))
    if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (USER,)).fetchone():
        db.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE username = %s", (USER,)) \
            if db.execute("SELECT to_regclass('cron.job')").fetchone()[0] else None
        db.execute(f"DROP OWNED BY {USER}")
        db.execute(f"DROP ROLE {USER}")


def processes_holding(text: str, also: bytes = b"") -> list[str]:
    """The /proc/PID/{cmdline,environ} of this host that hold text (and also, if given)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                data = (proc / part).read_bytes()
            except OSError:
                continue
            if text.encode() in data and also in data:
                found.append(f"{proc.name}/{part}")
    return found


def group_head(db: psycopg.Connection) -> RayHead:
    """The shared group's dashboard, to ask Ray directly."""
    return RayHead(*db.execute("SELECT g.dashboard_url, s.token FROM ray.resource_groups g"
                               " JOIN ray.resource_group_secret s ON s.resource_group = g.name"
                               " WHERE g.name = %s", (GROUP,)).fetchone())


def test_sklearn_scores_a_table_into_a_new_target(bi: psycopg.Connection) -> None:
    job_id = batch(bi, "bi.ctr_scores", input_columns=["age", "price"])
    # the run's role exists while the run does
    role = wait_for(lambda: run_roles(bi), "the run's login role")[0]
    # its password is in no process's command line or environment, though Ray's worker processes of
    # the run carry the run's runtime environment (its role among it) on their command lines
    password = bi.execute("SELECT password FROM ray.batch_run_secret WHERE job_id = %s", (job_id,)).fetchone()[0]
    leaks: list[str] = []

    def run_workers() -> list[str]:
        leaks.extend(processes_holding(password))
        return processes_holding(role, also=b"--serialized-runtime-env-context")

    wait_for(run_workers, "a Ray worker process of the run", 180)
    assert leaks == [] and processes_holding(password) == []
    row = succeeded(bi, job_id)
    # nor in what Ray keeps of the job
    info = group_head(bi).rest("GET", f"/api/jobs/{row['ray_submission_id']}")
    assert role in json.dumps(info) and password not in json.dumps(info)
    assert row["rows_written"] == ROWS and row["rows_total"] == ROWS and row["rows_processed"] == ROWS
    assert row["target_table"] == "bi.ctr_scores"
    ids, x = features(bi)
    expected = train_click_model().predict_proba(x)[:, 1]
    got = predictions(bi, "bi.ctr_scores")
    assert list(got) == list(ids)
    assert np.allclose([got[i] for i in ids], expected, atol=1e-9)
    # the owner owns the target, and nothing of the run is left
    assert bi.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'bi' AND tablename = 'ctr_scores'"
                      ).fetchone()[0] == USER
    assert run_roles(bi) == [] and staging_tables(bi) == []
    events = [r[0] for r in bi.execute("SELECT to_state FROM ray.job_events WHERE job_id = %s ORDER BY at",
                                       (job_id,))]
    assert events[-2:] == ["PUBLISHING", "SUCCEEDED"]


def test_modes_append_overwrite_and_upsert(bi: psycopg.Connection) -> None:
    ids, x = features(bi)
    succeeded(bi, batch(bi, "bi.modes", key=["id"], input_columns=["age", "price"]))
    succeeded(bi, batch(bi, "bi.modes", input_columns=["age", "price"]))
    assert bi.execute("SELECT count(*), count(DISTINCT id) FROM bi.modes").fetchone() == (2 * ROWS, ROWS)
    succeeded(bi, batch(bi, "bi.modes", input_columns=["age", "price"], mode="overwrite"))
    assert bi.execute("SELECT count(*), count(DISTINCT id) FROM bi.modes").fetchone() == (ROWS, ROWS)

    # upsert: a second model version updates the rows already there and adds the rest
    bi.execute("CREATE TABLE bi.upserted (id bigint PRIMARY KEY, prediction double precision,"
               " scored_by text DEFAULT 'pg_ray')")
    bi.execute(f"GRANT ALL ON bi.upserted TO {USER}")
    bi.execute("INSERT INTO bi.upserted (id, prediction) SELECT g, -1 FROM generate_series(1, 10) g")
    bi.execute("INSERT INTO bi.upserted (id, prediction) VALUES (999999, -1)")
    other = train_click_model(seed=11)
    as_role(bi, USER, "SELECT ray.register_model('ctr', 'sklearn', %s::bytea)", (joblib_bytes(other),))
    row = succeeded(bi, batch(bi, "bi.upserted", model="ctr:2", input_columns=["age", "price"], mode="upsert"))
    assert row["rows_written"] == ROWS
    got = predictions(bi, "bi.upserted")
    assert len(got) == ROWS + 1 and got[999999] == -1
    assert np.allclose([got[i] for i in ids], other.predict_proba(x)[:, 1], atol=1e-9)
    # the label instead of the probability ("ctr" is now version 2)
    succeeded(bi, batch(bi, "bi.labels", input_columns=["age", "price"], options='{"output": "label"}'))
    labels = predictions(bi, "bi.labels")
    assert [int(labels[i]) for i in ids] == list(other.predict(x))


def table_shape(db: psycopg.Connection, table: str) -> dict[str, Any]:
    """What CREATE TABLE decides about a table: owner, columns, constraints, privileges."""
    oid = db.execute("SELECT %s::regclass::oid", (table,)).fetchone()[0]
    return {
        "owner": db.execute("SELECT relowner::regrole::text FROM pg_class WHERE oid = %s", (oid,)).fetchone()[0],
        "columns": db.execute("SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute"
                              " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                              (oid,)).fetchall(),
        "constraints": db.execute("SELECT contype, replace(conname, %s, ''), pg_get_constraintdef(oid)"
                                  " FROM pg_constraint WHERE conrelid = %s ORDER BY 1, 2",
                                  (table.split(".")[-1], oid)).fetchall(),
        "privileges": db.execute("SELECT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,"
                                 " g.privilege_type, g.is_grantable"
                                 " FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) g"
                                 " WHERE c.oid = %s ORDER BY 1, 2, 3", (oid,)).fetchall(),
    }


def test_a_created_target_is_the_table_the_plan_shows(bi: psycopg.Connection) -> None:
    """The staging table becomes the target: as the plan's CREATE TABLE would make it, default privileges too."""
    bi.execute("DROP ROLE IF EXISTS bi_reader")
    bi.execute("CREATE ROLE bi_reader")
    as_role(bi, USER, "ALTER DEFAULT PRIVILEGES IN SCHEMA bi GRANT SELECT, UPDATE ON TABLES TO bi_reader")
    try:
        for mode in ("append", "overwrite"):
            target = f"bi.created_{mode}"
            plan = batch(bi, target, model="ctr:1", function="batch_inference_plan", input_columns=["age", "price"],
                         mode=mode)
            job_id = batch(bi, target, model="ctr:1", input_columns=["age", "price"], mode=mode)
            wait_for(lambda: staging_tables(bi), "the run's staging table")
            staging_oid = bi.execute("SELECT oid FROM pg_class WHERE relnamespace = 'ray_staging'::regnamespace"
                                     ).fetchone()[0]
            assert succeeded(bi, job_id)["rows_written"] == ROWS
            # no copy: the target is the very table the run staged its rows in
            assert bi.execute("SELECT %s::regclass::oid", (target,)).fetchone()[0] == staging_oid
            ids, x = features(bi)
            got = predictions(bi, target)
            assert list(got) == list(ids)
            assert np.allclose([got[i] for i in ids], train_click_model().predict_proba(x)[:, 1], atol=1e-9)
            as_role(bi, USER, plan["target"]["create_statement"].replace(f"created_{mode}", f"by_hand_{mode}"))
            assert table_shape(bi, target) == table_shape(bi, f"bi.by_hand_{mode}"), mode
            assert ("bi_reader", "SELECT", False) in table_shape(bi, target)["privileges"]
            assert any(c[0] == "p" for c in table_shape(bi, target)["constraints"]) == (mode == "overwrite")
        assert run_roles(bi) == [] and staging_tables(bi) == []
    finally:
        as_role(bi, USER, "ALTER DEFAULT PRIVILEGES IN SCHEMA bi REVOKE ALL ON TABLES FROM bi_reader")
        bi.execute("DROP OWNED BY bi_reader")
        bi.execute("DROP ROLE bi_reader")


def test_the_owner_can_neither_read_nor_lock_its_runs_staging_table(bi: psycopg.Connection) -> None:
    """A lock of the owner on the staging table would hold the worker up when it publishes or cleans up."""
    job_id = batch(bi, "bi.held", model="ctr:1", input_columns=["age", "price"])
    staging = "ray_staging." + wait_for(lambda: staging_tables(bi), "the run's staging table")[0]
    for statement in (f"SELECT count(*) FROM {staging}", f"LOCK TABLE {staging} IN ACCESS SHARE MODE"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), bi.transaction():
            bi.execute(f"SET LOCAL ROLE {USER}")
            bi.execute(statement)
    assert succeeded(bi, job_id)["rows_written"] == ROWS
    assert bi.execute("SELECT count(*), count(DISTINCT id) FROM bi.held").fetchone() == (ROWS, ROWS)
    assert run_roles(bi) == [] and staging_tables(bi) == []


def test_a_runs_login_cannot_become_its_owner_or_change_what_it_reads(bi: psycopg.Connection) -> None:
    """The run's login travels to the cluster's nodes, where other tenants'
    code may run.  Logged in as the run: it cannot become its owner or read
    the owner's tables, and ray._run_read (which runs the owner's query as
    the owner) refuses a session that could change what that query does."""
    job_id = batch(bi, "bi.login_scores", input_columns=["age", "price"])
    role = wait_for(lambda: run_roles(bi), "the run's login role")[0]
    password = bi.execute("SELECT password FROM ray.batch_run_secret WHERE job_id = %s", (job_id,)).fetchone()[0]
    port = bi.execute("SHOW port").fetchone()[0]
    try:
        with psycopg.connect(host="127.0.0.1", port=port, dbname="postgres", user=role, password=password,
                             autocommit=True) as run:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                run.execute(f"SET ROLE {USER}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                run.execute("SELECT * FROM bi.impressions LIMIT 1")
            columns = len(run.execute("SELECT ray._run_spec()").fetchone()[0]["columns"])
            read = (f"SELECT count(*) FROM ray._run_read(NULL, NULL, NULL, NULL)"
                    f" AS t({', '.join(f'c{i} text' for i in range(columns))})")

            def read_only(statement: str) -> Any:
                with run.transaction():
                    run.execute("SET TRANSACTION READ ONLY")
                    return run.execute(statement).fetchone()[0]

            assert read_only(read) == ROWS and read_only("SELECT ray._run_count()") == ROWS
            # the owner's query may call functions that write: not outside a read-only transaction
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                run.execute(read)
            # a setting the owner's row-level security could read
            run.execute("SET app.tenant = 'another'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match='"app.tenant"'):
                read_only(read)
            run.execute("RESET app.tenant")
            assert read_only(read) == ROWS
            # a schema of the owner's search path that the run may create in (as before PostgreSQL 15)
            bi.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
            try:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match='in schema "public"'):
                    read_only(read)
            finally:
                bi.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            # a temporary table found before the owner's
            run.execute("CREATE TEMP TABLE impressions (id bigint)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="temporary objects"):
                read_only(read)
    finally:
        bi.execute("SELECT ray.stop_job(job_id) FROM ray.jobs WHERE job_id = %s"
                   " AND state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED')", (job_id,))
        assert finish(bi, job_id)["state"] in ("STOPPED", "FAILED", "SUCCEEDED")


def test_the_targets_advisory_lock_held_by_another_role_fails_a_submission_but_holds_nothing(
        bi: psycopg.Connection) -> None:
    """One run per target is kept with an advisory lock, which any role can
    take: a submission waits for it a bounded time (lock_not_available), and
    a model registration takes no such lock."""
    holder = connect()
    try:
        holder.execute("SELECT pg_advisory_lock(hashtext('pg_ray batch target bi.held_scores'))")
        holder.execute("SELECT pg_advisory_lock(hashtext('pg_ray model ctr'))")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            batch(bi, "bi.held_scores", input_columns=["age", "price"])
        version = as_role(bi, USER, "SELECT ray.register_model('ctr', 'sklearn', %s::bytea)",
                          (joblib_bytes(train_click_model()),))[0]
        as_role(bi, USER, "SELECT ray.drop_model('ctr', %s)", (version,))
    finally:
        holder.close()


def test_a_run_role_made_undroppable_is_disabled_and_the_job_moves_on(bi: psycopg.Connection) -> None:
    job_id = batch(bi, "bi.undroppable_scores", input_columns=["age", "price"])
    role = wait_for(lambda: run_roles(bi), "the run's login role")[0]
    # what the job's owner could do in a database of its own: DROP OWNED in this one cannot undo it
    bi.execute("DROP DATABASE IF EXISTS pg_ray_elsewhere")
    bi.execute("CREATE DATABASE pg_ray_elsewhere")
    try:
        with connect("pg_ray_elsewhere") as elsewhere:
            elsewhere.execute("CREATE TABLE kept (x integer)")
            elsewhere.execute(f'GRANT SELECT ON kept TO "{role}"')
        assert succeeded(bi, job_id)["rows_written"] == ROWS
        assert bi.execute("SELECT rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname = %s",
                          (role,)).fetchone() == (False, True), "the role is left, unable to log in"
        assert staging_tables(bi) == []
    finally:
        bi.execute("DROP DATABASE IF EXISTS pg_ray_elsewhere")
    # once nothing holds it, the worker's sweep drops it
    assert bi.execute("SELECT ray._drop_stray_run_roles()").fetchone()[0] == 1
    assert run_roles(bi) == []


def test_a_target_created_meanwhile_is_inserted_into_and_a_lost_create_privilege_fails(
        bi: psycopg.Connection) -> None:
    # someone makes the target while the run scores: the rows go into that table
    job_id = batch(bi, "bi.appeared", input_columns=["age", "price"])
    as_role(bi, USER, "CREATE TABLE bi.appeared (id bigint, prediction double precision)")
    as_role(bi, USER, "INSERT INTO bi.appeared VALUES (-1, 0.5)")
    assert succeeded(bi, job_id)["rows_written"] == ROWS
    assert bi.execute("SELECT count(*), count(DISTINCT id) FROM bi.appeared").fetchone() == (ROWS + 1, ROWS + 1)

    # the owner may no longer create tables in the target's schema by the time the run ends
    bi.execute("CREATE SCHEMA bi_out")
    bi.execute(f"GRANT USAGE, CREATE ON SCHEMA bi_out TO {USER}")
    try:
        job_id = batch(bi, "bi_out.denied", input_columns=["age", "price"])
        bi.execute(f"REVOKE CREATE ON SCHEMA bi_out FROM {USER}")
        row = finish(bi, job_id)
        assert row["state"] == "FAILED"
        assert row["message"] == ("could not publish into bi_out.denied: permission denied for schema bi_out;"
                                  " nothing was published")
        assert bi.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'bi_out'::regnamespace"
                          ).fetchone()[0] == 0
        wait_for(lambda: run_roles(bi) == [] and staging_tables(bi) == [], "the run's role and staging table to go")
    finally:
        bi.execute("DROP SCHEMA bi_out CASCADE")


def test_a_trigger_on_the_target_cannot_act_for_the_worker(bi: psycopg.Connection) -> None:
    """Publishing runs the owner's triggers inside the worker, whose outer user is
    the bootstrap superuser.  A trigger that calls pg_ray there is refused, rather
    than act as that superuser on another user's job."""
    other = bi.execute("SELECT ray.submit_job(%s, 'sleep 1')", (GROUP,)).fetchone()[0]
    as_role(bi, USER, "CREATE TABLE bi.trapped (id bigint PRIMARY KEY, prediction double precision)")
    as_role(bi, USER, "CREATE FUNCTION bi.trap() RETURNS trigger LANGUAGE plpgsql AS "
                      f"$$ BEGIN PERFORM ray.stop_job({other}); RETURN NULL; END $$")
    as_role(bi, USER, "CREATE TRIGGER trap BEFORE INSERT ON bi.trapped FOR EACH STATEMENT "
                      "EXECUTE FUNCTION bi.trap()")
    try:
        row = finish(bi, batch(bi, "bi.trapped", input_columns=["age", "price"]))
        assert row["state"] == "FAILED"
        assert row["message"] == ("could not publish into bi.trapped: pg_ray functions cannot be used in a"
                                  " security-restricted operation; nothing was published")
        assert bi.execute("SELECT stop_requested_at IS NULL FROM ray.job WHERE job_id = %s", (other,)).fetchone()[0]
        assert bi.execute("SELECT count(*) FROM bi.trapped").fetchone()[0] == 0
    finally:
        bi.execute("DROP TABLE bi.trapped")
        bi.execute("DROP FUNCTION bi.trap()")


def test_a_slow_trigger_on_the_target_fails_only_its_job(bi: psycopg.Connection) -> None:
    """The owner's trigger runs inside the worker while it publishes: one that
    waits forever (having lifted its own lock_timeout) and takes a session
    advisory lock fails its job after pg_ray.publish_timeout, and leaves
    nothing in the worker's session."""
    worker_pid = bi.execute("SELECT pid FROM ray.worker_status()").fetchone()[0]
    as_role(bi, USER, "CREATE TABLE bi.slow (id bigint PRIMARY KEY, prediction double precision)")
    as_role(bi, USER, "CREATE FUNCTION bi.stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                      "SET LOCAL lock_timeout = 0; PERFORM pg_advisory_lock(4242); PERFORM pg_sleep(3600); "
                      "RETURN NULL; END $$")
    as_role(bi, USER, "CREATE TRIGGER stall BEFORE INSERT ON bi.slow FOR EACH STATEMENT EXECUTE FUNCTION bi.stall()")
    reload_settings(bi, publish_timeout="2s")
    try:
        row = finish(bi, batch(bi, "bi.slow", input_columns=["age", "price"]))
        assert row["state"] == "FAILED"
        assert row["message"] == ("could not publish into bi.slow: canceling statement due to statement timeout;"
                                  " nothing was published")
        assert bi.execute("SELECT pid FROM ray.worker_status()").fetchone()[0] == worker_pid
        assert bi.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s",
                          (worker_pid,)).fetchone()[0] == 0
        # and the worker's next run publishes as before
        assert succeeded(bi, batch(bi, "bi.after_slow", input_columns=["age", "price"]))["rows_written"] == ROWS
    finally:
        reload_settings(bi, publish_timeout=None)
        bi.execute("DROP TABLE IF EXISTS bi.slow, bi.after_slow")
        bi.execute("DROP FUNCTION bi.stall()")


def test_query_source_with_shards(bi: psycopg.Connection) -> None:
    # names in the query resolve in the run as they did for the caller
    bi.execute("SET search_path = bi, public")
    try:
        job_id = batch(bi, "young", source="SELECT id, age, price FROM impressions WHERE age < 30",
                       key=["id"], options='{"shard_key": "id", "partitions": 3}')
    finally:
        bi.execute("RESET search_path")
    row = succeeded(bi, job_id)
    expected = bi.execute("SELECT count(*) FROM bi.impressions WHERE age < 30").fetchone()[0]
    assert row["rows_written"] == expected
    assert bi.execute("SELECT count(DISTINCT id) FROM bi.young").fetchone()[0] == expected


def test_onnx_model(bi: psycopg.Connection) -> None:
    from skl2onnx import to_onnx

    model = train_click_model()
    onnx_model = to_onnx(model, np.zeros((1, 2), dtype=np.float32), options={id(model): {"zipmap": False}})
    as_role(bi, USER, "SELECT ray.register_model('ctr-onnx', 'onnx', %s::bytea)", (onnx_model.SerializeToString(),))
    succeeded(bi, batch(bi, "bi.onnx_scores", model="ctr-onnx", input_columns=["age", "price"]))
    ids, x = features(bi)
    got = predictions(bi, "bi.onnx_scores")
    assert np.allclose([got[i] for i in ids], model.predict_proba(x)[:, 1], atol=1e-4)


PYTHON_MODEL = """
import pandas as pd


class PriceBand:
    def __init__(self, width: float = 10.0) -> None:
        self.width = width

    def __call__(self, batch: pd.DataFrame):
        return (batch["price"] // self.width).astype(float)
"""


def test_python_model_from_the_database_and_from_a_directory(bi: psycopg.Connection) -> None:
    register_python_model(bi, "bands", {"bands/__init__.py": "", "bands/model.py": PYTHON_MODEL},
                          '{"class": "bands.model:PriceBand", "init_kwargs": {"width": 25}}')
    succeeded(bi, batch(bi, "bi.bands", model="bands", input_columns=["price"]))
    assert bi.execute("SELECT count(*) FROM bi.bands b JOIN bi.impressions i USING (id)"
                      " WHERE b.prediction = floor(i.price / 25)").fetchone()[0] == ROWS

    # a directory the nodes (the postgres OS user) can read
    code = Path(tempfile.mkdtemp(prefix="pgray_models_", dir="/tmp"))
    (code / "bands2").mkdir()
    (code / "bands2" / "__init__.py").write_text("")
    (code / "bands2" / "model.py").write_text(PYTHON_MODEL)
    for path in [code, *code.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    as_role(bi, USER, "SELECT ray.register_model('bands-dir', 'python', uri => 'bands2.model:PriceBand', options => %s)",
            (f'{{"working_dir": "{code}"}}',))
    succeeded(bi, batch(bi, "bi.bands_dir", model="bands-dir", input_columns=["price"]))
    assert bi.execute("SELECT count(*) FROM bi.bands_dir b JOIN bi.impressions i USING (id)"
                      " WHERE b.prediction = floor(i.price / 10)").fetchone()[0] == ROWS
    shutil.rmtree(code)


def test_http_model_against_an_openai_compatible_server(bi: psycopg.Connection) -> None:
    server = FakeOpenAI().start()
    try:
        as_role(bi, USER, "SELECT ray.register_model('echo', 'http', uri => %s, options => %s)",
                (server.base_url, '{"model": "echo-1", "prompt": "site {site}", "concurrency": 4}'))
        row = succeeded(bi, batch(bi, "bi.echoes", model="echo", source="SELECT id, site FROM bi.impressions"
                                  " WHERE id <= 200", key=["id"]))
        assert row["rows_written"] == 200
        assert bi.execute("SELECT count(*) FROM bi.echoes e JOIN bi.impressions i USING (id)"
                          " WHERE e.prediction = 're: site ' || i.site").fetchone()[0] == 200
        assert 1 <= server.max_in_flight <= 4
    finally:
        server.stop()


def test_bad_arguments_are_refused_before_anything_runs(bi: psycopg.Connection) -> None:
    before = bi.execute("SELECT count(*) FROM ray.job").fetchone()[0]
    cases = [
        (dict(source="bi.secret"), "permission denied for table secret"),
        (dict(source="SELECT id, age FROM bi.secret", key=["id"]), "permission denied for table secret"),
        (dict(source="bi.nope"), 'relation "bi.nope" does not exist'),
        (dict(model="nope"), 'model "nope" does not exist'),
        (dict(mode="merge"), 'unknown mode "merge"'),
        (dict(options='{"batch_sise": 10}'), 'unknown batch inference option "batch_sise"'),
        (dict(options='{"num_gpus": 1}', input_columns=["age"]), "has no GPU workers"),
        (dict(), "input column site (text) is not numeric"),
        (dict(input_columns=["age"], target="bi.impressions"), "is the source"),
        (dict(input_columns=["age"], target="pg_catalog.x"), "permission denied for schema pg_catalog"),
    ]
    for arguments, message in cases:
        arguments = {"target": "bi.never", **arguments}
        with pytest.raises(psycopg.Error, match=re.escape(message)):
            batch(bi, **arguments)
    assert bi.execute("SELECT count(*) FROM ray.job").fetchone()[0] == before
    assert bi.execute("SELECT to_regclass('bi.never')").fetchone()[0] is None


def slow_model(bi: psycopg.Connection) -> None:
    """A python model that takes a while per batch, to catch runs midway."""
    register_python_model(bi, "slow", {"slow.py": "import time\n\nclass Slow:\n    def __call__(self, batch):\n"
                                                  "        time.sleep(0.4)\n        return batch['age'] * 1.0\n"},
                          '{"class": "slow:Slow"}')


def test_stopped_run_publishes_nothing(bi: psycopg.Connection) -> None:
    slow_model(bi)
    job_id = batch(bi, "bi.stopped", model="slow", input_columns=["age"],
                   options='{"batch_size": 100, "concurrency": 1}')
    wait_for(lambda: (bi.execute("SELECT rows_processed FROM ray.jobs WHERE job_id = %s", (job_id,)
                                 ).fetchone()[0] or 0) > 0, "the run to stage rows", 180)
    as_role(bi, USER, "SELECT ray.stop_job(%s)", (job_id,))
    row = finish(bi, job_id)
    assert row["state"] == "STOPPED"
    assert bi.execute("SELECT to_regclass('bi.stopped')").fetchone()[0] is None
    wait_for(lambda: run_roles(bi) == [] and staging_tables(bi) == [], "the run's role and staging table to go")


def test_the_client_follows_a_run_with_a_progress_line(bi: psycopg.Connection) -> None:
    slow_model(bi)
    job_id = batch(bi, "bi.followed", model="slow", input_columns=["age"],
                   options='{"batch_size": 100, "concurrency": 1}')
    result = run_client("job", "logs", "--follow", str(job_id), user=USER)
    assert result.returncode == 0, result.stderr
    # not a terminal: at most one line per tenth of the rows (the runner
    # reports per block written, so tenths may be skipped), the last at 100%
    progress = [(int(done), int(percent)) for done, percent in
                re.findall(rf"^Job {job_id}: (\d+) of {ROWS} rows scored \((\d+)%\)$", result.stderr, re.M)]
    assert progress and progress[-1] == (ROWS, 100)
    assert progress == sorted(progress) and len({p // 10 for _, p in progress}) == len(progress)
    assert result.stderr.rstrip().endswith(f"Job {job_id} succeeded.")
    assert f"pg_ray runner: job {job_id} attempt 1: {ROWS} rows scored" in result.stdout
    status = run_client("job", "status", str(job_id), user=USER)
    assert f"Progress        {ROWS} of {ROWS} rows scored (100.0%)" in status.stdout
    assert f"Rows written    {ROWS}" in status.stdout
    assert "Entrypoint      batch inference into bi.followed" in status.stdout


def test_head_killed_midway_retries_and_publishes_each_row_once(bi: psycopg.Connection) -> None:
    slow_model(bi)
    bi.execute("CREATE TABLE bi.killed (id bigint, prediction double precision)")
    bi.execute(f"GRANT ALL ON bi.killed TO {USER}")
    job_id = batch(bi, "bi.killed", model="slow", input_columns=["age"],
                   options='{"batch_size": 300, "concurrency": 1, "max_attempts": 2}')
    wait_for(lambda: (bi.execute("SELECT rows_processed FROM ray.jobs WHERE job_id = %s", (job_id,)
                                 ).fetchone()[0] or 0) > 0, "the run to stage rows", 180)
    head_pid = bi.execute("SELECT pid FROM ray.node WHERE resource_group = %s AND kind = 'head'",
                          (GROUP,)).fetchone()[0]
    os.killpg(head_pid, signal.SIGKILL)
    row = succeeded(bi, job_id)
    assert row["attempts"] == 2
    assert bi.execute("SELECT count(*), count(DISTINCT id) FROM bi.killed").fetchone() == (ROWS, ROWS)
    assert run_roles(bi) == [] and staging_tables(bi) == []


def test_a_second_submission_while_the_first_runs_returns_the_first(bi: psycopg.Connection) -> None:
    slow_model(bi)
    options = '{"batch_size": 500, "concurrency": 1}'
    first = batch(bi, "bi.nightly", model="slow", input_columns=["age"], mode="overwrite", options=options)
    second = batch(bi, "bi.nightly", model="slow", input_columns=["age"], mode="overwrite", options=options)
    assert second == first
    with pytest.raises(psycopg.errors.ObjectInUse, match="is being written by another batch inference run"):
        batch(bi, "bi.nightly", model="slow", input_columns=["age", "price"], mode="overwrite")
    succeeded(bi, first)
    assert bi.execute("SELECT count(*) FROM bi.nightly").fetchone()[0] == ROWS


def test_pg_cron_schedules_a_batch_inference(bi: psycopg.Connection) -> None:
    bi.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    before = bi.execute("SELECT coalesce(max(job_id), 0) FROM ray.job").fetchone()[0]
    command = (f"SELECT ray.batch_inference('{GROUP}', 'bi.impressions', 'ctr', 'bi.cron_scores',"
               " input_columns => ARRAY['age', 'price'], mode => 'overwrite')")
    bi.execute(f"GRANT USAGE ON SCHEMA cron TO {USER}")
    cron_job = as_role(bi, USER, "SELECT cron.schedule('pg-ray-nightly-test', '* * * * *', %s)", (command,))[0]
    try:
        job_id = wait_for(lambda: bi.execute("SELECT max(job_id) FROM ray.job WHERE job_id > %s AND owner = %s",
                                             (before, USER)).fetchone()[0], "pg_cron to submit the run", 150)
    finally:
        bi.execute("SELECT cron.unschedule(%s)", (cron_job,))
    succeeded(bi, job_id)
    assert bi.execute("SELECT count(*) FROM bi.cron_scores").fetchone()[0] == ROWS
    status = bi.execute("SELECT status FROM cron.job_run_details WHERE jobid = %s ORDER BY runid LIMIT 1",
                        (cron_job,)).fetchone()[0]
    assert status == "succeeded"


def test_a_locked_target_is_waited_for_and_a_worker_crash_while_publishing_loses_nothing(
        bi: psycopg.Connection) -> None:
    bi.execute("CREATE TABLE bi.locked (id bigint PRIMARY KEY, prediction double precision)")
    bi.execute(f"GRANT ALL ON bi.locked TO {USER}")
    holder = connect()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE bi.locked IN ACCESS EXCLUSIVE MODE")
    try:
        job_id = batch(bi, "bi.locked", input_columns=["age", "price"])
        # the worker does not wait on the lock: the job says why it waits
        wait_for(lambda: bi.execute("SELECT state = 'PUBLISHING' AND message LIKE 'waiting to publish%%'"
                                    " FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()[0],
                 "the job to wait for the lock on its target", 300)
        # the worker dies before it could publish: nothing is lost, nothing done twice
        worker = bi.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ray worker'"
                            ).fetchone()[0]
        bi.execute("SELECT pg_terminate_backend(%s)", (worker,))
        wait_for_worker(other_than=worker)
        assert bi.execute("SELECT state FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()[0] == "PUBLISHING"
        assert len(staging_tables(bi)) == 1
    finally:
        holder.execute("COMMIT")
        holder.close()
    row = succeeded(bi, job_id)
    assert row["rows_written"] == ROWS
    assert bi.execute("SELECT count(*), count(DISTINCT id) FROM bi.locked").fetchone() == (ROWS, ROWS)
    assert staging_tables(bi) == []


def test_a_failing_model_fails_the_job_with_the_runners_reason(bi: psycopg.Connection) -> None:
    register_python_model(bi, "broken", {"broken.py": "class Broken:\n    def __call__(self, batch):\n"
                                                      "        raise ValueError('no score for this impression')\n"},
                          '{"class": "broken:Broken"}')
    job_id = batch(bi, "bi.broken", model="broken", input_columns=["age"])
    row = finish(bi, job_id)
    assert row["state"] == "FAILED" and row["attempts"] == 1
    assert row["message"].startswith(f"pg_ray runner: job {job_id} attempt 1 failed: ")
    assert "no score for this impression" in row["message"] and "\n" not in row["message"]
    assert bi.execute("SELECT to_regclass('bi.broken')").fetchone()[0] is None
    assert run_roles(bi) == [] and staging_tables(bi) == []



def test_missing_inputs_fail_in_pg_rays_words_or_are_scored_as_null(bi: psycopg.Connection) -> None:
    bi.execute("CREATE TABLE bi.holes (id bigint PRIMARY KEY, age integer, price double precision)")
    bi.execute("INSERT INTO bi.holes SELECT g, CASE WHEN g % 10 = 3 THEN NULL ELSE 18 + g % 60 END,"
               " CASE WHEN g = 7 THEN 'NaN' WHEN g = 8 THEN 'Infinity' ELSE g::float8 END"
               " FROM generate_series(1, 50) g")
    bi.execute(f"GRANT SELECT ON bi.holes TO {USER}")
    # one partition, one batch: the counts are the table's
    row = finish(bi, batch(bi, "bi.holes_out", source="bi.holes", options='{"partitions": 1}'))
    assert row["state"] == "FAILED" and row["attempts"] == 1, row["message"]
    assert 'input columns NULL, NaN or infinite ("age" in 5, "price" in 2 of the 50 rows of a batch; ' \
           """first: row with id=3) failed the model; score such rows as NULL with options => """ \
           """'{"missing_inputs": "null"}', or replace the values in a query source. The model said: ValueError: """ \
           in row["message"]
    assert bi.execute("SELECT to_regclass('bi.holes_out')").fetchone()[0] is None

    succeeded(bi, batch(bi, "bi.holes_out", source="bi.holes", options='{"missing_inputs": "null"}'))
    scored = predictions(bi, "bi.holes_out")
    assert len(scored) == 50
    assert sorted(i for i, p in scored.items() if p is None) == [3, 7, 8, 13, 23, 33, 43]
