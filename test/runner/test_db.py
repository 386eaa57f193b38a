"""The runner's connection settings: where they come from, and that they are never shown."""

from __future__ import annotations

from pg_ray_runner.db import Database


def test_settings_never_show_in_its_repr() -> None:
    db = Database.from_environment({"PGPASSWORD": "hunter2", "PGUSER": "run"})
    assert "hunter2" not in repr(db)


def test_the_password_comes_from_the_runs_credentials_file(tmp_path) -> None:
    credentials = tmp_path / "pg_ray_run_credentials.json"
    credentials.write_text('{"password": "s3cret"}')
    db = Database.from_environment({"PGUSER": "run", "PGPASSWORD": "stale"}, credentials=credentials)
    assert db.params["password"] == "s3cret" and db.params["user"] == "run"
    assert "s3cret" not in repr(db)
    # outside a run's package there is no such file: the environment's, if any
    missing = Database.from_environment({"PGPASSWORD": "env"}, credentials=tmp_path / "none.json")
    assert missing.params["password"] == "env"
