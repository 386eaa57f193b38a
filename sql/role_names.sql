/*
 * sql/role_names.sql
 *		The names of owners and grantees kept those of their roles.
 *
 * Rows name their roles twice (ray._bind_roles): by OID, which every check
 * matches, and by name, which pg_dump carries and a restore binds by.  So
 * that a restore binds each row to the right role, the names follow their
 * roles: a renamed role's rows take its new name, and a dropped role's rows
 * lose their OID (NULL), which a restore keeps, so that no role given the
 * name later, here or in another cluster, becomes their owner.  The worker
 * does it when the roles change; granting does it for the grants first.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * One name column and its OID column.  Where the name is part of the
 * primary key (with the key's other columns), a rename could meet a row
 * already there: a dropped role's row of that name gives way, and a row of
 * the same role under its old name is the same grant twice and goes.
 */
CREATE OR REPLACE FUNCTION ray._sync_role_name_column(tab regclass, other_keys text[], name_column text,
													  oid_column text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	same_key text := coalesce((SELECT string_agg(format('o.%1$I = g.%1$I', k), ' AND ') FROM unnest(other_keys) k),
							  'true');
BEGIN
	IF other_keys IS NOT NULL THEN
		EXECUTE format('DELETE FROM %1$s g WHERE g.%3$I IS DISTINCT FROM 0'
					   ' AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.%3$I)'
					   ' AND EXISTS (SELECT FROM %1$s o JOIN pg_roles r ON r.oid = o.%3$I'
					   ' WHERE %4$s AND r.rolname = g.%2$I AND o.%2$I <> r.rolname)',
					   tab, name_column, oid_column, same_key);
		EXECUTE format('DELETE FROM %1$s g USING pg_roles r WHERE r.oid = g.%3$I AND g.%2$I <> r.rolname'
					   ' AND EXISTS (SELECT FROM %1$s o WHERE %4$s AND o.%2$I = r.rolname AND o.%3$I = g.%3$I)',
					   tab, name_column, oid_column, same_key);
	END IF;
	EXECUTE format('UPDATE %1$s g SET %2$I = r.rolname FROM pg_roles r WHERE r.oid = g.%3$I AND g.%2$I <> r.rolname',
				   tab, name_column, oid_column);
	EXECUTE format('UPDATE %1$s g SET %2$I = NULL WHERE g.%2$I <> 0'
				   ' AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.%2$I)', tab, oid_column);
END
$$;
COMMENT ON FUNCTION ray._sync_role_name_column(regclass, text[], text, text) IS
'Give the rows of one name column the names their roles have now, and unbind the rows of dropped roles.';

/* The grants of resource groups and models, before a grant is made. */
CREATE OR REPLACE FUNCTION ray._sync_role_names_of_grants()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM ray._sync_role_name_column('ray.resource_group_grant', ARRAY['resource_group'], 'grantee', 'grantee_oid');
	PERFORM ray._sync_role_name_column('ray.model_grant', ARRAY['model', 'granted_by'], 'grantee', 'grantee_oid');
	PERFORM ray._sync_role_name_column('ray.model_grant', ARRAY['model', 'grantee'], 'granted_by', 'granted_by_oid');
END
$$;
COMMENT ON FUNCTION ray._sync_role_names_of_grants() IS
'Keep the names in the grants of resource groups and models those of their roles now.';

/*
 * Every owner and grantee, for the worker when the roles have changed.  A
 * row a user's transaction holds is not waited for: the sync is tried
 * again next round (false).  So is a rename it cannot make (two roles that
 * swapped their names, whose grants would meet), with a WARNING.
 */
CREATE OR REPLACE FUNCTION ray._sync_role_names()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
AS $$
BEGIN
	PERFORM ray._sync_role_names_of_grants();
	PERFORM ray._sync_role_name_column('ray.job', NULL, 'owner', 'owner_oid');
	PERFORM ray._sync_role_name_column('ray.model', NULL, 'owner', 'owner_oid');
	PERFORM ray._sync_role_name_column('ray.quota', ARRAY['resource_group'], 'role', 'role_oid');
	PERFORM ray._sync_role_name_column('ray.job_run_usage', NULL, 'owner', 'owner_oid');
	RETURN true;
EXCEPTION WHEN lock_not_available OR unique_violation THEN
	RAISE WARNING 'pg_ray could not bring the names of owners and grantees up to date: %', SQLERRM
		USING HINT = 'It tries again in its next round.';
	RETURN false;
END
$$;
COMMENT ON FUNCTION ray._sync_role_names() IS
'Keep every owner''s and grantee''s name that of its role now, and unbind the rows of dropped roles; false if it must be tried again.';
