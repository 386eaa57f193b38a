"""The whole pipeline against the test cluster and a local Ray: snapshot, read, score, stage, check.

One local Ray session (two CPUs) serves every test of this file.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator

import joblib
import numpy as np
import pytest
import ray
from sklearn.linear_model import LogisticRegression

from pg_ray_runner.__main__ import main
from pg_ray_runner.db import Database
from pg_ray_runner.pipeline import RunError, open_snapshot, score, worker_group_resources
from pg_ray_runner.spec import RunSpec

ROWS = 20_000


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    # the workers import the runner from the checkout, as a job's workers do from its working_dir
    runner = str(Path(__file__).resolve().parents[2] / "src" / "runner")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": runner}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def source(db: Database) -> None:
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS runner_test.impressions")
        conn.execute("CREATE TABLE runner_test.impressions (id bigint PRIMARY KEY, age integer, "
                     "price double precision, code text)")
        conn.execute(f"""INSERT INTO runner_test.impressions
            SELECT g, 18 + g % 60, (g * 7919 % 1000) / 10.0,
                   CASE WHEN g % 97 = 0 THEN NULL WHEN g % 13 = 0 THEN 'a "q", b' || E'\\n' || g
                        ELSE 'c' || g % 17 END
            FROM generate_series(1, {ROWS}) g""")
        conn.execute("ANALYZE runner_test.impressions")


@pytest.fixture(scope="module")
def clf() -> LogisticRegression:
    rng = np.random.default_rng(3)
    features = np.column_stack([rng.integers(18, 78, 500), rng.uniform(0, 100, 500)])
    labels = (features[:, 0] / 60 + features[:, 1] / 100 + rng.normal(0, 0.3, 500) > 1.3).astype(int)
    return LogisticRegression().fit(features, labels)


def model_bytes(estimator: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def staging(db: Database, name: str, columns: str) -> str:
    with db.connect(autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS runner_test.{name}")
        conn.execute(f"CREATE TABLE runner_test.{name} ({columns})")
        conn.execute("TRUNCATE runner_test.progress_call")
        conn.execute("UPDATE runner_test.progress SET rows_done = 0, rows_total = NULL")
    return f'runner_test."{name}"'


def sklearn_spec(staging_table: str, **options: Any) -> dict[str, Any]:
    return {
        "job_id": 7, "attempt": 2,
        "source": {"table": '"runner_test"."impressions"', "select_list": '"id", "age", "price"'},
        "columns": [{"name": "id", "type": "bigint"}, {"name": "age", "type": "integer"},
                    {"name": "price", "type": "double precision"}],
        "key": ["id"], "inputs": ["age", "price"],
        "output": {"name": "prediction", "type": "double precision"},
        "staging_table": staging_table, "staging_columns": ["id", "prediction"],
        "model": {"name": "ctr", "version": 1, "kind": "sklearn", "options": {}, "uri": None, "has_data": True},
        "options": {"batch_size": 1500, "concurrency": 1, "num_cpus": 1, "num_gpus": 0,
                    "output": "probability", "partitions": 4, **options},
    }


def test_table_in_a_snapshot(db: Database, source: None, put_run: Callable[..., None],
                             clf: LogisticRegression) -> None:
    table = staging(db, "staged_sklearn", "id bigint, prediction double precision")
    raw = sklearn_spec(table)
    put_run(raw)
    spec = RunSpec.from_json(raw)
    with db.connect(autocommit=True) as conn:
        try:
            with open_snapshot(db, spec) as snapshot:
                assert len(snapshot.partitions) == 4 and snapshot.total_rows == ROWS
                # committed after the snapshot: the run must not see them
                conn.execute("INSERT INTO runner_test.impressions SELECT g, 30, 1.0, 'late' "
                             "FROM generate_series(100001, 100500) g")
                assert score(spec, db, snapshot, model_bytes(clf)) == ROWS
        finally:
            conn.execute("DELETE FROM runner_test.impressions WHERE id > 100000")
        staged = conn.execute(f"SELECT s.id, s.prediction, i.age, i.price FROM {table} s "
                              "LEFT JOIN runner_test.impressions i USING (id) ORDER BY s.id").fetchall()
        progress = conn.execute("SELECT rows_done, rows_total FROM runner_test.progress").fetchone()
        calls = conn.execute("SELECT rows_done_delta, rows_total FROM runner_test.progress_call").fetchall()
    ids = [r[0] for r in staged]
    assert ids == list(range(1, ROWS + 1)), "every row once, its key carried through, no late row"
    features = np.array([[r[2], r[3]] for r in staged], dtype=np.float64)
    np.testing.assert_allclose([r[1] for r in staged], clf.predict_proba(features)[:, 1], rtol=1e-12)
    assert progress == (ROWS, ROWS)
    assert calls[0] == (0, ROWS), "the total first"
    assert len(calls) >= 2 and all(total is None for _, total in calls[1:])


MODULE = textwrap.dedent("""
    import pandas as pd

    class Describe:
        def __init__(self, sep):
            self.sep = sep

        def __call__(self, batch: pd.DataFrame):
            if (batch["age"] < 0).any():
                raise ValueError("negative age")
            return {"label": [("" if pd.isna(c) else c) + f"{self.sep}{a}" for c, a in zip(batch["code"], batch["age"])]}
""")


def python_spec(tmp_path: Path, staging_table: str, query: str, **options: Any) -> dict[str, Any]:
    (tmp_path / "describe_model.py").write_text(MODULE)
    return {
        "job_id": 8, "attempt": 1,
        "source": {"query": query, "select_list": '"code", "id", "age"', "shard_key": "code"},
        "columns": [{"name": "code", "type": "text"}, {"name": "id", "type": "bigint"},
                    {"name": "age", "type": "integer"}],
        "key": ["code", "id"], "inputs": ["code", "age"],
        "output": {"name": "label", "type": "text"},
        "staging_table": staging_table, "staging_columns": ["code", "id", "label"],
        "model": {"name": "describe", "version": 3, "kind": "python", "uri": "describe_model:Describe",
                  "options": {"path": str(tmp_path), "init_kwargs": {"sep": "¦"}}, "has_data": False},
        "options": {"batch_size": 2000, "concurrency": [1, 2], "num_cpus": 0.5, "partitions": 3, **options},
    }


def test_query_shards_text_keys_and_a_python_model(db: Database, source: None, put_run: Callable[..., None],
                                                   tmp_path: Path) -> None:
    table = staging(db, "staged_python", "code text, id bigint, label text")
    raw = python_spec(tmp_path, table, "SELECT * FROM runner_test.impressions WHERE id % 2 = 0")
    put_run(raw)
    spec = RunSpec.from_json(raw)
    with open_snapshot(db, spec) as snapshot:
        assert len(snapshot.partitions) == 3
        assert score(spec, db, snapshot, None) == ROWS // 2
    with db.connect(autocommit=True) as conn:
        different = conn.execute(
            f"SELECT count(*) FROM {table} s JOIN runner_test.impressions i USING (id) "
            "WHERE s.code IS DISTINCT FROM i.code OR s.label IS DISTINCT FROM coalesce(i.code, '') || '¦' || i.age"
        ).fetchone()[0]
        nulls, quoted = conn.execute(f"SELECT count(*) FILTER (WHERE code IS NULL), "
                                     f"count(*) FILTER (WHERE code LIKE 'a \"q\", b' || E'\\n' || '%') FROM {table}"
                                     ).fetchone()
    assert different == 0, "text keys and outputs come back unchanged"
    assert nulls == ROWS // 2 // 97 and quoted > 0


def test_staging_count_mismatch_fails_the_run(db: Database, source: None, put_run: Callable[..., None],
                                              tmp_path: Path) -> None:
    table = staging(db, "staged_mismatch", "code text, id bigint, label text")
    with db.connect(autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} VALUES ('stray', -1, 'x')")
    raw = python_spec(tmp_path, table, "SELECT * FROM runner_test.impressions WHERE id <= 100")
    put_run(raw)
    spec = RunSpec.from_json(raw)
    with open_snapshot(db, spec) as snapshot, pytest.raises(RunError, match="has 101 rows, but the source had 100"):
        score(spec, db, snapshot, None)


def test_main_scores_and_prints_a_summary(db: Database, source: None, put_run: Callable[..., None],
                                          clf: LogisticRegression,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    table = staging(db, "staged_main", "id bigint, prediction double precision")
    put_run(sklearn_spec(table, partitions=None), model_bytes(clf))
    assert main(db) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f"pg_ray runner: job 7 attempt 2: {ROWS} rows scored in ")
    assert out[-1].endswith(" rows/s)")
    with db.connect(autocommit=True) as conn:
        assert conn.execute(f"SELECT count(DISTINCT id) FROM {table}").fetchone()[0] == ROWS


def test_main_fails_in_one_line_naming_the_row(db: Database, source: None, put_run: Callable[..., None],
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    table = staging(db, "staged_failing", "code text, id bigint, label text")
    put_run(python_spec(tmp_path, table, "SELECT code, id, -age AS age FROM runner_test.impressions "
                                             "WHERE id <= 50"), None)
    assert main(db) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "pg_ray runner: job 8 attempt 1 failed: ValueError: negative age"


def test_main_fails_when_the_model_cannot_load(db: Database, source: None, put_run: Callable[..., None],
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    table = staging(db, "staged_no_class", "code text, id bigint, label text")
    spec = python_spec(tmp_path, table, "SELECT * FROM runner_test.impressions WHERE id <= 50")
    spec["model"]["uri"] = "describe_model:Nope"
    put_run(spec, None)
    assert main(db) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pg_ray runner: job 8 attempt 1 failed: ModelError: "
                              "cannot load python model class describe_model:Nope")


def test_http_failure_names_the_row_key(db: Database, source: None, put_run: Callable[..., None],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from fake_openai import FakeOpenAI
    server = FakeOpenAI(fail_always=503).start()
    try:
        table = staging(db, "staged_http", "id bigint, answer text")
        put_run({
            "job_id": 9, "attempt": 1,
            "source": {"query": "SELECT id, code FROM runner_test.impressions WHERE id BETWEEN 11 AND 12",
                       "select_list": '"id", "code"', "shard_key": None},
            "columns": [{"name": "id", "type": "bigint"}, {"name": "code", "type": "text"}],
            "key": ["id"], "inputs": ["code"], "output": {"name": "answer", "type": "text"},
            "staging_table": table, "staging_columns": ["id", "answer"],
            "model": {"name": "chat", "version": 1, "kind": "http", "uri": server.base_url, "has_data": False,
                      "options": {"model": "fake", "max_retries": 1, "backoff_s": 0.01}},
            "options": {"concurrency": 1, "num_cpus": 0.5},
        }, None)
        assert main(db) == 1
    finally:
        server.stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pg_ray runner: job 9 attempt 1 failed: ModelError: row with id=1")
    assert err[-1].endswith("failed after 2 attempts: HTTP 503: {\"error\": {\"message\": \"fake failure 503\"}}")
    assert server.requests >= 2


def test_replicas_of_a_run_for_a_worker_group_ask_for_its_resource() -> None:
    assert worker_group_resources({"worker_group": "gpu"}) == {"resources": {"pgray-worker-group:gpu": 0.001}}
    assert worker_group_resources({"num_cpus": 1}) == {}
