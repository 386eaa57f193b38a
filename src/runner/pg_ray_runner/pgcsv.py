"""PostgreSQL's CSV format to and from Arrow.

COPY ... WITH (FORMAT csv) writes NULL as an empty unquoted field and an
empty string as "", booleans as t/f, and quotes any value holding a quote,
comma or newline.  Arrow's CSV reader and writer are set up here to agree
with exactly those rules in both directions.
"""

from __future__ import annotations

import io
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

# rows are handed on in pieces of about this much CSV text
READ_BLOCK_BYTES = 16 << 20
# COPY's rows are gathered into pieces of this much text before Arrow reads them
COALESCE_BYTES = 1 << 20


def _convert_options(schema: pa.Schema) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types={f.name: f.type for f in schema},
        null_values=[""],
        # "" is an empty string to PostgreSQL, only an unquoted empty field is NULL
        quoted_strings_can_be_null=False,
        strings_can_be_null=True,
        true_values=["t"],
        false_values=["f"],
    )


def _read_options(schema: pa.Schema, block_size: int = READ_BLOCK_BYTES) -> pacsv.ReadOptions:
    return pacsv.ReadOptions(column_names=schema.names, block_size=block_size)


_PARSE_OPTIONS = pacsv.ParseOptions(newlines_in_values=True)


def parse_csv(data: bytes, schema: pa.Schema) -> pa.Table:
    """Parse COPY's CSV output, all of it at once."""
    if not data:
        return schema.empty_table()
    return pacsv.read_csv(io.BytesIO(data), read_options=_read_options(schema),
                          parse_options=_PARSE_OPTIONS, convert_options=_convert_options(schema))


class _ChunkStream(io.RawIOBase):
    """A file over an iterator of byte chunks, so Arrow can parse a COPY as it arrives."""

    def __init__(self, first: bytes, rest: Iterator[bytes]) -> None:
        self._pending = memoryview(first)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._rest, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _coalesce(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The chunks joined into pieces of at least size bytes (the last may be shorter).

    COPY hands over one row per chunk; passing each to Arrow on its own costs
    more than parsing it, and keeping them (memoryviews over libpq's buffers)
    costs more still, so they are appended to one buffer as they come.
    """
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def iter_csv(chunks: Iterable[bytes], schema: pa.Schema,
             block_size: int = READ_BLOCK_BYTES) -> Iterator[pa.Table]:
    """Parse COPY's CSV output chunk by chunk, yielding a table per block of text."""
    rest = _coalesce(chunks, COALESCE_BYTES)
    first = next(rest, None)
    if first is None:
        # Arrow refuses an empty file; an empty partition is an empty table
        yield schema.empty_table()
        return
    reader = pacsv.open_csv(io.BufferedReader(_ChunkStream(first, rest), buffer_size=COALESCE_BYTES),
                            read_options=_read_options(schema, block_size),
                            parse_options=_PARSE_OPTIONS, convert_options=_convert_options(schema))
    for batch in reader:
        yield pa.Table.from_batches([batch], schema=schema)


_WRITE_OPTIONS = pacsv.WriteOptions(
    include_header=False,
    # "needed" quotes every string (so "" stays an empty string) and leaves
    # NULLs as empty unquoted fields (so they stay NULL)
    quoting_style="needed",
)


def to_csv(table: pa.Table) -> bytes:
    """Rows as CSV that COPY ... FROM STDIN WITH (FORMAT csv) reads back unchanged."""
    if table.num_rows == 0:
        return b""
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, write_options=_WRITE_OPTIONS)
    return buffer.getvalue()
