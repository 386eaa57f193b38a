"""What pg_ray's benchmarks share: the test cluster's settings, the machine
they ran on, and how a series of timings is summarised."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path


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
