/*
 * sql/resource_groups.sql
 *		The resource group, worker group and usage API (ray_admin).
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* ------------------------------------------------------------------------
 * Resource group API (ray_admin)
 * ------------------------------------------------------------------------
 */

/*
 * The OS user of pg_ray's pool (pg_ray.node_os_user_prefix and a number
 * below pg_ray.node_os_users) that a new local group's nodes are to run
 * as: the first no group has.  Creations wait for each other here, so that
 * two never take the same one.
 */
CREATE OR REPLACE FUNCTION ray._free_os_user()
RETURNS name
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	pool integer := current_setting('pg_ray.node_os_users')::integer;
	prefix text := current_setting('pg_ray.node_os_user_prefix');
	free name;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('pg_ray.os_user'));
	SELECT prefix || i INTO free
	FROM generate_series(0, pool - 1) i
	WHERE NOT EXISTS (SELECT FROM ray.resource_group g WHERE g.os_user = prefix || i)
	ORDER BY i LIMIT 1;
	IF free IS NULL THEN
		RAISE EXCEPTION 'no OS user is free for the nodes of a new local resource group'
			USING ERRCODE = 'configuration_limit_exceeded',
				  DETAIL = format('Each local group runs as one of %s0 .. %s%s (pg_ray.node_os_users = %s), and each is taken.',
								  prefix, prefix, pool - 1, pool),
				  HINT = 'Drop a local group, or make more OS users with scripts/install-node-users and raise pg_ray.node_os_users.';
	END IF;
	RETURN free;
END
$$;
COMMENT ON FUNCTION ray._free_os_user() IS
'The first OS user of the pool (pg_ray.node_os_users) that no resource group runs as; an error when none is left.';

CREATE OR REPLACE FUNCTION ray._create_resource_group_impl(
	name text,
	head_spec text DEFAULT 'small',
	provider text DEFAULT 'local',
	options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller name := ray._caller();
BEGIN
	PERFORM ray._check_name('resource group', _create_resource_group_impl.name);
	IF EXISTS (SELECT FROM ray.resource_group g WHERE g.name = _create_resource_group_impl.name
			   AND g.delete_requested_at IS NOT NULL) THEN
		RAISE EXCEPTION 'resource group "%" is being dropped', _create_resource_group_impl.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Create it again once it is gone from ray.resource_groups.';
	END IF;
	IF EXISTS (SELECT FROM ray.resource_group g WHERE g.name = _create_resource_group_impl.name) THEN
		RAISE EXCEPTION 'resource group "%" already exists', _create_resource_group_impl.name
			USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO ray.resource_group (name, provider, head_spec, options, owner, os_user)
	VALUES (_create_resource_group_impl.name, _create_resource_group_impl.provider,
			_create_resource_group_impl.head_spec, coalesce(_create_resource_group_impl.options, '{}'), caller,
			CASE WHEN _create_resource_group_impl.provider = 'local' THEN ray._free_os_user() END);
	-- a local cluster gets a token of its own: 244 random bits
	IF _create_resource_group_impl.provider = 'local' THEN
		INSERT INTO ray.resource_group_secret (resource_group, token)
		VALUES (_create_resource_group_impl.name,
				replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
	END IF;
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	VALUES (_create_resource_group_impl.name, NULL, 'CREATING', 1, caller, 'resource group created');
	RETURN _create_resource_group_impl.name;
END
$$;
COMMENT ON FUNCTION ray._create_resource_group_impl(text, text, text, jsonb) IS
'The work of ray.create_resource_group, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.create_resource_group(
	name text,
	head_spec text DEFAULT 'small',
	provider text DEFAULT 'local',
	options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.create_resource_group(text, text, text, jsonb) IS
'Create a Ray resource group: a head node of head_spec run by provider; add workers with ray.add_worker_group.';

CREATE OR REPLACE FUNCTION ray._alter_resource_group_impl(
	name text,
	head_spec text DEFAULT NULL,
	options jsonb DEFAULT NULL,
	force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_alter_resource_group_impl.name);
	new_head text := coalesce(_alter_resource_group_impl.head_spec, rg.head_spec);
	new_options jsonb := rg.options;
	changes text[] := '{}';
BEGIN
	IF _alter_resource_group_impl.options IS NOT NULL THEN
		IF jsonb_typeof(_alter_resource_group_impl.options) <> 'object' THEN
			PERFORM ray._check_group_options(_alter_resource_group_impl.options);
		END IF;
		-- keys given as null are removed; the others are set
		new_options := jsonb_strip_nulls(rg.options || _alter_resource_group_impl.options);
	END IF;
	IF new_head IS DISTINCT FROM rg.head_spec THEN
		changes := changes || format('head spec %s -> %s', rg.head_spec, new_head);
	END IF;
	IF new_options IS DISTINCT FROM rg.options THEN
		-- keys only: option values may be secrets, and events are kept forever
		changes := changes || format('options changed: %s', (
			SELECT string_agg(k, ', ' ORDER BY k) FROM (
				SELECT key AS k FROM jsonb_each(new_options) n
				WHERE n.value IS DISTINCT FROM rg.options -> n.key
				UNION
				SELECT key FROM jsonb_each(rg.options) o WHERE NOT new_options ? o.key) keys));
	END IF;
	IF cardinality(changes) = 0 THEN
		RAISE NOTICE 'resource group "%" already has that spec; nothing changes', rg.name;
		RETURN;
	END IF;
	-- The validation trigger speaks first: an invalid change reports no effects.
	UPDATE ray.resource_group g SET head_spec = new_head, options = new_options
	WHERE g.name = rg.name;
	-- the object store size is every node's: all of them restart
	IF (new_options -> 'object_store_memory_mb') IS DISTINCT FROM (rg.options -> 'object_store_memory_mb') THEN
		PERFORM ray._guard_interruption(rg.name, 'restarting every node', force);
		RAISE NOTICE 'every node of resource group "%" will restart', rg.name;
	ELSIF new_head IS DISTINCT FROM rg.head_spec
		OR (new_options -> 'ha') IS DISTINCT FROM (rg.options -> 'ha')
		OR (new_options -> 'redis_url') IS DISTINCT FROM (rg.options -> 'redis_url') THEN
		PERFORM ray._guard_interruption(rg.name, 'restarting the head node', force);
		RAISE NOTICE 'the head node of resource group "%" will restart', rg.name;
	END IF;
	PERFORM ray._spec_changed(rg.name, array_to_string(changes, '; '));
END
$$;
COMMENT ON FUNCTION ray._alter_resource_group_impl(text, text, jsonb, boolean) IS
'The work of ray.alter_resource_group, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.alter_resource_group(
	name text,
	head_spec text DEFAULT NULL,
	options jsonb DEFAULT NULL,
	force boolean DEFAULT false)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.alter_resource_group(text, text, jsonb, boolean) IS
'Change a resource group''s head spec or options (merged; a null value removes a key). Head restarts are refused while jobs run unless force.';

CREATE OR REPLACE FUNCTION ray._drop_resource_group_impl(name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_drop_resource_group_impl.name);
	caller name := ray._caller();
	affected bigint[];
	id bigint;
BEGIN
	affected := ray._guard_interruption(rg.name, 'dropping the resource group', force, true);
	FOREACH id IN ARRAY affected LOOP
		IF (SELECT state FROM ray.job WHERE job_id = id) = 'QUEUED' THEN
			PERFORM ray._job_transition(id, 'STOPPED',
				format('resource group "%s" was dropped by %s', rg.name, caller), caller);
			UPDATE ray.job SET stopped_by = caller, stop_requested_at = now() WHERE job_id = id;
		ELSIF (SELECT stop_requested_at FROM ray.job WHERE job_id = id) IS NULL THEN
			UPDATE ray.job SET stopped_by = caller, stop_requested_at = now()
			WHERE job_id = id;
			INSERT INTO ray.job_event (job_id, from_state, to_state, attempt, actor, message)
			SELECT id, state, state, attempts, caller,
				   format('stop requested: resource group "%s" was dropped', rg.name)
			FROM ray.job WHERE job_id = id;
		END IF;
	END LOOP;
	UPDATE ray.resource_group g SET delete_requested_at = now(), generation = generation + 1
	WHERE g.name = rg.name;
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	VALUES (rg.name, rg.state, rg.state, rg.generation + 1, caller, 'drop requested');
END
$$;
COMMENT ON FUNCTION ray._drop_resource_group_impl(text, boolean) IS
'The work of ray.drop_resource_group, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.drop_resource_group(name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.drop_resource_group(text, boolean) IS
'Drop a resource group: the worker stops its nodes and removes it. Refused while it has unfinished jobs unless force, which stops them.';

CREATE OR REPLACE FUNCTION ray._add_worker_group_impl(
	resource_group text,
	name text,
	resource_type text,
	spec text,
	min_workers integer,
	max_workers integer,
	disk_gb integer DEFAULT 100,
	gpu_distribution_unit numeric DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_add_worker_group_impl.resource_group);
BEGIN
	PERFORM ray._check_name('worker group', _add_worker_group_impl.name);
	IF EXISTS (SELECT FROM ray.worker_group w
			   WHERE w.resource_group = rg.name AND w.name = _add_worker_group_impl.name) THEN
		RAISE EXCEPTION 'worker group "%" already exists in resource group "%"',
			_add_worker_group_impl.name, rg.name
			USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO ray.worker_group (resource_group, name, resource_type, spec, min_workers,
								  max_workers, disk_gb, gpu_distribution_unit, desired_workers)
	VALUES (rg.name, _add_worker_group_impl.name, upper(_add_worker_group_impl.resource_type),
			_add_worker_group_impl.spec, _add_worker_group_impl.min_workers, _add_worker_group_impl.max_workers,
			_add_worker_group_impl.disk_gb, _add_worker_group_impl.gpu_distribution_unit,
			coalesce(_add_worker_group_impl.min_workers, 0));
	PERFORM ray._spec_changed(rg.name, format('worker group %s added', _add_worker_group_impl.name));
END
$$;
COMMENT ON FUNCTION ray._add_worker_group_impl(text, text, text, text, integer, integer, integer, numeric) IS
'The work of ray.add_worker_group, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.add_worker_group(
	resource_group text,
	name text,
	resource_type text,
	spec text,
	min_workers integer,
	max_workers integer,
	disk_gb integer DEFAULT 100,
	gpu_distribution_unit numeric DEFAULT NULL)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.add_worker_group(text, text, text, text, integer, integer, integer, numeric) IS
'Add a worker group of CPU or GPU nodes of one spec, scaled between min_workers and max_workers.';

CREATE OR REPLACE FUNCTION ray._worker_group(group_name text, worker_group_name text)
RETURNS ray.worker_group
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result ray.worker_group;
BEGIN
	PERFORM ray._resource_group(group_name);
	IF worker_group_name IS NULL THEN
		RAISE EXCEPTION 'worker group name must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO result FROM ray.worker_group
	WHERE resource_group = group_name AND name = worker_group_name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'worker group "%" does not exist in resource group "%"',
			worker_group_name, group_name
			USING ERRCODE = 'undefined_object',
				  HINT = format('List its worker groups with SELECT name FROM ray.worker_groups WHERE resource_group = %L.',
								group_name);
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION ray._worker_group(text, text) IS
'The worker group (locked), or an error if it or its resource group does not exist.';

CREATE OR REPLACE FUNCTION ray._alter_worker_group_impl(
	resource_group text,
	name text,
	spec text DEFAULT NULL,
	resource_type text DEFAULT NULL,
	min_workers integer DEFAULT NULL,
	max_workers integer DEFAULT NULL,
	disk_gb integer DEFAULT NULL,
	gpu_distribution_unit numeric DEFAULT NULL,
	force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	wg ray.worker_group := ray._worker_group(_alter_worker_group_impl.resource_group, _alter_worker_group_impl.name);
	new ray.worker_group := wg;
	restarts boolean;
	deleted integer;
BEGIN
	new.spec := coalesce(_alter_worker_group_impl.spec, wg.spec);
	new.resource_type := coalesce(upper(_alter_worker_group_impl.resource_type), wg.resource_type);
	new.min_workers := coalesce(_alter_worker_group_impl.min_workers, wg.min_workers);
	new.max_workers := coalesce(_alter_worker_group_impl.max_workers, wg.max_workers);
	new.disk_gb := coalesce(_alter_worker_group_impl.disk_gb, wg.disk_gb);
	new.gpu_distribution_unit := CASE
		WHEN _alter_worker_group_impl.gpu_distribution_unit IS NOT NULL THEN _alter_worker_group_impl.gpu_distribution_unit
		WHEN new.resource_type = 'CPU' THEN NULL
		ELSE wg.gpu_distribution_unit END;

	IF new IS NOT DISTINCT FROM wg THEN
		RAISE NOTICE 'worker group "%" already has that spec; nothing changes', wg.name;
		RETURN;
	END IF;

	-- The validation trigger speaks first: an invalid change reports no effects.
	UPDATE ray.worker_group w SET
		spec = new.spec, resource_type = new.resource_type, min_workers = new.min_workers,
		max_workers = new.max_workers, disk_gb = new.disk_gb,
		gpu_distribution_unit = new.gpu_distribution_unit,
		desired_workers = least(greatest(w.desired_workers, new.min_workers), new.max_workers)
	WHERE w.resource_group = wg.resource_group AND w.name = wg.name;

	restarts := new.spec <> wg.spec OR new.resource_type <> wg.resource_type
		OR new.disk_gb <> wg.disk_gb
		OR new.gpu_distribution_unit IS DISTINCT FROM wg.gpu_distribution_unit;
	deleted := greatest(wg.min_workers, wg.live_workers, wg.desired_workers) - new.max_workers;

	IF restarts THEN
		PERFORM ray._guard_interruption(wg.resource_group,
			format('restarting the nodes of worker group "%s"', wg.name), force);
		RAISE NOTICE 'the worker nodes of worker group "%" will restart', wg.name;
	ELSIF deleted > 0 THEN
		PERFORM ray._guard_interruption(wg.resource_group,
			format('deleting worker nodes of worker group "%s"', wg.name), force);
		RAISE NOTICE 'lowering max_workers of worker group "%" to % deletes % worker node%',
			wg.name, new.max_workers, deleted, CASE WHEN deleted = 1 THEN '' ELSE 's' END;
	END IF;

	PERFORM ray._spec_changed(wg.resource_group, format('worker group %s altered', wg.name));
END
$$;
COMMENT ON FUNCTION ray._alter_worker_group_impl(text, text, text, text, integer, integer, integer, numeric, boolean) IS
'The work of ray.alter_worker_group, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.alter_worker_group(
	resource_group text,
	name text,
	spec text DEFAULT NULL,
	resource_type text DEFAULT NULL,
	min_workers integer DEFAULT NULL,
	max_workers integer DEFAULT NULL,
	disk_gb integer DEFAULT NULL,
	gpu_distribution_unit numeric DEFAULT NULL,
	force boolean DEFAULT false)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.alter_worker_group(text, text, text, text, integer, integer, integer, numeric, boolean) IS
'Change a worker group. Restarts (spec, type, disk, GPU unit) and node deletions are refused while jobs run unless force.';

CREATE OR REPLACE FUNCTION ray._drop_worker_group_impl(resource_group text, name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	wg ray.worker_group := ray._worker_group(_drop_worker_group_impl.resource_group, _drop_worker_group_impl.name);
BEGIN
	PERFORM ray._guard_interruption(wg.resource_group,
		format('dropping worker group "%s"', wg.name), force);
	RAISE NOTICE 'dropping worker group "%" deletes its worker nodes', wg.name;
	DELETE FROM ray.worker_group w
	WHERE w.resource_group = wg.resource_group AND w.name = wg.name;
	PERFORM ray._spec_changed(wg.resource_group, format('worker group %s dropped', wg.name));
END
$$;
COMMENT ON FUNCTION ray._drop_worker_group_impl(text, text, boolean) IS
'The work of ray.drop_worker_group, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.drop_worker_group(resource_group text, name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.drop_worker_group(text, text, boolean) IS
'Drop a worker group and delete its nodes. Refused while jobs run unless force.';

CREATE OR REPLACE FUNCTION ray._grant_usage_impl(resource_group text, role name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_grant_usage_impl.resource_group, 'none');
BEGIN
	PERFORM ray._check_grantee(role);
	-- a grant that bears the name of a role renamed since is that role's: it takes its name now
	PERFORM ray._sync_role_names_of_grants();
	-- one left to a dropped role of this name is nobody's: this one replaces it
	INSERT INTO ray.resource_group_grant AS g (resource_group, grantee, granted_by, grantee_oid)
	VALUES (rg.name, role, ray._caller(), ray._role_oid(role))
	ON CONFLICT ON CONSTRAINT resource_group_grant_pkey DO UPDATE
		SET grantee_oid = excluded.grantee_oid, granted_by = excluded.granted_by, granted_at = now()
		WHERE g.grantee_oid IS DISTINCT FROM excluded.grantee_oid;
	IF NOT FOUND THEN
		RAISE NOTICE 'role "%" can already use resource group "%"', role, rg.name;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._grant_usage_impl(text, name) IS
'The work of ray.grant_usage, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.grant_usage(resource_group text, role name)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.grant_usage(text, name) IS
'Let a role (and its members), or ''public'', submit jobs to a resource group.';

CREATE OR REPLACE FUNCTION ray._revoke_usage_impl(resource_group text, role name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_revoke_usage_impl.resource_group, 'none');
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	DELETE FROM ray.resource_group_grant g
	WHERE g.resource_group = rg.name
	  AND (g.grantee_oid = ray._role_oid(role)
		   -- a grant to a dropped role of that name
		   OR (g.grantee = role AND g.grantee_oid <> 0 AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.grantee_oid)));
	IF NOT FOUND THEN
		RAISE NOTICE 'role "%" had no usage of resource group "%" to revoke', role, rg.name;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._revoke_usage_impl(text, name) IS
'The work of ray.revoke_usage, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.revoke_usage(resource_group text, role name)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.revoke_usage(text, name) IS
'Take back usage of a resource group from a role; its jobs already submitted go on.';
