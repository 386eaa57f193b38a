"""What pg_ray's installation looks like, as text that two installations can
be compared by: the upgrade test compares an updated installation with a
fresh one, the backup test a restored database with the original.

`catalog(conn)` describes every object of the extension (members, functions
with their bodies, settings and ACLs, tables with their columns, defaults,
constraints, indexes, policies and triggers, views, sequences, what pg_dump
dumps, its two schemas) by name, never by oid, so that two databases can be
compared.  Objects in schema ray are the extension's; ray_staging holds the
staging tables of runs, which are data, so only the schema itself counts.
`contents(conn)` is every row of every table of the extension.
"""

from __future__ import annotations

from typing import Any

import psycopg

# Each query yields (key, description) rows; the key names the object, the
# description is everything about it that must match.
CATALOG_QUERIES: dict[str, str] = {
    "member": """
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid), ''
        FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
        WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'pg_ray'""",
    "function": """
        SELECT p.oid::regprocedure::text,
               pg_get_functiondef(p.oid) || E'\\nacl ' || coalesce(p.proacl::text, '-')
               || E'\\nowner ' || pg_get_userbyid(p.proowner)
               || E'\\ncomment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'ray'""",
    "relation": """
        SELECT c.oid::regclass::text,
               concat_ws(' ', 'kind', c.relkind, 'acl', coalesce(c.relacl::text, '-'),
                         'owner', pg_get_userbyid(c.relowner),
                         'options', coalesce(c.reloptions::text, '-'),
                         'rls', c.relrowsecurity, c.relforcerowsecurity, 'persistence', c.relpersistence,
                         'comment', coalesce(obj_description(c.oid, 'pg_class'), '-'))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'ray' AND c.relkind IN ('r', 'v', 'S', 'p', 'm', 'f')""",
    "column": """
        SELECT c.oid::regclass::text || '.' || a.attname,
               concat_ws(' ', 'position', row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                         'type', format_type(a.atttypid, a.atttypmod), 'not null', a.attnotnull,
                         'default', coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-'),
                         'identity', a.attidentity, 'generated', a.attgenerated,
                         'collation', coalesce(a.attcollation::regcollation::text, '-'),
                         'acl', coalesce(a.attacl::text, '-'),
                         'comment', coalesce(col_description(c.oid, a.attnum), '-'))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
        WHERE n.nspname = 'ray' AND c.relkind IN ('r', 'v', 'p', 'm', 'f')""",
    "constraint": """
        SELECT con.conrelid::regclass::text || ' ' || con.conname,
               pg_get_constraintdef(con.oid) || ' deferrable ' || con.condeferrable
        FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
        WHERE n.nspname = 'ray'""",
    "index": """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'ray'""",
    "policy": """
        SELECT schemaname || '.' || tablename || ' ' || policyname,
               concat_ws(' ', permissive, roles::text, cmd, qual, with_check)
        FROM pg_policies WHERE schemaname = 'ray'""",
    "trigger": """
        SELECT t.tgrelid::regclass::text || ' ' || t.tgname,
               pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'ray' AND NOT t.tgisinternal""",
    "view": """
        SELECT c.oid::regclass::text, pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'ray' AND c.relkind IN ('v', 'm')""",
    "sequence": """
        SELECT s.seqrelid::regclass::text,
               concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax,
                         s.seqmin, s.seqcache, s.seqcycle,
                         'owned by', (SELECT d.refobjid::regclass::text || '.' || d.refobjsubid
                                      FROM pg_depend d
                                      WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                                        AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'))
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'ray'""",
    "schema": """
        SELECT nspname, concat_ws(' ', 'owner', pg_get_userbyid(nspowner), 'acl', coalesce(nspacl::text, '-'),
                                  'comment', coalesce(obj_description(oid, 'pg_namespace'), '-'))
        FROM pg_namespace WHERE nspname IN ('ray', 'ray_staging')""",
    "type": """
        SELECT t.oid::regtype::text, concat_ws(' ', t.typtype, coalesce(t.typacl::text, '-'))
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'ray' AND t.typtype NOT IN ('c')
          AND t.typelem = 0""",
    "dumped": """
        SELECT cfg::regclass::text, coalesce(e.extcondition[i], '')
        FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS u(cfg, i)
        WHERE e.extname = 'pg_ray'""",
    "init privilege": """
        SELECT pg_describe_object(ip.classoid, ip.objoid, ip.objsubid), ip.privtype::text || ' ' || ip.initprivs::text
        FROM pg_init_privs ip
        WHERE EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
                      WHERE e.extname = 'pg_ray' AND d.deptype = 'e'
                        AND d.classid = ip.classoid AND d.objid = ip.objoid)""",
    "role": """
        SELECT r.rolname, concat_ws(' ', r.rolcanlogin, r.rolsuper, r.rolinherit,
                                    (SELECT string_agg(g.rolname, ',' ORDER BY g.rolname)
                                     FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                                     WHERE m.member = r.oid))
        FROM pg_roles r WHERE r.rolname IN ('ray_user', 'ray_admin', 'ray_run')""",
}


def catalog(conn: psycopg.Connection) -> dict[str, str]:
    """Every object of the installed pg_ray, "section key" -> description."""
    described: dict[str, str] = {}
    for section, query in CATALOG_QUERIES.items():
        for key, description in conn.execute(query).fetchall():
            name = f"{section} {key}"
            assert name not in described, f"two objects described as {name}"
            described[name] = description
    return described


def catalog_differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """What differs between two catalogs, a line per object, for an assertion message."""
    lines = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            lines.append(f"missing: {name}")
        elif name not in expected:
            lines.append(f"extra: {name}")
        elif expected[name] != actual[name]:
            lines.append(f"differs: {name}\n  expected: {expected[name]}\n  actual:   {actual[name]}")
    return lines


def extension_tables(conn: psycopg.Connection) -> list[str]:
    """The tables of the extension, by name."""
    return [r[0] for r in conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'ray' AND c.relkind = 'r' ORDER BY 1").fetchall()]


def contents(conn: psycopg.Connection, tables: list[str] | None = None) -> dict[str, list[Any]]:
    """Every row of the extension's tables (or of the tables named), as sorted JSON text."""
    rows: dict[str, list[Any]] = {}
    for table in tables if tables is not None else extension_tables(conn):
        rows[table] = sorted(r[0] for r in conn.execute(
            f"SELECT to_jsonb(t)::text FROM {table} t").fetchall())  # names from the catalog
    return rows
