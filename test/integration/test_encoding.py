"""A database in an encoding other than UTF-8.

Ray answers in UTF-8.  The worker converts what it keeps (a job's log, its
message) into the database's encoding, and a character the encoding has no
room for becomes "?": before, one such character in a job's output failed
that job's every answer, and the job never finished.  JSON cast to jsonb
(the autoscaler's report, a node list) has its \\u escapes written out
first: jsonb refuses, in such a database, the escape of a character the
encoding cannot hold.  A dashboard that answers with such escapes is the
small fake of test/fault_server.py: Ray refuses resource names beyond ASCII.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

from conftest import OtherCluster, RayHead, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fault_server import FakeRay  # noqa: E402

# printed by the job: é is in LATIN1, the euro sign and the check mark are not
ENTRYPOINT = "python -c \"print('caf\\u00e9 \\u20ac \\u2713 done')\""


def test_a_latin1_database_keeps_what_it_can_of_a_jobs_output_and_of_rays_json(ray_head: RayHead) -> None:
    cluster = OtherCluster("latin1", conf="pg_ray.database_name = 'latin'\n")
    cluster.script("destroy")
    cluster.start()
    try:
        with cluster.connect() as admin:
            admin.execute("CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'")
        s = cluster.settings()
        with psycopg.connect(host=s["PGHOST"], port=s["PGPORT"], user="postgres", dbname="latin",
                             autocommit=True) as db:
            db.execute("CREATE EXTENSION pg_ray")
            db.execute("SELECT ray.register_cluster('latin-ray', %s, %s)", (ray_head.url, ray_head.token))
            wait_for(lambda: db.execute("SELECT state = 'READY' FROM ray.resource_group WHERE name = 'latin-ray'"
                                        ).fetchone()[0], "the Ray group to be READY", 120)
            job_id = db.execute("SELECT ray.submit_job('latin-ray', %s)", (ENTRYPOINT,)).fetchone()[0]
            assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (job_id,)).fetchone()[0] == "SUCCEEDED"
            assert "caf\u00e9 ? ? done" in db.execute("SELECT ray.job_logs(%s)", (job_id,)).fetchone()[0]

            # Ray's JSON escapes what is not ASCII; what jsonb could not hold here was an error
            fake = FakeRay().start()
            try:
                fake.cluster_status = "Pending Demands:\n {'caf\u00e9': 1.0, '\u4e2d': 1.0, '\U0001f600': 1.0}"
                db.execute("SELECT ray.register_cluster('latin-fake', %s, 'fake-token')", (fake.url,))
                assert db.execute("SELECT ray.cluster_status('latin-fake')").fetchone()[0] == \
                    "Pending Demands:\n {'caf\u00e9': 1.0, '?': 1.0, '?': 1.0}"
            finally:
                fake.stop()
    finally:
        cluster.script("destroy")
