"""Monitoring for real: Debian's Prometheus and prometheus-postgres-exporter scrape pg_ray and a
live local group.  The exporter runs the shipped queries file (monitoring/postgres_exporter.yaml)
as a role that has ray_monitor; Prometheus finds the Ray nodes through the targets file the worker
keeps (pg_ray.metrics_targets_file).  Prometheus's HTTP API then says: pg_ray's job counts equal
ray.jobs, and Ray's own node metrics are there for every live node."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from conftest import ROOT, cluster_settings, connect, reload_settings, wait_for
from test_local import wait_for_group_state

GROUP = "it-mon"
EXPORTER_PORT = 19187
PROMETHEUS_PORT = 19090

def prometheus_query(query: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.fixture(scope="module")
def monitoring(local_nodes: psycopg.Connection) -> Iterator[Path]:
    """The exporter and Prometheus, scraping every second; yields the targets file."""
    for program in ("prometheus", "prometheus-postgres-exporter"):
        assert shutil.which(program), f"{program} is missing: scripts/install-deps installs it"
    db = local_nodes
    work = Path(tempfile.mkdtemp(prefix="pgray_prom_", dir="/tmp"))
    postgres = pwd.getpwnam("postgres")
    os.chown(work, postgres.pw_uid, postgres.pw_gid)
    targets = work / "ray_nodes.json"
    db.execute("DROP ROLE IF EXISTS it_exporter")
    db.execute("CREATE ROLE it_exporter LOGIN IN ROLE ray_monitor")
    settings = cluster_settings()
    exporter = subprocess.Popen(
        ["prometheus-postgres-exporter", f"--extend.query-path={ROOT / 'monitoring/postgres_exporter.yaml'}",
         f"--web.listen-address=127.0.0.1:{EXPORTER_PORT}", "--disable-default-metrics",
         "--disable-settings-metrics"],
        env={**os.environ, "DATA_SOURCE_NAME": f"host={settings['PGHOST']} port={settings['PGPORT']} "
                                               "user=it_exporter dbname=postgres sslmode=disable"},
        stdout=subprocess.DEVNULL, stderr=open(work / "exporter.log", "w"))
    (work / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: pg_ray\n    static_configs:\n      - targets: ['127.0.0.1:{EXPORTER_PORT}']\n"
        f"  - job_name: ray\n    file_sd_configs:\n      - files: ['{targets}']\n        refresh_interval: 1s\n")
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"],
        stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "w"))
    try:
        reload_settings(db, metrics_targets_file=str(targets))
        yield targets
    finally:
        reload_settings(db, metrics_targets_file=None)
        for process in (prometheus, exporter):
            process.terminate()
            process.wait(timeout=30)
        db.execute("DROP ROLE IF EXISTS it_exporter")
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def group(local_nodes: psycopg.Connection, monitoring: Path) -> str:
    db = local_nodes
    db.execute("SELECT ray.create_resource_group(%s, 'small', options => %s)",
               (GROUP, '{"object_store_memory_mb": 100}'))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', 'small', 1, 1)", (GROUP,))
    wait_for_group_state(db, "READY", GROUP)
    return GROUP


def live_nodes(db: psycopg.Connection) -> set[str]:
    return {str(r[0]) for r in db.execute(
        "SELECT node_id FROM ray.node WHERE kind IN ('head', 'worker') AND pid IS NOT NULL"
        " AND stop_requested_at IS NULL").fetchall()}


def test_the_targets_file_lists_every_live_node(local_nodes: psycopg.Connection, monitoring: Path,
                                                group: str) -> None:
    db = local_nodes
    expected = live_nodes(db)

    def listed() -> set[str] | None:
        if not monitoring.exists():
            return None
        entries = json.loads(monitoring.read_text())
        return {e["labels"]["pg_ray_node"] for e in entries}
    wait_for(lambda: listed() == expected, "the targets file to list every live node")
    entries = {e["labels"]["pg_ray_node"]: e for e in json.loads(monitoring.read_text())}
    slots = {r[0]: r[1:] for r in db.execute(
        "SELECT node_id::text, port_base + 5, resource_group, kind, worker_group FROM ray.node").fetchall()}
    for node, entry in entries.items():
        port, resource_group, kind, worker_group = slots[node]
        assert entry["targets"] == [f"127.0.0.1:{port}"]
        assert entry["labels"] == {"pg_ray_node": node, "resource_group": resource_group, "node_kind": kind,
                                   **({"worker_group": worker_group} if worker_group else {})}
    assert {e["labels"]["node_kind"] for e in entries.values() if e["labels"]["resource_group"] == GROUP} \
        == {"head", "worker"}
    assert oct(monitoring.stat().st_mode & 0o777) == oct(0o644)


def test_the_worker_never_writes_through_a_link_planted_at_the_targets_file(
        local_nodes: psycopg.Connection, monitoring: Path, group: str) -> None:
    """The server's OS user writes the file: a link planted under the name it writes first
    must not make it overwrite what the link points at."""
    db = local_nodes
    victim = monitoring.parent / "victim.conf"
    victim.write_text("keep me\n")
    postgres = pwd.getpwnam("postgres")
    os.chown(victim, postgres.pw_uid, postgres.pw_gid)
    elsewhere = monitoring.parent / "elsewhere.json"
    os.symlink(victim, str(elsewhere) + ".tmp")
    try:
        reload_settings(db, metrics_targets_file=str(elsewhere))
        wait_for(lambda: elsewhere.exists() and json.loads(elsewhere.read_text()), "the targets file elsewhere")
        assert not elsewhere.is_symlink()
        assert victim.read_text() == "keep me\n"
    finally:
        reload_settings(db, metrics_targets_file=str(monitoring))


def test_prometheus_has_pg_rays_job_counts_and_rays_node_metrics(local_nodes: psycopg.Connection,
                                                                 monitoring: Path, group: str) -> None:
    db = local_nodes
    # jobs of two states in the group: some that stay queued (stopped before they start), one done
    db.execute("SELECT ray.stop_job(ray.submit_job(%s, 'true'))", (GROUP,))
    done = db.execute("SELECT ray.submit_job(%s, 'true')", (GROUP,)).fetchone()[0]
    assert db.execute("SELECT ray.wait_job(%s, '3 minutes')", (done,)).fetchone()[0] == "SUCCEEDED"

    def counts_agree() -> bool:
        scraped = {(r["metric"]["resource_group"], r["metric"]["state"]): float(r["value"][1])
                   for r in prometheus_query('pg_ray_job_count{job="pg_ray"}')}
        actual = {(g, s): float(n) for g, s, n in db.execute(
            "SELECT resource_group, state, count(*) FROM ray.jobs GROUP BY 1, 2").fetchall()}
        return bool(scraped) and scraped == actual
    wait_for(counts_agree, "pg_ray_job_count to equal ray.jobs", 60)
    stopped = db.execute("SELECT count(*) FROM ray.jobs WHERE resource_group = %s AND state = 'STOPPED'",
                         (GROUP,)).fetchone()[0]
    assert stopped >= 1
    assert prometheus_query(f'pg_ray_job_count{{resource_group="{GROUP}",state="STOPPED"}}')[0]["value"][1] \
        == str(stopped)
    # the other queries answer too
    for metric in ("pg_ray_queue_depth", "pg_ray_node_count", "pg_ray_usage_node_seconds_total",
                   "pg_ray_worker_running", "pg_ray_worker_last_round_age_seconds", "pg_ray_resource_group_info"):
        wait_for(lambda: prometheus_query(f'{metric}{{job="pg_ray"}}'), f"{metric} in Prometheus", 30)
    assert prometheus_query('pg_ray_worker_running{job="pg_ray"}')[0]["value"][1] == "1"

    expected = live_nodes(db)

    def ray_metrics_of_every_node() -> bool:
        result = prometheus_query('count by (pg_ray_node, resource_group) (ray_node_cpu_count{job="ray"})')
        return {r["metric"]["pg_ray_node"] for r in result} == expected
    wait_for(ray_metrics_of_every_node, "Ray's node metrics of every live node", 90)
    up = prometheus_query('up{job="ray"}')
    assert {r["metric"]["pg_ray_node"] for r in up if r["value"][1] == "1"} == expected


def panel_queries(name: str) -> list[str]:
    dashboard = json.loads((ROOT / "monitoring" / name).read_text())
    return [t.get("expr") or t["rawSql"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_every_panel_of_the_prometheus_dashboard_has_data(local_nodes: psycopg.Connection, monitoring: Path,
                                                          group: str) -> None:
    for expr in panel_queries("grafana-pg_ray-prometheus.json"):
        query = expr.replace("$resource_group", GROUP).replace("$__rate_interval", "1m")
        wait_for(lambda: prometheus_query(query), f"data for {query}", 90)


def grafana_sql(sql: str) -> str:
    """A panel's SQL as Grafana's PostgreSQL data source sends it: macros expanded for the last
    seven days, the resource group variable set to the test's group."""
    sql = re.sub(r"\$__timeFilter\(([^()]*(?:\([^()]*\))?[^()]*)\)",
                 r"\1 BETWEEN now() - interval '7 days' AND now()", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+), '([^']+)'\)",
                 r"to_timestamp(floor(extract(epoch FROM \1) / extract(epoch FROM interval '\2'))"
                 r" * extract(epoch FROM interval '\2')) AS time", sql)
    assert "$__" not in sql, sql
    return sql.replace("$resource_group", f"'{GROUP}'")


def test_every_panel_of_the_postgresql_dashboard_runs_as_a_user_and_as_a_monitor(
        local_nodes: psycopg.Connection, monitoring: Path, group: str) -> None:
    db = local_nodes
    db.execute("DROP ROLE IF EXISTS it_bi_user")
    db.execute("CREATE ROLE it_bi_user LOGIN IN ROLE ray_user")
    db.execute("SELECT ray.grant_usage(%s, 'it_bi_user')", (GROUP,))
    try:
        # a job of the user's, done, so that its panels have rows of its own
        with connect(user="it_bi_user") as user:
            job = user.execute("SELECT ray.submit_job(%s, 'true')", (GROUP,)).fetchone()[0]
            assert user.execute("SELECT ray.wait_job(%s, '3 minutes')", (job,)).fetchone()[0] == "SUCCEEDED"
        dashboard = json.loads((ROOT / "monitoring/grafana-pg_ray-postgresql.json").read_text())
        variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "resource_group")["query"]
        for role in ("it_bi_user", "it_exporter"):
            with connect(user=role) as conn:
                assert GROUP in {r[0] for r in conn.execute(variable).fetchall()}
                rows = {sql: conn.execute(grafana_sql(sql)).fetchall()
                        for sql in panel_queries("grafana-pg_ray-postgresql.json")}
                jobs = next(r for sql, r in rows.items() if sql.startswith("SELECT job_id, owner"))
                owners = {r[1] for r in jobs}
                if role == "it_bi_user":
                    assert owners == {"it_bi_user"}
                else:
                    assert {"it_bi_user", "postgres"} <= owners
        # a read-only role changes nothing: its transactions may not write, and it has no API
        with connect(user="it_exporter") as monitor:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                monitor.execute("SELECT ray.submit_job(%s, 'true')", (GROUP,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                monitor.execute("DELETE FROM ray.job")
    finally:
        db.execute("SELECT ray.revoke_usage(%s, 'it_bi_user')", (GROUP,))
        db.execute("DELETE FROM ray.job WHERE owner = 'it_bi_user'")
        db.execute("DROP ROLE IF EXISTS it_bi_user")
