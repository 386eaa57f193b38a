"""What pg_ray's benchmarks share: the test cluster's settings, the machine
they ran on, and how a series of timings is summarised."""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import psycopg

ROOT = Path(__file__).resolve().parents[1]


def read_env(path: Path) -> dict[str, str]:
    """The `export KEY=value` lines of an env file (scripts/test-cluster's, scripts/ray-test-head's)."""
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value
    return values


def machine(pg_version: str, ray_version: str) -> str:
    """One line on where a benchmark ran, for its results."""
    memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    return (f"{platform.node()}: {os.cpu_count()} cores, {memory_gib} GiB, "
            f"PostgreSQL {pg_version}, Ray {ray_version}")


def summary(values: list[float]) -> str:
    """min / median / max, two decimals."""
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def arguments(description: str, repeat: int,
              more: Callable[[argparse.ArgumentParser], None] | None = None) -> tuple[argparse.Namespace, int]:
    """The options every benchmark takes (--repeat, --smoke, --out), and the rounds to run;
    more adds a benchmark's own options to the parser."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--smoke", action="store_true", help="one round, to check the benchmark runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results")
    if more is not None:
        more(parser)
    args = parser.parse_args()
    return args, 1 if args.smoke else args.repeat


def connect(autocommit: bool = True) -> psycopg.Connection:
    """A superuser connection to the test cluster's database (scripts/test-cluster), pg_ray in it."""
    pg = read_env(Path(os.environ.get("PG_RAY_TEST_DIR", "/tmp/pg_ray_test")) / "env")
    db = psycopg.connect(host=pg["PGHOST"], port=pg["PGPORT"], user="postgres", dbname="postgres",
                         autocommit=autocommit)
    db.execute("CREATE EXTENSION IF NOT EXISTS pg_ray")
    return db


def write_csv(args: argparse.Namespace, benchmark: str, rows: list[dict]) -> str:
    """Write the raw rows of a run to <out>/<benchmark>[_smoke].csv; returns the results' base name."""
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{benchmark}_smoke" if args.smoke else benchmark
    with open(args.out / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return name


def wait_until(condition: Callable[[], object], what: str, timeout: float = 300, every: float = 0.02):
    """Poll condition until it returns something truthy, and return that; fail after timeout."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")
