"""The benchmarks still run (one round each, results thrown away); their
numbers are taken with scripts/bench, never in tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from conftest import ROOT, RayHead, drop_local_groups


def test_job_roundtrip_benchmark_runs(ray_head: RayHead, ray_group: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench/job_roundtrip.py"), "--smoke",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "job_roundtrip_smoke.csv").read_text().splitlines()
    assert rows[0].startswith("round,pg_ray_s,ray_cli_s,rest_poll_s") and len(rows) == 2
    assert "| pg_ray / CLI |" in (tmp_path / "job_roundtrip_smoke.md").read_text()


def test_local_group_benchmark_runs(db: psycopg.Connection, tmp_path: Path) -> None:
    drop_local_groups(db)
    result = subprocess.run([sys.executable, str(ROOT / "bench/local_group.py"), "--smoke",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "local_group_smoke.csv").read_text().splitlines()
    assert rows[0] == "kind,round,pg_ray_s,by_hand_s,ratio"
    assert [r.split(",")[0] for r in rows[1:]] == ["create_to_ready", "head_death_no_ha", "head_death_ha"]
    assert "| with HA (Redis-backed GCS, workers stay) |" in (tmp_path / "local_group_smoke.md").read_text()


def test_load_benchmark_runs_and_accounts_for_every_job(ray_head: RayHead, db: psycopg.Connection,
                                                        tmp_path: Path) -> None:
    # 200 jobs from 10 pgbench sessions on the stand-in, 20 on the real head;
    # the benchmark fails unless every job is accounted for exactly once
    result = subprocess.run([sys.executable, str(ROOT / "bench/load.py"), "--smoke", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = (tmp_path / "load_smoke.csv").read_text().splitlines()
    assert rows[0].startswith("target,jobs,clients,tps,submit_p50_ms")
    assert [r.split(",")[0:2] for r in rows[1:]] == [["stand-in", "200"], ["real Ray", "20"]]
    assert db.execute("SELECT count(*) FROM ray.job WHERE resource_group IN ('load-fake', 'load-real')"
                      ).fetchone()[0] == 0


def test_admission_benchmark_runs(db: psycopg.Connection, tmp_path: Path) -> None:
    # 12 jobs of one role, 2 each of two late ones, through pg_ray and straight to Ray
    drop_local_groups(db)
    result = subprocess.run([sys.executable, str(ROOT / "bench/admission.py"), "--smoke", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = (tmp_path / "admission_smoke.csv").read_text().splitlines()
    assert rows[0].startswith("way,jobs,succeeded,failed,ray_requeues,makespan_s")
    assert [r.split(",")[0:3] for r in rows[1:]][0] == ["pg_ray", "16", "16"]
    assert db.execute("SELECT count(*) FROM ray.job WHERE resource_group = 'bench-admission'").fetchone()[0] == 0
