/*
 * sql/lookups.sql
 *		Lookups and guards shared by the API functions.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* ------------------------------------------------------------------------
 * Lookups and guards shared by the API functions
 * ------------------------------------------------------------------------
 */

/* The resource group of that name, or the error a user expects. */
CREATE OR REPLACE FUNCTION ray._resource_group(group_name text, lock_mode text DEFAULT 'update')
RETURNS ray.resource_group
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result ray.resource_group;
BEGIN
	IF group_name IS NULL THEN
		RAISE EXCEPTION 'resource group name must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- Changes lock the group FOR UPDATE and submissions FOR KEY SHARE, so a
	-- job cannot slip into a group while it is being dropped.  KEY SHARE is
	-- the weakest lock that does it: the worker locks groups FOR NO KEY
	-- UPDATE, which it does not conflict with, so a submission left open in
	-- a user's transaction holds up no round of the worker.  The guard holds
	-- because changes take FOR UPDATE here (not NO KEY UPDATE, which KEY
	-- SHARE lets through).
	IF lock_mode = 'update' THEN
		SELECT * INTO result FROM ray.resource_group WHERE name = group_name FOR UPDATE;
	ELSIF lock_mode = 'share' THEN
		SELECT * INTO result FROM ray.resource_group WHERE name = group_name FOR KEY SHARE;
	ELSE
		SELECT * INTO result FROM ray.resource_group WHERE name = group_name;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'resource group "%" does not exist', group_name
			USING ERRCODE = 'undefined_object',
				  HINT = 'List resource groups with SELECT name FROM ray.resource_groups.';
	END IF;
	IF result.delete_requested_at IS NOT NULL THEN
		RAISE EXCEPTION 'resource group "%" is being dropped', group_name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'The background worker is removing it.';
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION ray._resource_group(text, text) IS
'The resource group of that name, locked FOR UPDATE, FOR KEY SHARE or not at all (lock_mode update, share, none), or an error if it does not exist or is being dropped.';

/* Whether a role may submit jobs to a resource group. */
CREATE OR REPLACE FUNCTION ray._can_use(group_name text, role oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._is_admin(role) OR EXISTS (
		SELECT FROM ray.resource_group_grant g
		LEFT JOIN pg_roles r ON r.oid = g.grantee_oid
		WHERE g.resource_group = group_name
		  AND (g.grantee_oid = 0 OR (r.oid IS NOT NULL AND pg_has_role(role, r.oid, 'USAGE'))))
$$;
COMMENT ON FUNCTION ray._can_use(text, oid) IS
'True if the role is an admin, or was granted usage of the resource group directly, through a role it has, or through PUBLIC.';

/*
 * Refuse a change that would interrupt jobs, unless forced.  "Interrupt"
 * follows the managed service's documented effects: restarted or deleted
 * nodes take their drivers, tasks and object store data with them.
 */
CREATE OR REPLACE FUNCTION ray._guard_interruption(group_name text, effect text, force boolean,
										include_queued boolean DEFAULT false)
RETURNS bigint[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids bigint[];
	listed text;
BEGIN
	SELECT array_agg(job_id ORDER BY job_id) INTO ids
	FROM ray.job
	WHERE resource_group = group_name
	  AND (state IN ('SUBMITTING', 'PENDING', 'RUNNING', 'PUBLISHING')
		   OR (include_queued AND state = 'QUEUED'));
	IF ids IS NULL THEN
		RETURN '{}';
	END IF;
	listed := array_to_string(ids, ', ');
	IF NOT coalesce(force, false) THEN
		RAISE EXCEPTION '% would interrupt % of resource group "%"', effect,
			CASE WHEN cardinality(ids) = 1 THEN 'a job' ELSE cardinality(ids) || ' jobs' END, group_name
			USING ERRCODE = 'object_in_use',
				  DETAIL = format('Affected jobs: %s.', listed),
				  -- a NULL force: the change has no force to offer
				  HINT = CASE WHEN force IS NULL THEN 'Wait for them to finish, or stop them with ray.stop_job().'
							  ELSE 'Wait for them to finish, stop them with ray.stop_job(), or pass force => true to interrupt them.' END;
	END IF;
	RAISE NOTICE '% interrupts %', effect,
		CASE WHEN cardinality(ids) = 1 THEN 'job ' ELSE 'jobs ' END || listed;
	RETURN ids;
END
$$;
COMMENT ON FUNCTION ray._guard_interruption(text, text, boolean, boolean) IS
'Raise an error listing the jobs a change would interrupt, unless force is true; returns their ids.';

/* Record a change of desired spec and bump the generation the worker follows. */
CREATE OR REPLACE FUNCTION ray._spec_changed(group_name text, why text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	WITH bumped AS (
		UPDATE ray.resource_group SET generation = generation + 1
		WHERE name = group_name
		RETURNING state, generation)
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	SELECT group_name, state, state, generation, ray._caller(), why FROM bumped;
$$;
COMMENT ON FUNCTION ray._spec_changed(text, text) IS
'Bump a resource group''s generation and record why, so the reconciler acts on the change.';

/* The grantee of a grant (of a resource group or a model): an existing role, or 'public'. */
CREATE OR REPLACE FUNCTION ray._check_grantee(role name)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF role <> 'public' AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role) THEN
		RAISE EXCEPTION 'role "%" does not exist', role
			USING ERRCODE = 'undefined_object',
				  HINT = 'Name an existing role, or ''public'' for every role.';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_grantee(name) IS
'Raise an error unless the role of a grant is an existing role or ''public''.';
