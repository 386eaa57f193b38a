"""PostgreSQL's CSV to Arrow and back: NULLs, empty strings, quotes, commas, newlines, booleans, big ints."""

from __future__ import annotations

import math

import psycopg
import pyarrow as pa

from pg_ray_runner.pgcsv import iter_csv, parse_csv, to_csv
from pg_ray_runner.sink import copy_statement

SCHEMA = pa.schema([("id", pa.int64()), ("s", pa.string()), ("b", pa.bool_()), ("f", pa.float64())])

TRICKY = ["plain", "", None, 'say "hi"', "a,b", "two\nlines", "cr\r\nlf", " padded ", "\\.", "NULL",
          "ünï €", "\\N", ",", '"']
ROWS = {
    "id": [1, -2, 2**63 - 1, -(2**63), None, 0, 7, 8, 9, 10, 11, 12, 13, 14],
    "s": TRICKY,
    "b": [True, False, None, True, False, True, False, None, True, False, True, False, True, False],
    "f": [0.1, -1e-300, None, 1.7976931348623157e308, math.inf, -math.inf, 1 / 3, 2.5, 0.0, -0.0,
          123456789.123456789, 5e-324, 1.0, 42.0],
}


def test_parse_postgres_csv() -> None:
    data = (b'1,plain,t,0.5\n'
            b',,,\n'
            b'3,"",f,NaN\n'
            b'4,"a ""quoted"", value\nwith a newline",t,-Infinity\n'
            b'9223372036854775807,\\N,f,1e-05\n')
    table = parse_csv(data, SCHEMA)
    assert table.schema == SCHEMA
    rows = table.to_pylist()
    assert rows[0] == {"id": 1, "s": "plain", "b": True, "f": 0.5}
    assert rows[1] == {"id": None, "s": None, "b": None, "f": None}
    assert rows[2]["s"] == "" and rows[2]["b"] is False and math.isnan(rows[2]["f"])
    assert rows[3]["s"] == 'a "quoted", value\nwith a newline' and rows[3]["f"] == -math.inf
    assert rows[4] == {"id": 2**63 - 1, "s": "\\N", "b": False, "f": 1e-05}


def test_streamed_parse_in_small_blocks_equals_whole_parse() -> None:
    data = b"".join(b'%d,"line %d\nand a comma, here",%s,%d.5\n' % (i, i, b"t" if i % 2 else b"f", i)
                    for i in range(2000))
    whole = parse_csv(data, SCHEMA)
    chunks = [data[i:i + 333] for i in range(0, len(data), 333)]
    tables = list(iter_csv(iter(chunks), SCHEMA, block_size=4096))
    assert len(tables) > 1, "small blocks give several tables"
    assert pa.concat_tables(tables).equals(whole)
    assert whole.num_rows == 2000


def test_empty_input_is_an_empty_table() -> None:
    assert parse_csv(b"", SCHEMA).num_rows == 0
    (table,) = list(iter_csv(iter([b"", b""]), SCHEMA))
    assert table.num_rows == 0 and table.schema == SCHEMA


def test_write_quotes_strings_and_leaves_nulls_bare() -> None:
    table = pa.table({"id": [1, None], "s": ["", None], "b": [True, None], "f": [None, 1.5]}, schema=SCHEMA)
    assert to_csv(table) == b'1,"",true,\n,,,1.5\n'
    assert to_csv(SCHEMA.empty_table()) == b""


def test_arrow_round_trip() -> None:
    table = pa.table(ROWS, schema=SCHEMA)
    assert parse_csv(to_csv(table).replace(b"true", b"t").replace(b"false", b"f"), SCHEMA).equals(table)


def test_round_trip_through_postgres(conn: psycopg.Connection) -> None:
    """What the runner writes, PostgreSQL reads unchanged; what PostgreSQL writes, the runner reads unchanged."""
    conn.execute("CREATE TEMP TABLE csv_trip (id bigint, s text, b boolean, f double precision)")
    table = pa.table(ROWS, schema=SCHEMA)
    with conn.cursor() as cur, cur.copy(copy_statement("csv_trip", ["id", "s", "b", "f"])) as copy:
        copy.write(to_csv(table))
    stored = conn.execute("SELECT id, s, b, f FROM csv_trip ORDER BY s IS NULL, id NULLS LAST").fetchall()
    expected = sorted(zip(*ROWS.values()), key=lambda r: (r[1] is None, r[0] is None, r[0] or 0))
    assert stored == expected
    assert conn.execute("SELECT count(*) FROM csv_trip WHERE s = ''").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM csv_trip WHERE s IS NULL").fetchone()[0] == 1
    assert conn.execute("SELECT s FROM csv_trip WHERE id = 9").fetchone()[0] == "\\."

    out = bytearray()
    with conn.cursor() as cur, cur.copy("COPY (SELECT id, s, b, f FROM csv_trip) TO STDOUT WITH (FORMAT csv)") as copy:
        for chunk in copy:
            out += chunk
    back = parse_csv(bytes(out), SCHEMA)
    assert sorted(back.to_pylist(), key=lambda r: (r["s"] is None, str(r["s"]))) == \
        sorted(table.to_pylist(), key=lambda r: (r["s"] is None, str(r["s"])))
