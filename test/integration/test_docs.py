"""The docs say what the code does: the settings table of docs/operations.md
lists every pg_ray setting the library defines, with its default."""

from __future__ import annotations

import re

import psycopg

from conftest import ROOT

# what a unit in the docs is, in the base unit PostgreSQL reports
TIME_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
SIZE_B = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


def documented_settings() -> dict[str, str]:
    """Setting name -> its default as the table writes it."""
    text = (ROOT / "docs/operations.md").read_text()
    table = text[text.index("## Settings"):]
    table = table[:table.index("\n## ")]
    found: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`pg_ray."):
            continue
        names = re.findall(r"`(pg_ray\.[a-z_]+)`", cells[0])
        defaults = re.findall(r"`([^`]*)`", cells[1]) or [cells[1]]
        assert len(defaults) == len(names), f"one default per setting in: {line}"
        found.update(zip(names, defaults))
    return found


def in_base_unit(documented: str, unit: str | None) -> str:
    """A documented default ("10s", "1MB", "5") in the setting's base unit, as pg_settings shows it."""
    match = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", documented)
    if not match or not unit or not match.group(2):
        return documented
    number, written = int(match.group(1)), match.group(2)
    scale = TIME_MS if unit in TIME_MS else SIZE_B
    return str(number * scale[written] // scale[unit])


def test_every_setting_is_documented_with_its_default(db: psycopg.Connection) -> None:
    documented = documented_settings()
    defined = db.execute("SELECT name, boot_val, unit FROM pg_settings WHERE name LIKE 'pg_ray.%'").fetchall()
    assert sorted(documented) == sorted(name for name, _, _ in defined)
    for name, boot_value, unit in defined:
        written = documented[name]
        expected = "" if written == "empty" else in_base_unit(written, unit)
        assert expected == (boot_value or ""), f"{name}: the docs say {written}, the default is {boot_value} {unit}"


def _closing_paren(text: str, start: int) -> int:
    """The index of the parenthesis that closes the one open before start (quotes skipped)."""
    depth, quoted, i = 1, False, start
    while depth:
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        i += 1
    return i - 1


def documented_signatures() -> list[tuple[str, str, str]]:
    """(name, arguments, result) of every signature in docs/sql.md's SQL blocks: a line that
    starts `ray.<name>(` and whose call is followed by RETURNS."""
    text = (ROOT / "docs/sql.md").read_text()
    found = []
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        block = re.sub(r"--[^\n]*", "", block)
        for match in re.finditer(r"(?m)^ray\.([a-z_]+)\(", block):
            end = _closing_paren(block, match.end())
            returns = re.match(r"\s*RETURNS\s+(\S+)", block[end + 1:])
            if returns:
                found.append((match.group(1), " ".join(block[match.end():end].split()), returns.group(1)))
    return found


def _split_arguments(arguments: str) -> list[str]:
    """Top-level comma-separated parts (no comma inside quotes or parentheses splits)."""
    parts, depth, quoted, current = [], 0, False, ""
    for char in arguments:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def test_every_function_in_the_sql_reference_exists_with_that_signature(db: psycopg.Connection) -> None:
    signatures = documented_signatures()
    names = {name for name, _, _ in signatures}
    # the reference names every function that ray_user or ray_admin may call
    assert {"create_resource_group", "submit_job", "wait_job", "batch_inference", "batch_inference_plan",
            "set_quota", "drop_quota", "worker_status", "cluster_status", "zip_directory"} <= names
    for name, arguments, result in signatures:
        documented = [part.split(" DEFAULT ") for part in _split_arguments(arguments)]
        candidates = db.execute(
            "SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid) FROM pg_proc p "
            "WHERE p.pronamespace = 'ray'::regnamespace AND p.proname = %s", (name,)).fetchall()
        matched = False
        for defined_arguments, defined_result in candidates:
            defined = [part.split(" DEFAULT ") for part in _split_arguments(defined_arguments)
                       if not part.startswith("OUT ")]
            if [d[0] for d in defined] != [d[0] for d in documented] or defined_result != result:
                continue
            assert [len(d) for d in defined] == [len(d) for d in documented], f"ray.{name}: defaults differ"
            for (declared, *doc_default), (_, *pg_default) in zip(documented, defined):
                if doc_default:
                    data_type = declared.split(" ", 1)[1]
                    same = db.execute(
                        f"SELECT ({doc_default[0]})::{data_type} IS NOT DISTINCT FROM ({pg_default[0]})::{data_type}"
                    ).fetchone()[0]
                    assert same, f"ray.{name}({declared}): the docs say DEFAULT {doc_default[0]}, it is {pg_default[0]}"
            matched = True
        assert matched, f"ray.{name}({arguments}) RETURNS {result} is not defined; defined: {candidates}"


def test_no_example_waits_in_the_statement_that_queued_the_job() -> None:
    """SELECT ray.wait_job(ray.submit_job(...)) fails at once (the job cannot start before the
    statement's transaction commits): no example may show it."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), re.S):
            assert not re.search(r"wait_job\(\s*ray\.(submit_job|batch_inference)", block), path.name
