"""Shared fixtures of pg_ray's integration tests.

The tests run against the throwaway cluster that scripts/test-cluster
started (its connection settings are in $PG_RAY_TEST_DIR/env), with the
pg_ray background worker running in database "postgres".  Waiting is done by
polling the database for the state a user would see, with a deadline, never
by sleeping a fixed time.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest

TEST_DIR = Path(os.environ.get("PG_RAY_TEST_DIR", "/tmp/pg_ray_test"))


def cluster_settings() -> dict[str, str]:
    """The PG* settings that scripts/test-cluster wrote for its cluster."""
    settings: dict[str, str] = {}
    for line in (TEST_DIR / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        settings[key] = value
    return settings


def connect(dbname: str = "postgres", user: str = "postgres") -> psycopg.Connection:
    """An autocommit connection to the test cluster."""
    s = cluster_settings()
    return psycopg.connect(host=s["PGHOST"], port=s["PGPORT"], user=user,
                           dbname=dbname, autocommit=True)


# the installed client, or another build of it (scripts/test: one under sanitizers)
CLIENT = Path(os.environ.get("PG_RAY_CLIENT")
              or Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip()) / "pg_ray")


def as_role(db: psycopg.Connection, role: str, sql: str, params: Any = None) -> Any:
    """Run one statement as role (SET ROLE) and return its first row (None for a command without rows)."""
    db.execute(f"SET ROLE {role}")
    try:
        cursor = db.execute(sql, params)
        return cursor.fetchone() if cursor.description else None
    finally:
        db.execute("RESET ROLE")


def client_env(user: str = "postgres", **more: str) -> dict[str, str]:
    """The environment of the pg_ray client: the test cluster's settings in PG* variables."""
    s = cluster_settings()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    environment.update(PGHOST=s["PGHOST"], PGPORT=s["PGPORT"], PGUSER=user, PGDATABASE="postgres")
    environment.update(more)
    return environment


def run_client(*args: str, user: str = "postgres", env: dict[str, str] | None = None,
               cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed pg_ray client as a user would, connected to the test cluster."""
    return subprocess.run([str(CLIENT), *args], capture_output=True, text=True,
                          env=client_env(user, **(env or {})), cwd=cwd, timeout=timeout)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll condition until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except psycopg.OperationalError as error:  # server restarting
            last_error = error
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def worker_status(conn: psycopg.Connection) -> dict[str, Any]:
    """ray.worker_status() as a dict."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM ray.worker_status()")
        row = cur.fetchone()
        assert row is not None
        return row


def wait_for_worker(other_than: int | None = None) -> int:
    """Wait until the pg_ray worker is connected (a new one, if other_than names
    the old pid) and return its pid.  pg_stat_activity answers even while the
    extension is not installed."""
    def worker_pid() -> int | None:
        with connect() as conn:
            row = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ray worker'"
                               ).fetchone()
        if row and row[0] != other_than:
            return row[0]
        return None
    return wait_for(worker_pid, "the pg_ray worker to run")


def restart_server_immediately() -> None:
    """Stop the test cluster's server as a crash would (pg_ctl -m immediate), start it
    again and wait for the pg_ray worker."""
    bindir = subprocess.check_output(["pg_config", "--bindir"], text=True).strip()
    subprocess.run(["runuser", "-u", "postgres", "--", "pg_ctl", "-D", str(TEST_DIR / "data"),
                    "-m", "immediate", "-w", "stop"], check=True, capture_output=True,
                   env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"})
    subprocess.run([str(ROOT / "scripts/test-cluster"), "start"], check=True, capture_output=True)
    wait_for_worker()


@pytest.fixture
def db() -> Iterator[psycopg.Connection]:
    """A superuser connection to the database the worker runs in, with pg_ray installed."""
    conn = wait_for(lambda: connect(), "the server to accept connections")
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_ray")
    yield conn
    conn.close()


@pytest.fixture
def group(db: psycopg.Connection, request: pytest.FixtureRequest) -> Iterator[str]:
    """A resource group with one CPU worker group, named after the test."""
    name = "it-" + request.node.name.lower().replace("_", "-")[:40]
    db.execute("SELECT ray.create_resource_group(%s)", (name,))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 2)", (name,))
    yield name
    # a fresh connection: the test may have restarted the server
    with wait_for(lambda: connect(), "the server to accept connections") as conn:
        conn.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
                     "WHERE name = %s AND delete_requested_at IS NULL", (name,))


def drop_local_groups(conn: psycopg.Connection) -> None:
    """Drop every local resource group and wait until they are gone: the catalog tests
    leave groups behind, which must not become Ray clusters once local nodes are on."""
    # one group per statement: the worker locks groups in name order, a
    # statement that dropped several would lock them in scan order and could deadlock with it
    for (name,) in conn.execute("SELECT name FROM ray.resource_group WHERE provider = 'local'"
                                " AND delete_requested_at IS NULL ORDER BY name").fetchall():
        conn.execute("SELECT ray.drop_resource_group(%s, force => true)", (name,))
    wait_for(lambda: not conn.execute("SELECT EXISTS (SELECT FROM ray.resource_group WHERE provider = 'local')"
                                      ).fetchone()[0], "the local groups to be dropped", 120)


RAY_DIR = Path(os.environ.get("PG_RAY_RAY_DIR", "/tmp/pgray_ray"))
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RayHead:
    """The real Ray head of the test run (scripts/ray-test-head)."""
    url: str
    token: str

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        """Call the head's REST API with the token; JSON in, JSON out."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def submissions_of(self, job_id: int) -> list[dict[str, Any]]:
        """Every Ray submission pg_ray made for one of its jobs.  By the
        installation's prefix of the submission ids: the head outlives
        installations (the extension dropped and created again), whose job
        ids start again at 1."""
        with connect() as c:
            install = c.execute("SELECT id FROM ray.installation").fetchone()[0]
        prefix = f"pgray-{install}-{job_id}-"
        return [j for j in self.rest("GET", "/api/jobs/") if (j.get("submission_id") or "").startswith(prefix)]


@pytest.fixture(scope="session")
def ray_head() -> RayHead:
    """The Ray head, started by scripts/test; started here when run alone."""
    subprocess.run([str(ROOT / "scripts/ray-test-head"), "start"], check=True, capture_output=True)
    settings: dict[str, str] = {}
    for line in (RAY_DIR / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        settings[key] = value
    return RayHead(settings["RAY_TEST_URL"], settings["RAY_TEST_TOKEN"])


@pytest.fixture
def ray_group(db: psycopg.Connection, ray_head: RayHead) -> str:
    """The real Ray head registered as an external resource group usable by all."""
    exists = db.execute("SELECT EXISTS (SELECT FROM ray.resource_group WHERE name = 'it-ray' "
                        "AND delete_requested_at IS NULL)").fetchone()[0]
    if not exists:
        db.execute("SELECT ray.register_cluster('it-ray', %s, %s)", (ray_head.url, ray_head.token))
        db.execute("SELECT ray.grant_usage('it-ray', 'public')")
    wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = 'it-ray'"
                                ).fetchone()[0], "the Ray group to be READY")
    return "it-ray"


@pytest.fixture
def settings(db: psycopg.Connection) -> Iterator[Callable[[str, str], None]]:
    """Change pg_ray settings with ALTER SYSTEM for one test, and put them back."""
    changed: list[str] = []

    def change(name: str, value: str) -> None:
        db.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        changed.append(name)
        db.execute("SELECT pg_reload_conf()")
        wait_for(lambda: connect().execute(f"SHOW {name}").fetchone()[0] is not None, "the reload")

    yield change
    for name in changed:
        db.execute(f"ALTER SYSTEM RESET {name}")
    db.execute("SELECT pg_reload_conf()")


def job_state(db: psycopg.Connection, job_id: int) -> str:
    return db.execute("SELECT state FROM ray.job WHERE job_id = %s", (job_id,)).fetchone()[0]


def wait_for_state(db: psycopg.Connection, job_id: int, states: set[str], timeout: float = 120) -> str:
    return wait_for(lambda: (s := job_state(db, job_id)) in states and s, f"job {job_id} to reach {states}",
                    timeout)


def events(db: psycopg.Connection, job_id: int) -> list[tuple[str | None, str, int, str]]:
    return db.execute("SELECT from_state, to_state, attempt, message FROM ray.job_event "
                      "WHERE job_id = %s ORDER BY event_id", (job_id,)).fetchall()


def reload_settings(db: psycopg.Connection, **settings: str | None) -> None:
    for name, value in settings.items():
        if value is None:
            db.execute(f"ALTER SYSTEM RESET pg_ray.{name}")
        else:
            db.execute(f"ALTER SYSTEM SET pg_ray.{name} = '{value}'")
    db.execute("SELECT pg_reload_conf()")
    for name, value in settings.items():
        expected = value if value is not None else None
        if expected is not None:
            wait_for(lambda: connect().execute(f"SHOW pg_ray.{name}").fetchone()[0] == expected,
                     f"pg_ray.{name} to be {expected}")


def drop_and_wait(db: psycopg.Connection, name: str) -> None:
    db.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
               "WHERE name = %s AND delete_requested_at IS NULL", (name,))
    wait_for(lambda: not db.execute("SELECT EXISTS (SELECT FROM ray.resource_group WHERE name = %s)",
                                    (name,)).fetchone()[0], f"resource group {name} to be removed", 120)


@pytest.fixture(scope="module")
def local_nodes() -> Iterator[psycopg.Connection]:
    """The worker runs local nodes for this module; everything is dropped after it."""
    conn = wait_for(lambda: connect(), "the server to accept connections")
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_ray")
    reload_settings(conn, local_nodes="on", observe_interval="500ms", scale_cooldown="2s")
    # groups the catalog tests left: gone (with their nodes, should they have any) before ours
    drop_local_groups(conn)
    yield conn
    conn = wait_for(lambda: connect(), "the server to accept connections")
    for (name,) in conn.execute("SELECT name FROM ray.resource_group WHERE provider = 'local'").fetchall():
        drop_and_wait(conn, name)
    reload_settings(conn, local_nodes=None, observe_interval=None, scale_cooldown=None)
    conn.close()


@dataclass
class OtherCluster:
    """A second throwaway cluster, beside the test cluster: scripts/test-cluster
    with a directory, a run directory and a port of its own, optionally with
    other PostgreSQL programs (a copy with another pg_ray installed,
    scripts/install-release).  The upgrade and backup tests start one."""
    name: str
    bindir: str | None = None
    conf: str = ""

    @property
    def directory(self) -> Path:
        return Path(f"/tmp/pg_ray_{self.name}")

    def script(self, *args: str) -> None:
        environment = dict(os.environ, PG_RAY_TEST_DIR=str(self.directory),
                           PG_RAY_RUN_DIR=f"/tmp/pgr_{self.name[:4]}")
        if self.bindir:
            environment["PG_RAY_PG_BINDIR"] = self.bindir
        result = subprocess.run([str(ROOT / "scripts/test-cluster"), *args], env=environment,
                                capture_output=True, text=True)
        assert result.returncode == 0, f"test-cluster {' '.join(args)}: {result.stderr}"

    def start(self) -> None:
        """Start it; a new one gets self.conf added to its postgresql.conf first."""
        fresh = not (self.directory / "data" / "PG_VERSION").exists()
        self.script("start")
        if fresh and self.conf:
            with open(self.directory / "data" / "postgresql.conf", "a") as conf:
                conf.write(self.conf)
            self.script("restart")

    def settings(self) -> dict[str, str]:
        settings: dict[str, str] = {}
        for line in (self.directory / "env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            settings[key] = value
        return settings

    def connect(self, user: str = "postgres") -> psycopg.Connection:
        s = self.settings()
        return wait_for(lambda: psycopg.connect(host=s["PGHOST"], port=s["PGPORT"], user=user,
                                                dbname="postgres", autocommit=True),
                        f"cluster {self.name} to accept connections")

    def server_log(self) -> str:
        return (self.directory / "server.log").read_text(errors="replace")
