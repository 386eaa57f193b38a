#!/usr/bin/env python3
"""Batch scoring: ray.batch_inference against a Ray Data job written by hand, and the floor.

The same CTR table (scripts/ctr.py: impression_id, age, hour, position,
price, mobile) and the same sklearn click model, on the same local resource
group (a head and one worker node of 2 CPUs), scored three ways, alternated
(a b c a b c ...) in each size after a warm-up:

  a  pg_ray     SELECT ray.batch_inference(...) into a fresh target, then
                ray.wait_job: from the call until wait_job returns SUCCEEDED
                (submission, Ray Data start, reading, scoring, staging and
                publishing).
  b  by hand    what a Ray user writes: a Ray job submitted with
                ray.submit_job (working_dir: the script and the model file)
                that runs Ray Data read_sql -> map_batches (the same model,
                batch size and actor pool) -> write_sql with psycopg, as a
                role of its own with a password over 127.0.0.1; from submit_job until
                wait_job returns SUCCEEDED.
  c  floor      in this one process: COPY (SELECT key, inputs) TO STDOUT into
                memory (psycopg) and parsed by pyarrow, the model's
                predict_proba on every row at once, COPY of (key,
                prediction) into a fresh table; the sum of the three.

The predictions of a (and of b) must equal c's, row for row within 1e-9,
or the benchmark fails.  b skips a size whose estimate (its median at the
size below, scaled by rows) is over --b-budget-minutes, and says so.

Needs the test cluster (scripts/test-cluster); scripts/bench starts it.
Writes CSV, Markdown and a PNG plot into bench/results/ (or --out).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import io
import json
import math
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import joblib
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from common import ROOT, arguments, connect, machine, read_env, summary, wait_until, write_csv

sys.path.insert(0, str(ROOT / "scripts"))
from ctr import FEATURES, impressions_sql, train  # noqa: E402

SCHEMA = "bench_bi"
SOURCE = f"{SCHEMA}.impressions"
KEY = "impression_id"
GROUP = "bench-batch"
# the login of the handwritten job
HAND_ROLE = "bench_handwritten"
MODEL = "bench-ctr"
# the worker node: 2 CPUs, as the tests make theirs with INSERT INTO ray.node_spec
SPEC = ("bench2", "CPU", 2, 8192, 0, 2, "batch inference benchmark: 2 CPUs, 8 GiB")
# local Ray nodes of this benchmark take ports here, clear of other local clusters on the host
PORT_RANGE = (32000, 33999)
# Ray Data settings of a and b alike; on 2 CPUs one actor of 1 CPU leaves one for b's read_sql and
# write_sql tasks, which ask for a CPU each (two such actors would starve them)
RUN_OPTIONS = {"batch_size": 4096, "concurrency": 1, "num_cpus": 1}
SIZES = [100_000, 1_000_000, 10_000_000]
SMOKE_SIZES = [2_000]
WAIT = "1 hour"
TOLERANCE = 1e-9

HANDWRITTEN = '''\
"""Batch scoring as a Ray user writes it: Ray Data read_sql -> map_batches -> write_sql.

python handwritten.py SOURCE TARGET BATCH_SIZE CONCURRENCY NUM_CPUS; the
connection comes from libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD,
PGDATABASE).
"""
import sys

import joblib
import numpy as np
import psycopg
import ray

FEATURES = ["age", "hour", "position", "price", "mobile"]


def connect():
    return psycopg.connect()


class Scorer:
    def __init__(self):
        self.model = joblib.load("model.joblib")

    def __call__(self, batch):
        x = batch[FEATURES].to_numpy(dtype=np.float64)
        return {"impression_id": batch["impression_id"].to_numpy(),
                "prediction": self.model.predict_proba(x)[:, 1]}


source, target, batch_size, concurrency, num_cpus = sys.argv[1:]
ray.init()
ds = ray.data.read_sql(f"SELECT impression_id, age, hour, position, price, mobile FROM {source}", connect)
ds = ds.map_batches(Scorer, batch_size=int(batch_size), batch_format="pandas",
                    concurrency=int(concurrency), num_cpus=float(num_cpus))
ds.write_sql(f"INSERT INTO {target} VALUES (%s, %s)", connect)
print("handwritten: done")
'''


def fail(message: str) -> None:
    print(f"batch_inference benchmark FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def group_state(db: psycopg.Connection) -> str | None:
    row = db.execute("SELECT state FROM ray.resource_groups WHERE name = %s", (GROUP,)).fetchone()
    return row[0] if row else None


def drop_group(db: psycopg.Connection) -> None:
    db.execute("SELECT ray.drop_resource_group(name, force => true) FROM ray.resource_group "
               "WHERE name = %s AND delete_requested_at IS NULL", (GROUP,))
    wait_until(lambda: group_state(db) is None, f"{GROUP} to be dropped", timeout=180)


def set_setting(db: psycopg.Connection, name: str, value: str) -> None:
    db.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    db.execute("SELECT pg_reload_conf()")
    wait_until(lambda: connect().execute(f"SHOW {name}").fetchone()[0] == value, f"{name} to be {value}")


def create_group(db: psycopg.Connection) -> None:
    db.execute("INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, num_gpus, cpu_units,"
               " description) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", SPEC)
    db.execute("SELECT ray.create_resource_group(%s, 'small')", (GROUP,))
    db.execute("SELECT ray.add_worker_group(%s, 'cpu', 'CPU', %s, 1, 1)", (GROUP, SPEC[0]))
    wait_until(lambda: group_state(db) == "READY", f"{GROUP} to be READY", timeout=300)


def make_table(db: psycopg.Connection, rows: int) -> float:
    """The source table of a size, vacuumed so that no method pays for hint bits; seconds taken."""
    start = time.perf_counter()
    db.execute(impressions_sql(rows, SOURCE))
    db.execute(f"VACUUM (FREEZE, ANALYZE) {SOURCE}")
    db.execute("CHECKPOINT")
    return time.perf_counter() - start


def settle(db: psycopg.Connection, target: str) -> None:
    """After a method, untimed: vacuum its target and checkpoint, so that the next method pays
    neither for autovacuum of the rows just written nor for writing out their pages."""
    db.execute(f"VACUUM (ANALYZE) {target}")
    db.execute("CHECKPOINT")


def job_phases(db: psycopg.Connection, job_id: int) -> dict[str, float]:
    """Seconds from the first event of each state to the next state's, from ray.job_events."""
    events = db.execute("SELECT to_state, min(extract(epoch FROM at)) FROM ray.job_events WHERE job_id = %s"
                        " GROUP BY to_state", (job_id,)).fetchall()
    at = {state: float(t) for state, t in events}
    phases = {"queued_to_running_s": at.get("RUNNING", math.nan) - at["QUEUED"]}
    end = at.get("PUBLISHING", at.get("SUCCEEDED", math.nan))
    phases["running_s"] = end - at.get("RUNNING", math.nan)
    phases["publishing_s"] = at["SUCCEEDED"] - at["PUBLISHING"] if "PUBLISHING" in at else math.nan
    return phases


def finished(db: psycopg.Connection, job_id: int, what: str) -> None:
    state = db.execute("SELECT ray.wait_job(%s, %s)", (job_id, WAIT)).fetchone()[0]
    if state != "SUCCEEDED":
        message = db.execute("SELECT message FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()[0]
        log = db.execute("SELECT ray.job_logs(%s)", (job_id,)).fetchone()[0]
        fail(f"{what}: job {job_id} is {state}: {message}\n--- ray.job_logs({job_id}) ---\n{log}")


def run_pg_ray(db: psycopg.Connection, target: str) -> dict[str, float]:
    """a: ray.batch_inference into a fresh target, until wait_job returns SUCCEEDED."""
    db.execute(f"DROP TABLE IF EXISTS {target}")
    start = time.perf_counter()
    job_id = db.execute(
        "SELECT ray.batch_inference(%s, %s, %s, %s, input_columns => %s, options => %s)",
        (GROUP, SOURCE, MODEL, target, FEATURES, json.dumps(RUN_OPTIONS))).fetchone()[0]
    finished(db, job_id, "ray.batch_inference")
    seconds = time.perf_counter() - start
    written = db.execute("SELECT rows_written FROM ray.jobs WHERE job_id = %s", (job_id,)).fetchone()[0]
    # the runner's own time, from its export of the snapshot to the checked staging table
    log = db.execute("SELECT ray.job_logs(%s)", (job_id,)).fetchone()[0] or ""
    scored = re.search(r"rows scored in ([0-9.]+) s", log)
    return {"seconds": seconds, "job_id": job_id, "rows_written": written,
            "runner_s": float(scored[1]) if scored else math.nan, **job_phases(db, job_id)}


def handwritten_zip(model_bytes: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handwritten.py", HANDWRITTEN)
        archive.writestr("model.joblib", model_bytes)
    return buffer.getvalue()


def handwritten_login(db: psycopg.Connection) -> str:
    """The role the handwritten job logs in as over TCP, with a password, as a Ray user's job
    would (job code on a local group cannot log in as the superuser); its password."""
    password = secrets.token_hex(16)
    if not db.execute("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (HAND_ROLE,)).fetchone()[0]:
        db.execute(f"CREATE ROLE {HAND_ROLE} LOGIN")
    db.execute(f"ALTER ROLE {HAND_ROLE} PASSWORD '{password}'")
    db.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {HAND_ROLE}")
    return password


def run_by_hand(db: psycopg.Connection, target: str, working_dir: bytes, port: str,
                password: str) -> dict[str, float]:
    """b: the handwritten Ray Data job, from ray.submit_job until wait_job returns SUCCEEDED."""
    db.execute(f"DROP TABLE IF EXISTS {target}")
    db.execute(f"CREATE TABLE {target} ({KEY} bigint NOT NULL, prediction double precision)")
    db.execute(f"GRANT SELECT ON {SOURCE} TO {HAND_ROLE}")
    db.execute(f"GRANT INSERT ON {target} TO {HAND_ROLE}")
    runtime_env = {"env_vars": {"PGHOST": "127.0.0.1", "PGPORT": port, "PGUSER": HAND_ROLE,
                                "PGPASSWORD": password, "PGDATABASE": "postgres",
                                "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}}
    entrypoint = (f"python handwritten.py {SOURCE} {target} {RUN_OPTIONS['batch_size']} "
                  f"{RUN_OPTIONS['concurrency']} {RUN_OPTIONS['num_cpus']}")
    start = time.perf_counter()
    job_id = db.execute("SELECT ray.submit_job(%s, %s, runtime_env => %s, working_dir => %s)",
                        (GROUP, entrypoint, json.dumps(runtime_env), working_dir)).fetchone()[0]
    finished(db, job_id, "the handwritten Ray Data job")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "job_id": job_id, **job_phases(db, job_id)}


CSV_READ = pacsv.ReadOptions(column_names=[KEY, *FEATURES], block_size=16 << 20)
CSV_CONVERT = pacsv.ConvertOptions(column_types={KEY: pa.int64(), "age": pa.int32(), "hour": pa.int32(),
                                                 "position": pa.int32(), "price": pa.float64(),
                                                 "mobile": pa.int32()})


def run_floor(db: psycopg.Connection, target: str, model) -> dict[str, float]:
    """c: COPY out into memory, predict_proba on everything, COPY in; each step timed."""
    db.execute(f"DROP TABLE IF EXISTS {target}")
    db.execute(f"CREATE TABLE {target} ({KEY} bigint NOT NULL, prediction double precision)")
    columns = ", ".join([KEY, *FEATURES])
    t0 = time.perf_counter()
    data = bytearray()
    with db.cursor() as cur, cur.copy(f"COPY (SELECT {columns} FROM {SOURCE}) TO STDOUT WITH (FORMAT csv)") as copy:
        for chunk in copy:
            data += chunk
    table = pacsv.read_csv(io.BytesIO(data), read_options=CSV_READ, convert_options=CSV_CONVERT)
    del data
    t1 = time.perf_counter()
    x = np.column_stack([table.column(f).to_numpy().astype(np.float64) for f in FEATURES])
    prediction = model.predict_proba(x)[:, 1]
    t2 = time.perf_counter()
    out = io.BytesIO()
    pacsv.write_csv(pa.table({KEY: table.column(KEY), "prediction": prediction}), out,
                    write_options=pacsv.WriteOptions(include_header=False))
    with db.transaction(), db.cursor() as cur, \
            cur.copy(f"COPY {target} ({KEY}, prediction) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(out.getbuffer())
    t3 = time.perf_counter()
    return {"seconds": t3 - t0, "copy_out_s": t1 - t0, "predict_s": t2 - t1, "copy_in_s": t3 - t2}


def check_same(db: psycopg.Connection, got: str, floor: str, rows: int, what: str) -> None:
    """Every key of the source once in both tables, with the same prediction within TOLERANCE."""
    total, unmatched, nulls, worst = db.execute(
        f"SELECT count(*), count(*) FILTER (WHERE g.{KEY} IS NULL OR f.{KEY} IS NULL),"
        f" count(*) FILTER (WHERE g.prediction IS NULL OR f.prediction IS NULL),"
        f" coalesce(max(abs(g.prediction - f.prediction)), 0)"
        f" FROM {got} g FULL JOIN {floor} f USING ({KEY})").fetchone()
    distinct = db.execute(f"SELECT count(DISTINCT {KEY}) FROM {got}").fetchone()[0]
    if total != rows or unmatched or nulls or distinct != rows or worst > TOLERANCE:
        fail(f"{what} ({got}) differs from the floor's predictions ({floor}): {total} joined rows for "
             f"{rows} source rows, {distinct} distinct keys, {unmatched} rows in one table only, "
             f"{nulls} NULL predictions, largest difference {worst}")


def rounds_at(rows: int, repeat: int, smoke: bool) -> int:
    """Rounds of a size: --repeat up to 100k rows, at most 3 above (a round takes minutes there)."""
    if smoke:
        return 1
    return repeat if rows <= 100_000 else min(repeat, 3)


def options(parser) -> None:
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help=f"rows of the source table, comma separated (default {','.join(map(str, SIZES))})")
    parser.add_argument("--b-budget-minutes", type=float, default=20.0,
                        help="skip the handwritten job at a size whose estimate is longer than this")


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    args, repeat = arguments(__doc__.splitlines()[0], 5, options)
    sizes = args.sizes or (SMOKE_SIZES if args.smoke else SIZES)
    began = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        train(f"{tmp}/model.joblib")
        model_bytes = Path(f"{tmp}/model.joblib").read_bytes()
    model = joblib.load(io.BytesIO(model_bytes))
    working_dir = handwritten_zip(model_bytes)

    db = connect()
    db.add_notice_handler(lambda notice: None)  # wait_job's progress
    pg = read_env(Path(os.environ.get("PG_RAY_TEST_DIR", "/tmp/pg_ray_test")) / "env")
    before = {name: db.execute(f"SHOW {name}").fetchone()[0]
              for name in ("pg_ray.local_nodes", "pg_ray.port_range_start", "pg_ray.port_range_end")}
    set_setting(db, "pg_ray.port_range_start", str(PORT_RANGE[0]))
    set_setting(db, "pg_ray.port_range_end", str(PORT_RANGE[1]))
    set_setting(db, "pg_ray.local_nodes", "on")

    rows_out: list[dict] = []
    skipped: dict[int, str] = {}
    estimates: dict[int, float] = {}
    generation: dict[int, float] = {}
    try:
        drop_group(db)
        create_group(db)
        db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        db.execute(f"CREATE SCHEMA {SCHEMA}")
        if db.execute("SELECT EXISTS (SELECT FROM ray.models WHERE name = %s)", (MODEL,)).fetchone()[0]:
            db.execute("SELECT ray.drop_model(%s)", (MODEL,))
        db.execute("SELECT ray.register_model(%s, 'sklearn', %s::bytea)", (MODEL, model_bytes))
        password = handwritten_login(db)
        b_medians: dict[int, float] = {}
        for n, rows in enumerate(sizes):
            generation[rows] = make_table(db, rows)
            print(f"{rows} rows: table made in {generation[rows]:.1f} s", flush=True)
            if n == 0 and not args.smoke:
                # warm-up: Ray Data's imports, the packages on the node, the file cache
                run_pg_ray(db, f"{SCHEMA}.a_warm")
                run_by_hand(db, f"{SCHEMA}.b_warm", working_dir, pg["PGPORT"], password)
                run_floor(db, f"{SCHEMA}.c_warm", model)
                db.execute(f"DROP TABLE {SCHEMA}.a_warm, {SCHEMA}.b_warm, {SCHEMA}.c_warm")
            # b runs the rounds its budget holds at this size, by its median at the size below
            rounds = rounds_at(rows, repeat, args.smoke)
            b_rounds, b_note = rounds, ""
            smaller = [r for r in b_medians if r < rows]
            if smaller:
                base = max(smaller)
                estimate_s = b_medians[base] * rows / base
                estimates[rows] = estimate_s
                b_rounds = min(rounds, int(args.b_budget_minutes * 60 // estimate_s))
                if b_rounds == 0:
                    skipped[rows] = (f"not run: estimated {estimate_s / 60:.0f} minutes "
                                     f"({b_medians[base]:.0f} s at {base:,} rows x {rows // base})")
                    b_note = f"b {skipped[rows]}"
                    print(f"{rows} rows: handwritten job {skipped[rows]}", flush=True)
                elif b_rounds < rounds:
                    b_note = (f"b not run in this round: {b_rounds} of {rounds} rounds at an estimated "
                              f"{estimate_s / 60:.0f} minutes fit its {args.b_budget_minutes:g} minutes")
            for i in range(rounds):
                tag = f"{rows}_{i + 1}"
                record: dict = {"rows": rows, "round": i + 1, "load_1m": round(load(), 2)}
                a = run_pg_ray(db, f"{SCHEMA}.a_{tag}")
                if a["rows_written"] != rows:
                    fail(f"ray.batch_inference job {a['job_id']} wrote {a['rows_written']} rows, not {rows}")
                settle(db, f"{SCHEMA}.a_{tag}")
                b = run_by_hand(db, f"{SCHEMA}.b_{tag}", working_dir, pg["PGPORT"], password) if i < b_rounds else None
                if b is not None:
                    settle(db, f"{SCHEMA}.b_{tag}")
                c = run_floor(db, f"{SCHEMA}.c_{tag}", model)
                settle(db, f"{SCHEMA}.c_{tag}")
                check_same(db, f"{SCHEMA}.a_{tag}", f"{SCHEMA}.c_{tag}", rows, "ray.batch_inference")
                if b is not None:
                    check_same(db, f"{SCHEMA}.b_{tag}", f"{SCHEMA}.c_{tag}", rows, "the handwritten job")
                db.execute(f"DROP TABLE IF EXISTS {SCHEMA}.a_{tag}, {SCHEMA}.b_{tag}, {SCHEMA}.c_{tag}")
                record.update({
                    "a_s": a["seconds"], "b_s": b["seconds"] if b else "", "c_s": c["seconds"],
                    "a_rows_per_s": rows / a["seconds"], "b_rows_per_s": rows / b["seconds"] if b else "",
                    "c_rows_per_s": rows / c["seconds"],
                    "a_over_b": a["seconds"] / b["seconds"] if b else "", "a_over_c": a["seconds"] / c["seconds"],
                    "a_queued_to_running_s": a["queued_to_running_s"], "a_running_s": a["running_s"],
                    "a_publishing_s": a["publishing_s"], "a_runner_s": a["runner_s"],
                    "b_queued_to_running_s": b["queued_to_running_s"] if b else "",
                    "b_running_s": b["running_s"] if b else "",
                    "c_copy_out_s": c["copy_out_s"], "c_predict_s": c["predict_s"], "c_copy_in_s": c["copy_in_s"],
                    "note": b_note if b is None else "",
                })
                rows_out.append(record)
                print(f"{rows} rows, round {i + 1}: a {a['seconds']:.2f} s, "
                      f"b {'%.2f s' % b['seconds'] if b else 'not run'}, c {c['seconds']:.2f} s "
                      f"(load {record['load_1m']})", flush=True)
            b_times = [r["b_s"] for r in rows_out if r["rows"] == rows and r["b_s"] != ""]
            if b_times:
                b_medians[rows] = statistics.median(b_times)
        pg_version = db.execute("SHOW server_version").fetchone()[0]
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        drop_group(db)
        for name, value in before.items():
            db.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        db.execute("SELECT pg_reload_conf()")
        db.close()

    ended = datetime.datetime.now(datetime.timezone.utc)
    load_after = os.getloadavg()
    name = write_csv(args, "batch_inference", rows_out)
    plot(args.out / f"{name}.png", rows_out, sizes)
    where = machine(pg_version, importlib.metadata.version("ray"))
    (args.out / f"{name}.md").write_text(report(name, rows_out, sizes, skipped, estimates, generation, where,
                                                args, began, ended, load_before, load_after))
    print((args.out / f"{name}.md").read_text())


def column(rows_out: list[dict], rows: int, key: str) -> list[float]:
    return [float(r[key]) for r in rows_out if r["rows"] == rows and r[key] != ""]


def median_of(rows_out: list[dict], rows: int, key: str) -> float | None:
    values = column(rows_out, rows, key)
    return statistics.median(values) if values else None


def verdict(rows_out: list[dict], sizes: list[int], estimates: dict[int, float]) -> str:
    """Whether a is far ahead of b (at most half its time) and within 2x of c, size by size."""
    lines = ["| rows | a / b, median | a / c, median | a far ahead of b (a / b <= 0.5)? "
             "| a within 2x of c (a / c <= 2)? | target met? |", "| ---: | --- | --- | --- | --- | --- |"]
    met = []
    for rows in sizes:
        a, ab, ac = median_of(rows_out, rows, "a_s"), median_of(rows_out, rows, "a_over_b"), \
            median_of(rows_out, rows, "a_over_c")
        if a is None or ac is None:
            continue
        if ab is not None:
            ahead = ab <= 0.5
            ab_text = f"{ab:.2f} ({1 / ab:.1f}x faster)" if ab < 1 else f"{ab:.2f} ({ab:.1f}x slower)"
        elif rows in estimates:
            # b was not run: judged against its estimate, and said so
            ahead = a <= 0.5 * estimates[rows]
            ab_text = f"b not run; a took {a / 60:.1f} min against b's estimated {estimates[rows] / 60:.0f} min"
        else:
            ahead, ab_text = False, "-"
        within = ac <= 2
        if ahead and within:
            met.append(rows)
        lines.append(f"| {rows:,} | {ab_text} | {ac:.2f} | {'yes' if ahead else 'no'} | "
                     f"{'yes' if within else 'no'} | {'yes' if ahead and within else 'no'} |")
    measured = [r for r in sizes if median_of(rows_out, r, "a_s") is not None]
    if met and len(met) == len(measured):
        overall = "The target is met at every size measured."
    elif met:
        overall = (f"The target is met at {', '.join(f'{r:,}' for r in met)} rows only, "
                   f"not at {', '.join(f'{r:,}' for r in measured if r not in met)}.")
    else:
        overall = "The target is not met at any size measured."
    return "\n".join(lines) + "\n\n" + overall


METHODS = (("a", "a: ray.batch_inference"), ("b", "b: by hand"), ("c", "c: floor"))


def fit(rows_out: list[dict], sizes: list[int], method: str) -> tuple[int, int, float, float] | None:
    """(smaller size, larger size, rows/s between them, fixed seconds that leaves) from the medians
    at the two largest sizes a method ran at; None where it ran at fewer or was no slower at more."""
    ran = [r for r in sizes if median_of(rows_out, r, f"{method}_s") is not None]
    if len(ran) < 2:
        return None
    small, large = ran[-2], ran[-1]
    t_small, t_large = median_of(rows_out, small, f"{method}_s"), median_of(rows_out, large, f"{method}_s")
    if t_large <= t_small:
        return None
    rate = (large - small) / (t_large - t_small)
    return small, large, rate, t_small - small / rate


def marginal(rows_out: list[dict], sizes: list[int]) -> str:
    lines = ["| method | between | marginal rows/s | implied fixed cost (s) |", "| --- | --- | --- | --- |"]
    for method, label in METHODS:
        f = fit(rows_out, sizes, method)
        lines.append(f"| {label} | {f[0]:,} and {f[1]:,} | {f[2]:,.0f} | {f[3]:.1f} |" if f
                     else f"| {label} | - | - | - |")
    return "\n".join(lines)


def reading(rows_out: list[dict], sizes: list[int]) -> str:
    """What the numbers say, in words, from the numbers."""
    measured = [r for r in sizes if median_of(rows_out, r, "a_s") is not None]
    if not measured:
        return ""
    first, last = measured[0], measured[-1]
    parts = []
    fa, fb, fc = (fit(rows_out, sizes, m) for m, _ in METHODS)
    queued = median_of(rows_out, last, "a_queued_to_running_s")
    publishing = median_of(rows_out, last, "a_publishing_s")
    pairs = [(float(r["a_running_s"]), float(r["a_runner_s"])) for r in rows_out
             if r["rows"] == last and not math.isnan(float(r["a_runner_s"]))]
    start = statistics.median(run - runner for run, runner in pairs) if pairs else math.nan
    if fa and fc:
        parts.append(
            f"a pays a fixed cost of about {fa[3]:.0f} s whatever the size (by the fit above): at {last:,} "
            f"rows {queued:.1f} s from the call to RUNNING, {start:.1f} s of the Ray job starting before the "
            f"runner's pipeline does (runtime environment, Python, Ray Data), the pipeline's own start "
            f"(snapshot, the actor loading the model) and {publishing:.1f} s of publishing (the staging "
            f"table becomes the new target; counting its rows and checking the key grow with them). At {first:,} rows a took {median_of(rows_out, first, 'a_s'):.1f} s, nearly "
            f"all of it that cost, while c took {median_of(rows_out, first, 'c_s'):.2f} s: on small tables "
            f"a cannot come near c.")
        ratio = fa[2] / fc[2]
        relation = ("faster than" if ratio > 1.1 else "slower than" if ratio < 0.9 else "about the same as")
        parts.append(
            f"Past that cost a's time grows at {fa[2]:,.0f} rows/s, {relation} c's {fc[2]:,.0f} "
            f"(between the medians at {fa[0]:,} and {fa[1]:,} rows). a reads its partitions in parallel "
            f"sessions and scores and stages on the worker's 2 CPUs, c is one stream; both share the "
            f"host's 2 cores with PostgreSQL and whatever else runs there.")
    by_round = [(float(r["a_over_c"]), float(r["load_1m"])) for r in rows_out if r["rows"] == last]
    if len(by_round) > 1:
        parts.append(
            f"At {last:,} rows a / c by round was "
            + ", ".join(f"{ratio:.2f} (load {load:.1f})" for ratio, load in by_round)
            + f": c's own time ranged {min(column(rows_out, last, 'c_s')):.1f} to "
            f"{max(column(rows_out, last, 'c_s')):.1f} s and a's {min(column(rows_out, last, 'a_s')):.1f} to "
            f"{max(column(rows_out, last, 'a_s')):.1f} s, so the ratio of the medians "
            f"({median_of(rows_out, last, 'a_s') / median_of(rows_out, last, 'c_s'):.2f}) and the median of "
            f"the ratios ({median_of(rows_out, last, 'a_over_c'):.2f}, what the verdict uses) differ.")
    if fb:
        parts.append(
            f"b's time grows at only {fb[2]:,.0f} rows/s: `read_sql` fetches the whole table as Python "
            f"tuples in one task, and `write_sql` INSERTs 128 rows per `executemany`; its implied fixed "
            f"cost is {fb[3]:.0f} s.")
    a_first = column(rows_out, first, "a_s")
    if len(a_first) > 1:
        parts.append(
            f"Rounds of one size vary: a took {min(a_first):.1f} to {max(a_first):.1f} s at {first:,} rows, "
            f"with the 1-minute load at {min(column(rows_out, first, 'load_1m')):.1f} to "
            f"{max(column(rows_out, first, 'load_1m')):.1f} on 2 cores. The pair-by-pair ratios are "
            f"steadier than the times, and a size with one round rests on one pair.")
    return "\n\n".join(parts)


def plot(path: Path, rows_out: list[dict], sizes: list[int]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, label, marker in (("a", "a: ray.batch_inference", "o"),
                                  ("b", "b: Ray Data job by hand (read_sql / write_sql)", "s"),
                                  ("c", "c: floor, COPY out + predict + COPY in", "^")):
        xs, med, lo, hi = [], [], [], []
        for rows in sizes:
            values = column(rows_out, rows, f"{method}_rows_per_s")
            if values:
                xs.append(rows)
                med.append(statistics.median(values))
                lo.append(statistics.median(values) - min(values))
                hi.append(max(values) - statistics.median(values))
        if xs:
            ax.errorbar(xs, med, yerr=[lo, hi], marker=marker, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows in the source table")
    ax.set_ylabel("rows per second (median; bars: min-max)")
    ax.set_title("Batch scoring of a CTR table, one 2-CPU Ray worker")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(name: str, rows_out: list[dict], sizes: list[int], skipped: dict[int, str],
           estimates: dict[int, float], generation: dict[int, float], where: str, args, began, ended,
           load_before, load_after) -> str:
    def cell(rows: int, key: str, fmt: str = "{:.2f}") -> str:
        values = column(rows_out, rows, key)
        if not values:
            return skipped.get(rows, "-") if key.startswith("b") else "-"
        if len(values) == 1:
            return fmt.format(values[0])
        return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))

    def rate(rows: int, method: str) -> str:
        return cell(rows, f"{method}_rows_per_s", "{:,.0f}")

    lines = ["| rows | rounds (a and c / b) | a: ray.batch_inference (s) | b: by hand (s) | c: floor (s) |",
             "| ---: | ---: | --- | --- | --- |"]
    for rows in sizes:
        lines.append(f"| {rows:,} | {len(column(rows_out, rows, 'a_s'))} / {len(column(rows_out, rows, 'b_s'))} "
                     f"| {cell(rows, 'a_s')} | {cell(rows, 'b_s')} | {cell(rows, 'c_s')} |")
    times = "\n".join(lines)
    lines = ["| rows | a: ray.batch_inference | b: by hand | c: floor |", "| ---: | --- | --- | --- |"]
    for rows in sizes:
        lines.append(f"| {rows:,} | {rate(rows, 'a')} | {rate(rows, 'b')} | {rate(rows, 'c')} |")
    rates = "\n".join(lines)
    lines = ["| rows | a / b (time) | a / c (time) |", "| ---: | --- | --- |"]
    for rows in sizes:
        lines.append(f"| {rows:,} | {cell(rows, 'a_over_b')} | {cell(rows, 'a_over_c')} |")
    ratios = "\n".join(lines)
    lines = ["| rows | a: queued -> RUNNING | a: RUNNING -> PUBLISHING | a: of which the runner's pipeline "
             "| a: PUBLISHING -> SUCCEEDED | b: queued -> RUNNING | b: RUNNING -> SUCCEEDED "
             "| c: COPY out + parse | c: predict_proba | c: COPY in |", "| ---: " + "| --- " * 9 + "|"]
    for rows in sizes:
        lines.append(f"| {rows:,} | " + " | ".join(
            cell(rows, k) if not (k.startswith("b") and rows in skipped) else "not run"
            for k in ("a_queued_to_running_s", "a_running_s", "a_runner_s", "a_publishing_s",
                      "b_queued_to_running_s", "b_running_s", "c_copy_out_s", "c_predict_s",
                      "c_copy_in_s")) + " |")
    phases = "\n".join(lines)
    loads = [float(r["load_1m"]) for r in rows_out]
    made = ", ".join(f"{rows:,} rows in {generation[rows]:.0f} s" for rows in sizes if rows in generation)
    rounds = ", ".join(f"{len(column(rows_out, rows, 'a_s'))} at {rows:,} ({len(column(rows_out, rows, 'b_s'))} of b)"
                       for rows in sizes)
    return f"""# Batch scoring: ray.batch_inference, a Ray Data job by hand, and the floor

Machine: {where}.
Ran {began:%Y-%m-%d %H:%M} to {ended:%H:%M} UTC{' (smoke run: one tiny round, numbers mean nothing)' if args.smoke else ''}.
Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; after:
{', '.join(f'{v:.2f}' for v in load_after)}; 1-minute load at the start of each round: {summary(loads) if loads else '-'}
(min / median / max). With 2 cores, a load above 2 means other work shared them.

## Method

The source is `scripts/ctr.py`'s impressions table (`impression_id` primary
key; inputs `age, hour, position, price, mobile`), made anew for each size
and vacuumed (freeze, analyze) before any method reads it ({made}). The model
is `scripts/ctr.py`'s click model (StandardScaler + LogisticRegression), its
probability of a click is the prediction. All three run on the same data and
the same local resource group: a head (0 CPUs) and one worker node of 2 CPUs
(node spec `{SPEC[0]}`, worker group min 1 max 1), on this one host together
with PostgreSQL. The cluster is `scripts/test-cluster`'s (fsync and
full_page_writes off, shared_buffers at its default), alike for all three.

- **a, `ray.batch_inference`** into a fresh target, options
  `{json.dumps(RUN_OPTIONS)}`: from the call until `ray.wait_job` returns
  SUCCEEDED, which covers the submission, the runner's Ray Data start, the
  partitioned COPY reads, scoring on the actor pool, COPY into the staging
  table and the worker publishing the staged rows (the target does not exist,
  so the staging table becomes it: a scan for the NOT NULL key and a count,
  no copy).
  One actor of 1 CPU (`concurrency` 1, not the default 2), for a and b
  alike: b's `read_sql` and `write_sql` tasks ask for 1 CPU each, so two
  actors of 1 CPU on the worker's 2 CPUs would leave them none and b would
  never finish. (An earlier runner did just that: a run with concurrency 2
  stayed RUNNING with 0 rows for over 6 minutes until stopped; the runner
  measured here gives its reads and writes no CPU.)
- **b, by hand**: what a Ray user would write, submitted with
  `ray.submit_job(..., working_dir => <zip of the script and model.joblib>,
  runtime_env => {{"env_vars": {{PGHOST, PGPORT, ...}}}})`:
  `ray.data.read_sql("SELECT ... FROM impressions", connect)` ->
  `map_batches(Scorer, batch_size={RUN_OPTIONS['batch_size']}, concurrency={RUN_OPTIONS['concurrency']}, num_cpus={RUN_OPTIONS['num_cpus']})`
  -> `write_sql("INSERT INTO target VALUES (%s, %s)", connect)` with
  psycopg 3, as a role of its own (`bench_handwritten`, its password in the job's environment) over
  127.0.0.1. The target table is
  created before the clock starts. From `ray.submit_job` until
  `ray.wait_job` returns SUCCEEDED. `read_sql` without `shard_keys` reads in
  one task (its default MD5 sharding does not run on PostgreSQL), and
  `write_sql` runs `executemany` 128 rows at a time.
- **c, the floor**, in the benchmark's own process: `COPY (SELECT key, inputs
  FROM impressions) TO STDOUT` (CSV, psycopg) into memory and parsed with
  pyarrow, `predict_proba` on all rows at once, `COPY` of (key, prediction)
  into a fresh table; the sum of the three.

Each round runs a, b, c in that order; the first size starts with one
unrecorded warm-up round of each. After each method, and before the clock
starts for the next, its target is vacuumed (with ANALYZE) and the server
checkpoints, so that no method pays for autovacuum of the rows the one
before wrote, or for writing out their pages. Rounds: {rounds}. b runs at a size only
the rounds that fit in {args.b_budget_minutes:g} minutes by its estimate there
(its median at the size below, scaled by the rows), and none if one does
not. After each round the benchmark checks
that a's and b's targets hold every key of the source once with the
prediction c computed, within {TOLERANCE:g}, and stops with an error if not
(it did not).

## Results

Seconds, min / median / max (one number where one round ran):

{times}

Rows per second (rows / seconds of that round), min / median / max:

{rates}

![rows per second by size]({name}.png)

Ratios of times, pair by pair within a round (below 1: a was faster),
min / median / max:

{ratios}

Where a's and b's time went (from `ray.job_events`; seconds) and c's steps:

{phases}

Where the time grows with the rows: the rate between the two largest sizes
(difference of rows over difference of median seconds), and the fixed cost
that leaves at the smaller one:

{marginal(rows_out, sizes)}

## Reading the numbers

{reading(rows_out, sizes)}

## Verdict

The target: a far ahead of b (here: at most half its time) and within 2x of
c (a / c at most 2), by the medians of the pair-by-pair ratios:

{verdict(rows_out, sizes, estimates)}

Raw numbers: `{name}.csv`. Rerun with `scripts/bench` (or this script alone:
`bench/batch_inference.py [--sizes 100000,1000000] [--repeat N] [--smoke]`
against a running `scripts/test-cluster`).
"""


if __name__ == "__main__":
    main()
