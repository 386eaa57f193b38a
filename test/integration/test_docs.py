"""The docs say what the code does: the settings table of docs/operations.md
lists every pg_ray setting the library defines, with its default."""

from __future__ import annotations

import re

import psycopg

from conftest import ROOT

# what a unit in the docs is, in the base unit PostgreSQL reports
TIME_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}
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
