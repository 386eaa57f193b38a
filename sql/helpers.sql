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
