"""The runner's connection settings: the submitter's search_path reaches every session."""

from __future__ import annotations

import psycopg

from pg_ray_runner.db import Database


def test_search_path_with_quoted_names_reaches_the_session(db: Database, conn: psycopg.Connection) -> None:
    conn.execute('CREATE SCHEMA IF NOT EXISTS "Odd Schema"')
    conn.execute('CREATE TABLE IF NOT EXISTS "Odd Schema".only_here (x int)')
    conn.commit()
    with db.with_search_path('"Odd Schema", public').connect(autocommit=True) as other:
        assert other.execute("SHOW search_path").fetchone()[0] == '"Odd Schema",public'
        assert other.execute("SELECT count(*) FROM only_here").fetchone()[0] == 0
    assert db.with_search_path(None) is db


def test_settings_never_show_in_its_repr() -> None:
    db = Database.from_environment({"PGPASSWORD": "hunter2", "PGUSER": "run"})
    assert "hunter2" not in repr(db) and "hunter2" not in repr(db.with_search_path("public"))


def test_the_password_comes_from_the_runs_credentials_file(tmp_path) -> None:
    credentials = tmp_path / "pg_ray_run_credentials.json"
    credentials.write_text('{"password": "s3cret"}')
    db = Database.from_environment({"PGUSER": "run", "PGPASSWORD": "stale"}, credentials=credentials)
    assert db.params["password"] == "s3cret" and db.params["user"] == "run"
    assert "s3cret" not in repr(db)
    # outside a run's package there is no such file: the environment's, if any
    missing = Database.from_environment({"PGPASSWORD": "env"}, credentials=tmp_path / "none.json")
    assert missing.params["password"] == "env"
