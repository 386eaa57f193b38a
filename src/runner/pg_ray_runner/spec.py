"""The run spec that ray._run_spec() hands the runner, as typed dataclasses.

The SQL side builds the spec (the source, its columns, the model, the staging
table); this module only reads it and maps PostgreSQL types to the Arrow
types the runner parses and writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import pyarrow as pa

_INTEGER_TYPES = {"smallint", "integer", "bigint", "int2", "int4", "int8"}
_FLOAT_TYPES = {"real", "double precision", "numeric", "decimal", "float4", "float8"}
_BOOLEAN_TYPES = {"boolean", "bool"}

# Keys in spec["options"] that steer the run itself; every other option is
# handed to the model kind, so a run can override, say, a prompt.
RUN_OPTIONS = frozenset({"batch_size", "concurrency", "num_cpus", "num_gpus", "memory", "output",
                         "output_type", "partitions", "shard_key", "max_attempts",
                         "read_concurrency", "write_concurrency", "missing_inputs", "worker_group"})


def base_type(pg_type: str) -> str:
    """format_type text without modifiers: 'numeric(10,2)' -> 'numeric'."""
    return pg_type.split("(", 1)[0].strip().lower()


def arrow_type(pg_type: str) -> pa.DataType:
    """The Arrow type a PostgreSQL column is read as, and an output is written as."""
    if pg_type.strip().endswith("]"):
        return pa.string()
    base = base_type(pg_type)
    if base in _INTEGER_TYPES:
        return pa.int64()
    if base in _FLOAT_TYPES:
        return pa.float64()
    if base in _BOOLEAN_TYPES:
        return pa.bool_()
    return pa.string()


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Source:
    """A table read in page ranges, or a query read whole or in hash shards (by the server, as the owner)."""
    table: str | None = None
    query: str | None = None
    shard_key: str | None = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise ValueError("the spec's source needs exactly one of table and query")


@dataclass(frozen=True)
class Model:
    name: str
    version: int
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    uri: str | None = None
    has_data: bool = False


@dataclass(frozen=True)
class Output:
    name: str
    type: str

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.type)


@dataclass(frozen=True)
class RunSpec:
    job_id: int
    attempt: int
    source: Source
    columns: list[Column]
    key: list[str]
    inputs: list[str]
    output: Output
    staging_table: str
    staging_columns: list[str]
    model: Model
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = {c.name for c in self.columns}
        missing = [c for c in [*self.key, *self.inputs] if c not in names]
        if missing:
            raise ValueError(f"the spec's columns lack {', '.join(missing)}")
        if not self.inputs:
            raise ValueError("the spec names no input columns")
        if self.staging_columns != [*self.key, self.output.name]:
            raise ValueError("the spec's staging_columns must be its key columns and then its output")

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RunSpec:
        source = raw["source"]
        model = raw["model"]
        return cls(
            job_id=int(raw["job_id"]),
            attempt=int(raw["attempt"]),
            source=Source(table=source.get("table"), query=source.get("query"),
                          shard_key=source.get("shard_key")),
            columns=[Column(c["name"], c["type"]) for c in raw["columns"]],
            key=list(raw.get("key") or []),
            inputs=list(raw["inputs"]),
            output=Output(raw["output"]["name"], raw["output"]["type"]),
            staging_table=raw["staging_table"],
            staging_columns=list(raw["staging_columns"]),
            model=Model(name=model["name"], version=int(model["version"]), kind=model["kind"],
                        options=dict(model.get("options") or {}), uri=model.get("uri"),
                        has_data=bool(model.get("has_data"))),
            options={k: v for k, v in (raw.get("options") or {}).items() if v is not None},
        )

    def read_schema(self) -> pa.Schema:
        """The Arrow schema the source's rows are parsed into.

        A float or numeric key that is no model input is kept as text: parsing
        it as float64 would round numeric values on their way back to the
        staging table, and keys must come back unchanged."""
        inputs = set(self.inputs)
        keys = set(self.key)
        fields = []
        for c in self.columns:
            t = arrow_type(c.type)
            if c.name in keys and c.name not in inputs and pa.types.is_floating(t):
                t = pa.string()
            fields.append(pa.field(c.name, t))
        return pa.schema(fields)

    def staging_schema(self) -> pa.Schema:
        read = self.read_schema()
        return pa.schema([read.field(k) for k in self.key]
                         + [pa.field(self.output.name, self.output.arrow_type)])

    def model_options(self) -> dict[str, Any]:
        """The model's own options, overridden by the run's options of the same name."""
        run = {k: v for k, v in self.options.items() if k not in RUN_OPTIONS}
        return {**self.model.options, **run}

    @property
    def output_mode(self) -> str:
        return str(self.options.get("output", "probability"))
