"""Random SQL: sqlsmith (Debian's package) against a database where pg_ray
is installed, its worker runs and every table has rows, as a ray_user and as
a ray_admin.  Whatever the queries call, with whatever arguments, the server
must not crash and the worker must keep going.

CI runs PG_RAY_SQLSMITH_QUERIES queries as each role (default 2,000); the
long run of docs/reliability.md is the same test with a larger number.
Local nodes are off here, so what the random calls create never starts a
Ray process, and no group is registered to a real Ray: a random entrypoint
never runs.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import OtherCluster, as_role
from test_batch_inference import joblib_bytes, train_click_model

QUERIES = int(os.environ.get("PG_RAY_SQLSMITH_QUERIES", "2000"))
# a long run beside another test run takes a cluster of another name
CLUSTER = os.environ.get("PG_RAY_SQLSMITH_CLUSTER", "smith")


def populate(db) -> None:  # type: ignore[no-untyped-def]
    """Rows in every table a user or an admin can reach."""
    db.execute("CREATE ROLE smith_user LOGIN IN ROLE ray_user")
    db.execute("CREATE ROLE smith_admin LOGIN IN ROLE ray_admin")
    db.execute("SELECT ray.create_resource_group('smith', 'small')")
    db.execute("SELECT ray.add_worker_group('smith', 'cpu', 'CPU', 'small', 1, 2)")
    db.execute("SELECT ray.grant_usage('smith', 'public')")
    db.execute("CREATE TABLE public.impressions (id bigint PRIMARY KEY, age integer, price double precision)")
    db.execute("INSERT INTO public.impressions SELECT g, 18 + g % 60, g / 10.0 FROM generate_series(1, 200) g")
    db.execute("GRANT SELECT ON public.impressions TO smith_user")
    db.execute("GRANT CREATE ON SCHEMA public TO smith_user")
    as_role(db, "smith_user", "SELECT ray.register_model('ctr', 'sklearn', %s::bytea)",
            (joblib_bytes(train_click_model()),))
    as_role(db, "smith_user", "SELECT ray.grant_model('ctr', 'smith_admin')")
    for entrypoint in ("echo one", "echo two", "sleep 60"):
        as_role(db, "smith_user", "SELECT ray.submit_job('smith', %s)", (entrypoint,))
    as_role(db, "smith_user", "SELECT ray.stop_job(max(job_id)) FROM ray.jobs")
    as_role(db, "smith_user", "SELECT ray.batch_inference('smith', 'public.impressions', 'ctr', 'public.scores')")


@pytest.mark.parametrize("role", ["smith_user", "smith_admin"])
def test_random_sql_crashes_neither_the_server_nor_the_worker(role: str) -> None:
    cluster = OtherCluster(CLUSTER)
    cluster.script("destroy")
    cluster.start()
    try:
        db = cluster.connect()
        db.execute("CREATE EXTENSION pg_ray")
        populate(db)
        started = db.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        worker = db.execute("SELECT pid FROM ray.worker_status()").fetchone()[0]
        s = cluster.settings()
        result = subprocess.run(
            ["sqlsmith", f"--target=host={s['PGHOST']} port={s['PGPORT']} dbname=postgres user={role}",
             f"--max-queries={QUERIES}", "--seed=1", "--verbose"],
            capture_output=True, text=True, timeout=1800)
        summary = result.stderr[-3000:]
        db = cluster.connect()
        assert db.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == started, \
            f"the server restarted under sqlsmith:\n{summary}\n{cluster.server_log()[-4000:]}"
        assert "terminated by signal" not in cluster.server_log()
        assert db.execute("SELECT running, pid FROM ray.worker_status()").fetchone() == (True, worker), \
            "the worker died or restarted"
        assert result.returncode == 0, summary
        assert f"queries: {QUERIES}" in result.stderr or "queries:" in result.stderr, summary
    finally:
        cluster.script("destroy")
