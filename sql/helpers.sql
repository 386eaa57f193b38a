/*
 * sql/helpers.sql
 *		Small helpers the tables and every other file use.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

CREATE OR REPLACE FUNCTION ray._caller()
RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT rolname FROM pg_roles WHERE oid = ray._calling_role() $$;
COMMENT ON FUNCTION ray._caller() IS
'The name of the role the API call in progress was made as (see ray._calling_role).';

CREATE OR REPLACE FUNCTION ray._is_admin(role oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_has_role(role, 'ray_admin', 'USAGE') $$;
COMMENT ON FUNCTION ray._is_admin(oid) IS
'True if the role has the privileges of ray_admin (superusers do).';

/*
 * The GPUs one worker node of a worker group has in Ray: the one reading of
 * a GPU spec and the group's distribution unit that node startup, the
 * autoscaler, admission and the fit checks of jobs and batch runs all use.
 * Ray counts a node's GPUs in whole numbers, so a node with a distribution
 * unit (a share of one physical GPU, at most 1) has one GPU in Ray, which
 * is that share: 1/unit such nodes are placed on each physical GPU.
 * Without a unit a node has its spec's GPUs, rounded up.
 */
CREATE OR REPLACE FUNCTION ray._worker_node_gpus(resource_type text, spec_gpus numeric, distribution_unit numeric)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN resource_type <> 'GPU' THEN 0
				WHEN distribution_unit IS NOT NULL THEN 1
				ELSE ceil(spec_gpus)::integer END
$$;
COMMENT ON FUNCTION ray._worker_node_gpus(text, numeric, numeric) IS
'The GPUs one worker node has in Ray: 0 for CPU groups, 1 (a share of one physical GPU) with a distribution unit, else its spec''s, rounded up.';

/*
 * The OID of the role that has a name now (0 for 'public', as in an ACL;
 * NULL for no role).
 */
CREATE OR REPLACE FUNCTION ray._role_oid(role name)
RETURNS oid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN role = 'public' THEN 0::oid ELSE (SELECT r.oid FROM pg_roles r WHERE r.rolname = role) END $$;
COMMENT ON FUNCTION ray._role_oid(name) IS
'The OID of the role with this name now: 0 for public, NULL if there is none.';

/*
 * Owners and grantees are kept by name, which pg_dump carries to another
 * cluster, and by OID, which tells a role from a later one given the same
 * name (or the same role under a new name).  A row is bound to the role
 * that has its name when the row is made: the caller, when an API function
 * makes it; the role of that name in the new cluster, when a restore copies
 * it in (roles are restored first).  An OID that comes NULL stays NULL: the
 * row's role was dropped (ray._sync_role_names), and no role that takes its
 * name later, here or in another cluster, is it.  The trigger's arguments
 * are pairs of a name column and its OID column.
 */
CREATE OR REPLACE FUNCTION ray._bind_roles()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	named jsonb := to_jsonb(NEW);
	bound jsonb := '{}';
BEGIN
	FOR pair IN 0 .. TG_NARGS / 2 - 1 LOOP
		IF named -> TG_ARGV[2 * pair + 1] <> 'null' THEN
			bound := bound || jsonb_build_object(TG_ARGV[2 * pair + 1],
												 ray._role_oid((named ->> TG_ARGV[2 * pair])::name));
		END IF;
	END LOOP;
	RETURN jsonb_populate_record(NEW, bound);
END
$$;
COMMENT ON FUNCTION ray._bind_roles() IS
'Row trigger: set each OID column named in the arguments, unless NULL, to the role that has the paired name column''s name now.';

/*
 * Names of resource groups, worker groups and node specs end up in process
 * titles, directory names and, with later providers, Kubernetes object names:
 * a conservative alphabet and length keep them valid everywhere.
 */
CREATE OR REPLACE FUNCTION ray._check_name(kind text, value text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL THEN
		RAISE EXCEPTION '% name must not be null', kind
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF value !~ '^[a-z][a-z0-9_-]{0,47}$' THEN
		RAISE EXCEPTION 'invalid % name "%"', kind, value
			USING ERRCODE = 'invalid_name',
				  DETAIL = 'A name starts with a lowercase letter and has at most 48 lowercase letters, digits, underscores and hyphens.';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_name(text, text) IS
'Raise an error unless value is a valid pg_ray object name.';
