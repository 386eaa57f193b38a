/*
 * sql/jobs.sql
 *		The job API: submit, stop, logs (ray_user).
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* ------------------------------------------------------------------------
 * Job API (ray_user)
 * ------------------------------------------------------------------------
 */

/*
 * A working directory is a zip within pg_ray.max_working_dir_bytes, and the
 * only one the job names.
 */
CREATE OR REPLACE FUNCTION ray._check_working_dir(zip bytea, runtime_env jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	-- in bytes whatever unit it was set in
	limit_bytes bigint := (SELECT setting::bigint FROM pg_settings WHERE name = 'pg_ray.max_working_dir_bytes');
BEGIN
	IF jsonb_typeof(runtime_env) = 'object' AND runtime_env ? 'working_dir' THEN
		RAISE EXCEPTION 'the job names two working directories'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'runtime_env has "working_dir" and the working_dir argument is given too.',
				  HINT = 'Give the zip as working_dir and leave it out of runtime_env.';
	END IF;
	IF length(zip) > limit_bytes THEN
		RAISE EXCEPTION 'working directory is too large: % bytes', length(zip)
			USING ERRCODE = 'program_limit_exceeded',
				  DETAIL = format('The limit is %s (pg_ray.max_working_dir_bytes).',
								  pg_size_pretty(limit_bytes)),
				  HINT = 'Leave data out of the working directory and read it from tables, or ask a superuser to raise the limit.';
	END IF;
	IF length(zip) < 22 OR substring(zip from 1 for 2) <> '\x504b'::bytea
		OR substring(zip from 3 for 2) NOT IN ('\x0304'::bytea, '\x0506'::bytea) THEN
		RAISE EXCEPTION 'working directory is not a zip archive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Zip the directory with its files at the root of the archive, as "cd app && zip -r ../app.zip ." does, or use ray.zip_directory on the server.';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_working_dir(bytea, jsonb) IS
'Raise an error unless a working directory is a zip within pg_ray.max_working_dir_bytes and the job names no other.';

CREATE OR REPLACE FUNCTION ray._submit_job_impl(
	resource_group text,
	entrypoint text,
	runtime_env jsonb DEFAULT '{}',
	metadata jsonb DEFAULT '{}',
	entrypoint_num_cpus numeric DEFAULT NULL,
	entrypoint_num_gpus numeric DEFAULT NULL,
	entrypoint_memory bigint DEFAULT NULL,
	entrypoint_resources jsonb DEFAULT '{}',
	max_attempts integer DEFAULT 1,
	retry_on_failure boolean DEFAULT false,
	working_dir bytea DEFAULT NULL,
	priority integer DEFAULT 0,
	worker_group text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_oid oid := ray._calling_role();
	caller name := ray._caller();
	rg ray.resource_group := ray._resource_group(_submit_job_impl.resource_group, 'share');
	id bigint;
BEGIN
	IF NOT ray._can_use(rg.name, caller_oid) THEN
		RAISE EXCEPTION 'permission denied for resource group "%"', rg.name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = format('A ray_admin can grant it with SELECT ray.grant_usage(%L, %L).', rg.name, caller);
	END IF;

	-- A driver runs on one node: refuse what no node of the group could ever
	-- hold.  A group without worker groups yet is taken at its word.
	PERFORM ray._check_entrypoint_amounts(_submit_job_impl.entrypoint_num_cpus, _submit_job_impl.entrypoint_num_gpus,
										  _submit_job_impl.entrypoint_memory);
	PERFORM ray._check_job_worker_group(rg.name, _submit_job_impl.worker_group);
	IF (CASE WHEN jsonb_typeof(_submit_job_impl.entrypoint_resources) = 'object'
			 THEN EXISTS (SELECT FROM jsonb_object_keys(_submit_job_impl.entrypoint_resources) k WHERE k ~* '^pgray')
			 ELSE false END) THEN
		RAISE EXCEPTION 'entrypoint_resources must not name pg_ray''s own resources'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Resources whose names start with "pgray" are pg_ray''s.',
				  HINT = 'Run the job on a worker group with worker_group => ''name''.';
	END IF;
	IF EXISTS (SELECT FROM ray.worker_group w WHERE w.resource_group = rg.name) THEN
		IF coalesce(_submit_job_impl.entrypoint_num_gpus, 0) > 0 AND NOT EXISTS (
			SELECT FROM ray.worker_group w WHERE w.resource_group = rg.name AND w.resource_type = 'GPU'
							AND w.name = coalesce(_submit_job_impl.worker_group, w.name)) THEN
			RAISE EXCEPTION 'resource group "%" has no GPU workers%', rg.name,
				CASE WHEN _submit_job_impl.worker_group IS NOT NULL
					 THEN format(' in worker group "%s"', _submit_job_impl.worker_group) ELSE '' END
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('The job asks for entrypoint_num_gpus = %s.', _submit_job_impl.entrypoint_num_gpus),
					  HINT = 'Add a GPU worker group with ray.add_worker_group, or submit without entrypoint_num_gpus.';
		END IF;
		IF NOT EXISTS (
			SELECT FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
			WHERE w.resource_group = rg.name
			  AND w.name = coalesce(_submit_job_impl.worker_group, w.name)
			  AND coalesce(_submit_job_impl.entrypoint_num_cpus, 0) <= s.num_cpus
			  AND coalesce(_submit_job_impl.entrypoint_num_gpus, 0) <= ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit)
			  AND coalesce(_submit_job_impl.entrypoint_memory, 0) <= s.memory_mb * 1048576) THEN
			RAISE EXCEPTION 'no worker node of resource group "%" can hold the entrypoint', rg.name
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('The entrypoint asks for %s CPUs, %s GPUs and %s bytes of memory on one node; its nodes have %s.',
									  coalesce(_submit_job_impl.entrypoint_num_cpus, 0), coalesce(_submit_job_impl.entrypoint_num_gpus, 0),
									  coalesce(_submit_job_impl.entrypoint_memory, 0),
									  (SELECT string_agg(format('%s CPUs, %s GPUs and %s MB (%s)', s.num_cpus,
																ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit),
																s.memory_mb, w.name),
														 '; ' ORDER BY w.name)
									   FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
									   WHERE w.resource_group = rg.name
										 AND w.name = coalesce(_submit_job_impl.worker_group, w.name))),
					  HINT = 'Ask for less, or add a worker group of a larger spec.';
		END IF;
	END IF;

	IF _submit_job_impl.working_dir IS NOT NULL THEN
		PERFORM ray._check_working_dir(_submit_job_impl.working_dir, coalesce(_submit_job_impl.runtime_env, '{}'));
	END IF;
	PERFORM ray._check_priority(_submit_job_impl.priority, rg.name, caller_oid);
	PERFORM ray._check_queued_quota(rg.name, caller_oid);

	-- for admission, a job that names no CPUs asks for one: its driver is a process of its own;
	-- a job for one worker group asks Ray for a sliver of that group's own resource
	INSERT INTO ray.job (owner, resource_group, kind, entrypoint, runtime_env, metadata,
						 entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory,
						 entrypoint_resources, max_attempts, retry_on_failure, owner_oid,
						 priority, cpus_asked, gpus_asked, worker_group)
	VALUES (caller, rg.name, 'script', _submit_job_impl.entrypoint,
			coalesce(_submit_job_impl.runtime_env, '{}'), coalesce(_submit_job_impl.metadata, '{}'),
			_submit_job_impl.entrypoint_num_cpus, _submit_job_impl.entrypoint_num_gpus,
			_submit_job_impl.entrypoint_memory,
			coalesce(_submit_job_impl.entrypoint_resources, '{}')
				|| coalesce(ray._worker_group_resource(_submit_job_impl.worker_group), '{}'),
			_submit_job_impl.max_attempts, coalesce(_submit_job_impl.retry_on_failure, false), caller_oid,
			_submit_job_impl.priority, coalesce(_submit_job_impl.entrypoint_num_cpus, 1),
			coalesce(_submit_job_impl.entrypoint_num_gpus, 0), _submit_job_impl.worker_group)
	RETURNING job_id INTO id;
	IF _submit_job_impl.working_dir IS NOT NULL THEN
		-- named by content, 40 hex digits as Ray names its own packages
		INSERT INTO ray.job_package (job_id, package, content)
		VALUES (id, '_ray_pkg_' || left(encode(sha256(_submit_job_impl.working_dir), 'hex'), 40) || '.zip',
				_submit_job_impl.working_dir);
	END IF;
	INSERT INTO ray.job_event (job_id, from_state, to_state, attempt, actor, message)
	VALUES (id, NULL, 'QUEUED', 0, caller, 'submitted');
	RETURN id;
END
$$;
COMMENT ON FUNCTION ray._submit_job_impl(text, text, jsonb, jsonb, numeric, numeric, bigint, jsonb, integer, boolean, bytea, integer, text) IS
'The work of ray.submit_job, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.submit_job(
	resource_group text,
	entrypoint text,
	runtime_env jsonb DEFAULT '{}',
	metadata jsonb DEFAULT '{}',
	entrypoint_num_cpus numeric DEFAULT NULL,
	entrypoint_num_gpus numeric DEFAULT NULL,
	entrypoint_memory bigint DEFAULT NULL,
	entrypoint_resources jsonb DEFAULT '{}',
	max_attempts integer DEFAULT 1,
	retry_on_failure boolean DEFAULT false,
	working_dir bytea DEFAULT NULL,
	priority integer DEFAULT 0,
	worker_group text DEFAULT NULL)
RETURNS bigint
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.submit_job(text, text, jsonb, jsonb, numeric, numeric, bigint, jsonb, integer, boolean, bytea, integer, text) IS
'Queue a Ray job on a resource group, as ray job submit does; returns the job id. The background worker submits it.';

CREATE OR REPLACE FUNCTION ray._stop_job_impl(job_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_oid oid := ray._calling_role();
	caller name := ray._caller();
	job ray.job;
BEGIN
	IF _stop_job_impl.job_id IS NULL THEN
		RAISE EXCEPTION 'job id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO job FROM ray.job j WHERE j.job_id = _stop_job_impl.job_id FOR NO KEY UPDATE;
	-- Someone else's job does not exist, as far as this caller can tell.
	IF NOT FOUND OR (job.owner_oid IS DISTINCT FROM caller_oid AND NOT ray._is_admin(caller_oid)) THEN
		RAISE EXCEPTION 'job % does not exist', _stop_job_impl.job_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'List your jobs with SELECT job_id, state FROM ray.jobs.';
	END IF;
	IF job.state IN ('SUCCEEDED', 'FAILED', 'STOPPED') THEN
		RAISE NOTICE 'job % has already finished: %', job.job_id, job.state;
		RETURN false;
	END IF;
	IF job.stop_requested_at IS NOT NULL THEN
		RAISE NOTICE 'job % is already being stopped', job.job_id;
		RETURN true;
	END IF;
	UPDATE ray.job j SET stop_requested_at = now(), stopped_by = caller
	WHERE j.job_id = job.job_id;
	IF job.state = 'QUEUED' THEN
		PERFORM ray._job_transition(job.job_id, 'STOPPED', format('stopped by %s', caller), caller);
	ELSE
		INSERT INTO ray.job_event (job_id, from_state, to_state, attempt, actor, message)
		VALUES (job.job_id, job.state, job.state, job.attempts, caller, 'stop requested');
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION ray._stop_job_impl(bigint) IS
'The work of ray.stop_job, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.stop_job(job_id bigint)
RETURNS boolean
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.stop_job(bigint) IS
'Stop a job: a queued one at once, a submitted one through Ray. Returns false if it had already finished.';

/*
 * The driver log of a job: the saved one once the job has ended, the live
 * one from Ray while it runs.
 */
CREATE OR REPLACE FUNCTION ray._job_logs_impl(job_id bigint)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_oid oid := ray._calling_role();
	job ray.job;
	saved text;
	conn record;
BEGIN
	IF _job_logs_impl.job_id IS NULL THEN
		RAISE EXCEPTION 'job id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO job FROM ray.job j WHERE j.job_id = _job_logs_impl.job_id;
	IF NOT FOUND OR (job.owner_oid IS DISTINCT FROM caller_oid AND NOT ray._is_admin(caller_oid)) THEN
		RAISE EXCEPTION 'job % does not exist', _job_logs_impl.job_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'List your jobs with SELECT job_id, state FROM ray.jobs.';
	END IF;
	SELECT l.log INTO saved FROM ray.job_log l
	WHERE l.job_id = job.job_id ORDER BY l.attempt DESC LIMIT 1;
	-- live while a run is in Ray, and for a run that just ended until the
	-- worker has saved its log; otherwise the saved log, if any
	IF job.ray_submission_id IS NULL
		OR (job.state NOT IN ('PENDING', 'RUNNING') AND (saved IS NOT NULL OR job.log_error IS NOT NULL)) THEN
		RETURN coalesce(saved, '');
	END IF;
	conn := ray._group_connection(job.resource_group);
	IF conn.url IS NULL THEN
		RETURN coalesce(saved, '');
	END IF;
	IF job.state IN ('PENDING', 'RUNNING') THEN
		-- NULL: Ray has no such run (any more)
		RETURN coalesce(ray._http_job_logs(conn.url, conn.token, conn.ca_file, job.ray_submission_id),
						saved, '');
	END IF;
	-- an ended run whose log is not saved yet: what Ray still has, or nothing
	BEGIN
		RETURN coalesce(ray._http_job_logs(conn.url, conn.token, conn.ca_file, job.ray_submission_id), '');
	EXCEPTION WHEN connection_failure OR protocol_violation THEN
		RETURN '';
	END;
END
$$;
COMMENT ON FUNCTION ray._job_logs_impl(bigint) IS
'The work of ray.job_logs, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.job_logs(job_id bigint)
RETURNS text
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.job_logs(bigint) IS
'The driver log of a job: saved when it ended, fetched live from Ray while it runs.';

/*
 * What in the calling transaction would keep the background worker from
 * acting on a job until the transaction ends, so that ray.wait_job there
 * would wait in vain: the job queued in it (the worker cannot see it), the
 * job's row or its resource group's row changed or locked in it in a mode
 * the worker's updates wait for (ray._row_held_here; the FOR KEY SHARE of
 * ray.submit_job's lookup is not one), or a lock on a catalog table that
 * the worker's writes conflict with (LOCK TABLE in SHARE mode or stronger).
 * NULL when nothing, and for a job that is not the caller's (an admin's:
 * any), whose existence it does not tell.  ray.wait_job asks it through
 * ray._wait_job_obstacle, which records the caller (pg_ray_api).
 */
CREATE OR REPLACE FUNCTION ray._wait_job_obstacle_impl(job_id bigint, OUT obstacle text, OUT object text)
RETURNS record
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT o.obstacle, o.object
	FROM ray.job j
	CROSS JOIN LATERAL (
		SELECT 'queued' AS obstacle, NULL::text AS object, 1 AS rank
		FROM ray.job_event e
		WHERE e.job_id = j.job_id AND e.from_state IS NULL
		  AND ray._row_held_here('ray.job_event', e.ctid) IS NOT NULL
		UNION ALL
		SELECT 'job ' || ray._row_held_here('ray.job', j.ctid), NULL, 2
		WHERE ray._row_held_here('ray.job', j.ctid) IS NOT NULL
		UNION ALL
		SELECT 'resource group ' || ray._row_held_here('ray.resource_group', g.ctid), g.name, 3
		FROM ray.resource_group g
		WHERE g.name = j.resource_group AND ray._row_held_here('ray.resource_group', g.ctid) IS NOT NULL
		UNION ALL
		SELECT 'table lock', format('%s (%s)', c.oid::regclass, l.mode), 4
		FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
		  AND c.relnamespace = 'ray'::regnamespace
		  AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) o
	WHERE j.job_id = _wait_job_obstacle_impl.job_id
	  AND (j.owner_oid = ray._calling_role() OR ray._is_admin(ray._calling_role()))
	ORDER BY o.rank, o.object
	LIMIT 1
$$;
COMMENT ON FUNCTION ray._wait_job_obstacle_impl(bigint) IS
'The work of ray._wait_job_obstacle, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray._wait_job_obstacle(job_id bigint, OUT obstacle text, OUT object text)
RETURNS record
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray._wait_job_obstacle(bigint) IS
'What in the calling transaction keeps the worker from acting on one of the caller''s jobs until it ends (for ray.wait_job), or NULL.';
