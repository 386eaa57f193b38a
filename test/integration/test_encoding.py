"""A database in an encoding other than UTF-8.

Ray answers in UTF-8.  The worker converts what it keeps (a job's log, its
message) into the database's encoding, and a character the encoding has no
room for becomes "?": before, one such character in a job's output failed
that job's every answer, and the job never finished.
"""

from __future__ import annotations

import psycopg

from conftest import OtherCluster, RayHead, wait_for

# printed by the job: é is in LATIN1, the euro sign and the check mark are not
ENTRYPOINT = "python -c \"print('caf\\u00e9 \\u20ac \\u2713 done')\""


def test_a_latin1_database_keeps_what_it_can_of_a_jobs_output(ray_head: RayHead) -> None:
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
    finally:
        cluster.script("destroy")
