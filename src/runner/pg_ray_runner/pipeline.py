"""The batch inference pipeline: snapshot, partitioned read, predict, COPY into staging, check.

run() is what __main__ calls; tests call open_snapshot() and score() apart to
change the source between the snapshot and the read.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import ray
from psycopg import sql

from .db import Database, begin_snapshot
from .models import make_predictor
from .predictor import ModelError, PredictorOutput, RowError, is_missing
from .sink import PgStagingSink
from .source import Partition, PgSource, plan_partitions
from .spec import Model, RunSpec


class RunError(RuntimeError):
    """The run cannot finish correctly; the message says why."""


def to_arrow(values: PredictorOutput, target: pa.DataType, rows: int) -> pa.Array:
    """One model output per row, as the output column's Arrow type."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if isinstance(values, np.ndarray) and values.ndim > 1:
        if int(np.prod(values.shape[1:])) != 1:
            raise ModelError(f"the model returned an array of shape {values.shape}, not one value per row")
        values = values.reshape(-1)
    if not isinstance(values, pa.Array):
        items = list(values)
        if pa.types.is_string(target):
            # dicts and lists become JSON, so json and jsonb outputs parse them
            items = [None if is_missing(v) else v if isinstance(v, str)
                     else json.dumps(v) if isinstance(v, (dict, list))
                     else str(v.item() if isinstance(v, np.generic) else v) for v in items]
        values = pa.array(items, from_pandas=True)
    if len(values) != rows:
        raise ModelError(f"the model returned {len(values)} values for {rows} rows")
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ModelError(f"the model's output ({values.type}) does not fit the output column ({target}): "
                         f"{error}") from error


def _describe_key(batch: pa.Table, key: list[str], row: int) -> str:
    if not key:
        return f"row {row + 1} of its batch"
    return "row with " + ", ".join(f"{k}={batch.column(k)[row].as_py()!r}" for k in key)


# What the option missing_inputs takes: hand rows with a missing input to the
# model as they are (some models take NaN), or score them as NULL unseen.
MISSING_INPUTS = ("model", "null")


def missing_inputs(batch: pa.Table, inputs: list[str]) -> dict[str, np.ndarray]:
    """Per input column, the rows where it is NULL, NaN or infinite (columns with none left out)."""
    found = {}
    for name in inputs:
        column = batch.column(name)
        mask = pc.is_null(column, nan_is_null=True)
        if pa.types.is_floating(column.type):
            mask = pc.or_(mask, pc.fill_null(pc.is_inf(column), False))
        rows = mask.to_numpy(zero_copy_only=False)
        if rows.any():
            found[name] = rows
    return found


def missing_inputs_message(batch: pa.Table, key: list[str], missing: dict[str, np.ndarray],
                           error: Exception) -> str:
    """pg_ray's words for a model that failed on a batch with missing inputs."""
    columns = ", ".join(f'"{name}" in {int(rows.sum())}' for name, rows in missing.items())
    first = int(np.flatnonzero(np.logical_or.reduce(list(missing.values())))[0])
    said = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return (f"input columns NULL, NaN or infinite ({columns} of the {batch.num_rows} rows of a batch; first: "
            f"{_describe_key(batch, key, first)}) failed the model; score such rows as NULL with options => "
            f"'{{\"missing_inputs\": \"null\"}}', or replace the values in a query source. "
            f"The model said: {type(error).__name__}: {said}")


class Scorer:
    """The map_batches callable: keys through unchanged, the model's output beside them."""

    def __init__(self, model: Model, model_data: Any, inputs: list[str], key: list[str],
                 output_schema: pa.Schema, options: dict[str, Any], output_mode: str,
                 num_gpus: float = 0, missing: str = "model") -> None:
        data = ray.get(model_data) if isinstance(model_data, ray.ObjectRef) else model_data
        if missing not in MISSING_INPUTS:
            raise RunError(f"missing_inputs must be one of {', '.join(MISSING_INPUTS)}, not {missing!r}")
        self.inputs = inputs
        self.key = key
        self.schema = output_schema
        self.missing = missing
        self.predict = make_predictor(model, data, inputs, options, output_mode=output_mode,
                                      output_name=output_schema.names[-1], num_gpus=num_gpus)

    def __call__(self, batch: pa.Table) -> pa.Table:
        if batch.num_rows == 0:
            # an empty partition: estimators refuse zero rows
            return self.schema.empty_table()
        missing = missing_inputs(batch, self.inputs)
        if missing and self.missing == "null":
            output = self._score_complete_rows(batch, np.logical_or.reduce(list(missing.values())))
        else:
            try:
                values = self.predict(batch.select(self.inputs).to_pandas())
            except RowError as error:
                raise ModelError(f"{_describe_key(batch, self.key, error.row)}: {error}") from None
            except Exception as error:
                if missing:
                    raise ModelError(missing_inputs_message(batch, self.key, missing, error)) from None
                raise
            output = to_arrow(values, self.schema.field(-1).type, batch.num_rows)
        return pa.Table.from_arrays([batch.column(k) for k in self.key] + [output], schema=self.schema)

    def _score_complete_rows(self, batch: pa.Table, incomplete: np.ndarray) -> pa.Array:
        """The output of a batch whose incomplete rows are NULL and were not shown to the model."""
        target = self.schema.field(-1).type
        complete = np.flatnonzero(~incomplete)
        if len(complete) == 0:
            return pa.nulls(batch.num_rows, target)
        scored_batch = batch.take(pa.array(complete))
        try:
            values = self.predict(scored_batch.select(self.inputs).to_pandas())
        except RowError as error:
            raise ModelError(f"{_describe_key(scored_batch, self.key, error.row)}: {error}") from None
        scored = to_arrow(values, target, len(complete))
        positions = np.zeros(batch.num_rows, dtype=np.int64)
        positions[complete] = np.arange(len(complete))
        return scored.take(pa.array(positions, mask=incomplete))


@dataclass(frozen=True)
class Snapshot:
    """The driver's snapshot: its id for the read tasks, the partitions, the rows in it."""
    snapshot_id: str
    partitions: list[Partition]
    total_rows: int
    size_bytes: int | None


def read_parallelism() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


@contextlib.contextmanager
def open_snapshot(db: Database, spec: RunSpec, parallelism: int | None = None) -> Iterator[Snapshot]:
    """Export a snapshot and keep its transaction open while the body reads in it."""
    with db.connect(autocommit=True) as conn:
        # the transaction idles while Ray works; a role's timeout must not end it
        conn.execute("SET idle_in_transaction_session_timeout = 0")
        begin_snapshot(conn)
        snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        total = conn.execute(sql.SQL("SELECT {}()").format(db.function("_run_count"))).fetchone()[0]
        pages, size = conn.execute(sql.SQL("SELECT pages, bytes FROM {}()")
                                   .format(db.function("_run_source_size"))).fetchone()
        partitions = plan_partitions(spec.source, pages, spec.options.get("partitions"),
                                     parallelism or read_parallelism())
        yield Snapshot(snapshot_id, partitions, int(total), None if size is None else int(size))
        conn.execute("COMMIT")


def _actor_pool(value: Any) -> ray.data.ActorPoolStrategy:
    """The model's replicas: a fixed number, or [min, max] for Ray Data to scale between."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise RunError(f"concurrency must be a number or [min, max], not {value!r}")
        return ray.data.ActorPoolStrategy(min_size=int(value[0]), max_size=int(value[1]))
    return ray.data.ActorPoolStrategy(size=int(value))


def io_concurrency(options: dict[str, Any], name: str, parallelism: int) -> int:
    """How many read or write tasks may run at once, each with its own connection to PostgreSQL."""
    value = int(options.get(name) or max(2, min(8, parallelism)))
    if value < 1:
        raise RunError(f"{name} must be at least 1, not {value}")
    return value


# Reads and writes mostly wait on PostgreSQL, so they ask for no CPU and are
# capped in number instead: with a CPU each, a model's actors that take every
# CPU of a small cluster (two actors of one CPU on two CPUs) would leave them
# none, and the run would wait forever.  The caps also bound the run's
# connections to PostgreSQL.
IO_NUM_CPUS = 0


def worker_group_resources(options: dict[str, Any]) -> dict[str, Any]:
    """The replicas' share of their worker group's own resource, when the run names one:
    each worker node of a local group has 1000 of "pgray-worker-group:<name>"."""
    if not options.get("worker_group"):
        return {}
    return {"resources": {f"pgray-worker-group:{options['worker_group']}": 0.001}}


def build_dataset(spec: RunSpec, db: Database, snapshot: Snapshot, model_data: bytes | None,
                  read_concurrency: int) -> ray.data.Dataset:
    """Read the partitions and score them; what is left is to write the result."""
    schema = spec.read_schema()
    # a model's exception reaches the driver as itself, not as Ray Data's
    # UserCodeException, so the run's error message can say what went wrong
    ray.data.DataContext.get_current().raise_original_map_exception = True
    ds = ray.data.read_datasource(PgSource(db, snapshot.snapshot_id, snapshot.partitions, schema,
                                           snapshot.size_bytes),
                                  override_num_blocks=len(snapshot.partitions),
                                  num_cpus=IO_NUM_CPUS,
                                  concurrency=min(read_concurrency, len(snapshot.partitions)))
    options = spec.options
    if spec.model.kind == "vllm":
        from .llm import vllm_stage
        return vllm_stage(ds, spec)
    num_gpus = float(options.get("num_gpus", 0))
    return ds.map_batches(
        Scorer,
        fn_constructor_kwargs={
            "model": spec.model,
            "model_data": ray.put(model_data) if model_data is not None else None,
            "inputs": spec.inputs, "key": spec.key, "output_schema": spec.staging_schema(),
            "options": spec.model_options(), "output_mode": spec.output_mode, "num_gpus": num_gpus,
            "missing": str(options.get("missing_inputs", "model"))},
        batch_size=int(options.get("batch_size", 4096)),
        batch_format="pyarrow",
        compute=_actor_pool(options.get("concurrency", 2)),
        num_cpus=float(options.get("num_cpus", 1)),
        num_gpus=num_gpus,
        **({"memory": float(options["memory"])} if options.get("memory") else {}),
        **worker_group_resources(options),
    )


@dataclass(frozen=True)
class RunResult:
    job_id: int
    attempt: int
    rows: int
    seconds: float

    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        return (f"pg_ray runner: job {self.job_id} attempt {self.attempt}: {self.rows} rows scored "
                f"in {self.seconds:.1f} s ({rate:.0f} rows/s)")


def score(spec: RunSpec, db: Database, snapshot: Snapshot, model_data: bytes | None,
          report_progress: bool = True) -> int:
    """Run the pipeline in an open snapshot and check the staging table; the rows staged."""
    with db.connect(autocommit=True) as conn:
        if report_progress:
            db.report_progress(conn, 0, snapshot.total_rows)
        parallelism = read_parallelism()
        ds = build_dataset(spec, db, snapshot, model_data,
                           io_concurrency(spec.options, "read_concurrency", parallelism))
        # Each write task commits its own COPY, so a retried write task could
        # stage a block twice.  No write is retried: any failure fails the
        # run, pg_ray drops this attempt's staging table and may start the
        # job again with a fresh one.  That is what keeps exactly-once.
        ds.write_datasink(PgStagingSink(db, spec.staging_table, spec.staging_columns, report_progress),
                          ray_remote_args={"max_retries": 0, "num_cpus": IO_NUM_CPUS},
                          concurrency=io_concurrency(spec.options, "write_concurrency", parallelism))
        staged = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(spec.staging_table))
                              ).fetchone()[0]
    if staged != snapshot.total_rows:
        raise RunError(f"the staging table {spec.staging_table} has {staged} rows, "
                       f"but the source had {snapshot.total_rows} in the run's snapshot")
    return int(staged)


def run(spec: RunSpec, db: Database, model_data: bytes | None) -> RunResult:
    """One attempt of a batch inference job, from snapshot to checked staging table."""
    started = time.monotonic()
    with open_snapshot(db, spec) as snapshot:
        rows = score(spec, db, snapshot, model_data)
    return RunResult(spec.job_id, spec.attempt, rows, time.monotonic() - started)
