/*
 * sql/validation.sql
 *		The rules of what users write, as the functions of BEFORE
 *		triggers.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* ------------------------------------------------------------------------
 * Validation triggers: the rules, with messages a user can act on.
 * ------------------------------------------------------------------------
 */

/*
 * Options of a resource group.  Unknown keys are errors rather than being
 * ignored, so that a typo such as "ha ": true does not silently give a group
 * without high availability.
 */
CREATE OR REPLACE FUNCTION ray._check_group_options(options jsonb, provider text DEFAULT 'local')
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key text;
	known constant text[] := CASE provider
		WHEN 'external' THEN ARRAY['ca_file', 'client_address']
		ELSE ARRAY['ha', 'redis_url', 'idle_timeout_seconds', 'object_store_memory_mb'] END;
BEGIN
	IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'resource group options must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"ha": true, "idle_timeout_seconds": 120}.';
	END IF;
	FOR key IN SELECT jsonb_object_keys(options) LOOP
		IF NOT key = ANY (known) THEN
			RAISE EXCEPTION 'unknown resource group option "%"', key
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('Known options of the %s provider: %s.', provider, array_to_string(known, ', '));
		END IF;
	END LOOP;
	IF options ? 'ha' AND jsonb_typeof(options -> 'ha') <> 'boolean' THEN
		RAISE EXCEPTION 'resource group option "ha" must be a boolean'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF options ? 'redis_url' THEN
		IF jsonb_typeof(options -> 'redis_url') <> 'string'
			OR (options ->> 'redis_url') !~ '^rediss?://' THEN
			RAISE EXCEPTION 'resource group option "redis_url" must be a redis:// or rediss:// URL'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF NOT coalesce((options ->> 'ha')::boolean, false) THEN
			RAISE EXCEPTION 'resource group option "redis_url" requires "ha": true'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Redis holds the head''s state only for a highly available head.';
		END IF;
	END IF;
	IF options ? 'idle_timeout_seconds' AND NOT (
		jsonb_typeof(options -> 'idle_timeout_seconds') = 'number'
		AND (options ->> 'idle_timeout_seconds') ~ '^[0-9]+$'
		AND (options ->> 'idle_timeout_seconds')::numeric BETWEEN 10 AND 86400) THEN
		RAISE EXCEPTION 'resource group option "idle_timeout_seconds" must be a whole number from 10 to 86400'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF options ? 'object_store_memory_mb' AND NOT (
		jsonb_typeof(options -> 'object_store_memory_mb') = 'number'
		AND (options ->> 'object_store_memory_mb') ~ '^[0-9]+$'
		AND (options ->> 'object_store_memory_mb')::numeric BETWEEN 100 AND 1048576) THEN
		RAISE EXCEPTION 'resource group option "object_store_memory_mb" must be a whole number from 100 to 1048576'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF options ? 'ca_file' AND (jsonb_typeof(options -> 'ca_file') <> 'string'
								OR (options ->> 'ca_file') !~ '^/') THEN
		RAISE EXCEPTION 'resource group option "ca_file" must be an absolute path'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'It names a PEM file of CA certificates, on the database server, to verify the dashboard''s TLS certificate with.';
	END IF;
	IF options ? 'client_address' AND (jsonb_typeof(options -> 'client_address') <> 'string'
									   OR (options ->> 'client_address') !~ '^ray://[^/\s]+:[0-9]+$') THEN
		RAISE EXCEPTION 'resource group option "client_address" must look like ray://host:port'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_group_options(jsonb, text) IS
'Raise an error unless options are valid resource group options.';

/* Look up a node spec, with the error a user expects when it is missing. */
CREATE OR REPLACE FUNCTION ray._node_spec(spec text)
RETURNS ray.node_spec
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result ray.node_spec;
BEGIN
	IF spec IS NULL THEN
		RAISE EXCEPTION 'node spec must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO result FROM ray.node_spec WHERE name = spec;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'node spec "%" does not exist', spec
			USING ERRCODE = 'undefined_object',
				  HINT = 'List node specs with SELECT name, resource_type FROM ray.node_spec.';
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION ray._node_spec(text) IS
'The node spec of that name, or an error saying it does not exist.';

CREATE OR REPLACE FUNCTION ray._resource_group_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM ray._check_name('resource group', NEW.name);
	IF NEW.provider IS NULL OR NEW.provider NOT IN ('local', 'external') THEN
		RAISE EXCEPTION 'unknown provider "%"', NEW.provider
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Supported providers: local, external.';
	END IF;
	IF NEW.provider = 'external' THEN
		IF NEW.endpoint IS NULL THEN
			RAISE EXCEPTION 'an external resource group needs the URL of its Ray dashboard'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Register it with ray.register_cluster(name, dashboard_url, token).';
		END IF;
		IF NEW.head_spec IS NOT NULL THEN
			RAISE EXCEPTION 'an external resource group has no head spec'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Its nodes are managed outside pg_ray.';
		END IF;
		PERFORM ray._check_group_options(NEW.options, NEW.provider);
		RETURN NEW;
	END IF;
	IF (ray._node_spec(NEW.head_spec)).resource_type <> 'CPU' THEN
		RAISE EXCEPTION 'node spec "%" cannot be used for a head node', NEW.head_spec
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The head node schedules tasks and runs none, so it takes a CPU spec.',
				  HINT = 'Choose a spec with resource_type CPU from ray.node_spec.';
	END IF;
	PERFORM ray._check_group_options(NEW.options, NEW.provider);
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION ray._resource_group_validate() IS
'BEFORE trigger: the rules of a resource group''s desired spec.';

CREATE OR REPLACE FUNCTION ray._worker_group_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cap integer := current_setting('pg_ray.max_workers_per_group')::integer;
	spec ray.node_spec;
BEGIN
	PERFORM ray._check_name('worker group', NEW.name);
	IF (SELECT provider FROM ray.resource_group WHERE name = NEW.resource_group) = 'external' THEN
		RAISE EXCEPTION 'resource group "%" is an external cluster', NEW.resource_group
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = 'Its nodes are managed where the cluster runs, not by pg_ray.';
	END IF;
	IF NEW.resource_type IS NULL THEN
		RAISE EXCEPTION 'resource type must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'The resource type is CPU or GPU.';
	END IF;
	IF NEW.resource_type NOT IN ('CPU', 'GPU') THEN
		RAISE EXCEPTION 'invalid resource type "%"', NEW.resource_type
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The resource type is CPU or GPU.';
	END IF;
	spec := ray._node_spec(NEW.spec);
	IF spec.resource_type <> NEW.resource_type THEN
		RAISE EXCEPTION 'node spec "%" is a % spec and cannot be used for a % worker group',
			spec.name, spec.resource_type, NEW.resource_type
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('Choose a spec with resource_type %s from ray.node_spec.', NEW.resource_type);
	END IF;
	IF NEW.min_workers IS NULL OR NEW.max_workers IS NULL THEN
		RAISE EXCEPTION 'min_workers and max_workers must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF NEW.min_workers < 1 THEN
		RAISE EXCEPTION 'min_workers must be at least 1, not %', NEW.min_workers
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Every worker group keeps at least one worker running.';
	END IF;
	IF NEW.max_workers < NEW.min_workers THEN
		RAISE EXCEPTION 'max_workers (%) must not be less than min_workers (%)',
			NEW.max_workers, NEW.min_workers
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NEW.max_workers > cap
		AND (TG_OP = 'INSERT' OR NEW.max_workers IS DISTINCT FROM OLD.max_workers) THEN
		RAISE EXCEPTION 'max_workers must be at most %, not %', cap, NEW.max_workers
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A superuser can raise the limit with the setting pg_ray.max_workers_per_group.';
	END IF;
	IF NEW.disk_gb IS NULL OR NEW.disk_gb NOT BETWEEN 30 AND 2000 THEN
		RAISE EXCEPTION 'disk_gb must be between 30 and 2000, not %', coalesce(NEW.disk_gb::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Worker disks hold Ray logs, temporary data and object store spill; the default is 100.';
	END IF;
	IF NEW.gpu_distribution_unit IS NOT NULL THEN
		IF NEW.resource_type <> 'GPU' THEN
			RAISE EXCEPTION 'gpu_distribution_unit applies only to GPU worker groups'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Leave gpu_distribution_unit NULL for a CPU worker group.';
		END IF;
		IF NEW.gpu_distribution_unit <= 0 OR NEW.gpu_distribution_unit > 1 THEN
			RAISE EXCEPTION 'gpu_distribution_unit must be greater than 0 and at most 1, not %',
				NEW.gpu_distribution_unit
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'It is the share of a GPU each worker gets, such as 1.0/3.';
		END IF;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION ray._worker_group_validate() IS
'BEFORE trigger: the rules of a worker group''s desired spec.';

/*
 * runtime_env in the shapes Ray's runtime environment accepts.  Unknown keys
 * are refused here rather than at submission time inside Ray, where the job
 * would fail long after the user typed it.
 */
CREATE OR REPLACE FUNCTION ray._check_runtime_env(runtime_env jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key text;
	value jsonb;
	known constant text[] := ARRAY['working_dir', 'py_modules', 'py_executable', 'excludes',
		'pip', 'uv', 'conda', 'env_vars', 'config', 'container', 'image_uri', 'java_jars',
		'nsight', 'worker_process_setup_hook'];
	bad text := NULL;
BEGIN
	IF runtime_env IS NULL OR jsonb_typeof(runtime_env) <> 'object' THEN
		RAISE EXCEPTION 'runtime_env must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"pip": ["requests"], "env_vars": {"MODE": "nightly"}}.';
	END IF;
	FOR key, value IN SELECT * FROM jsonb_each(runtime_env) LOOP
		IF NOT key = ANY (known) THEN
			RAISE EXCEPTION 'unknown runtime_env field "%"', key
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Known fields: ' || array_to_string(known, ', ') || '.';
		END IF;
		bad := CASE
			WHEN key IN ('working_dir', 'py_executable', 'image_uri', 'worker_process_setup_hook')
				AND jsonb_typeof(value) <> 'string' THEN 'a string'
			WHEN key IN ('py_modules', 'excludes', 'java_jars')
				AND (jsonb_typeof(value) <> 'array' OR EXISTS (
					SELECT FROM jsonb_array_elements(value) e WHERE jsonb_typeof(e) <> 'string'))
				THEN 'an array of strings'
			WHEN key IN ('pip', 'uv')
				AND NOT (jsonb_typeof(value) IN ('string', 'object')
					OR (jsonb_typeof(value) = 'array' AND NOT EXISTS (
						SELECT FROM jsonb_array_elements(value) e WHERE jsonb_typeof(e) <> 'string')))
				THEN 'an array of package strings, a requirements file path or an object'
			WHEN key IN ('conda', 'nsight')
				AND jsonb_typeof(value) NOT IN ('string', 'object') THEN 'a string or an object'
			WHEN key IN ('config', 'container') AND jsonb_typeof(value) <> 'object' THEN 'an object'
			WHEN key = 'env_vars'
				AND (jsonb_typeof(value) <> 'object' OR EXISTS (
					SELECT FROM jsonb_each(value) e WHERE jsonb_typeof(e.value) <> 'string'))
				THEN 'an object whose values are strings'
			ELSE NULL
		END;
		IF bad IS NOT NULL THEN
			RAISE EXCEPTION 'runtime_env field "%" must be %', key, bad
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._check_runtime_env(jsonb) IS
'Raise an error unless runtime_env has the shape Ray accepts.';

/*
 * The resources an entrypoint asks for.  NaN and Infinity are refused by
 * name: they would pass a check for >= 0 (numeric's NaN sorts above every
 * number).
 */
CREATE OR REPLACE FUNCTION ray._check_entrypoint_amounts(num_cpus numeric, num_gpus numeric, memory bigint)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF num_cpus < 0 OR num_gpus < 0 OR memory < 0 OR num_cpus >= 'Infinity' OR num_gpus >= 'Infinity' THEN
		RAISE EXCEPTION 'entrypoint_num_cpus, entrypoint_num_gpus and entrypoint_memory must be finite and not negative'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_entrypoint_amounts(numeric, numeric, bigint) IS
'Raise an error unless the CPUs, GPUs and memory an entrypoint asks for are finite and not negative.';

CREATE OR REPLACE FUNCTION ray._job_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key text;
	value jsonb;
BEGIN
	-- No rule here may depend on other tables' rows: a restore loads ray.job
	-- before ray.resource_group, and a job outlives its group.  That the
	-- group exists is checked by the functions that submit (ray.submit_job,
	-- ray.batch_inference), which lock it while they do.
	IF NEW.entrypoint IS NULL OR NEW.entrypoint !~ '\S' THEN
		RAISE EXCEPTION 'entrypoint must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the shell command that starts the job, such as ''python score.py''.';
	END IF;
	PERFORM ray._check_runtime_env(NEW.runtime_env);
	IF NEW.metadata IS NULL OR jsonb_typeof(NEW.metadata) <> 'object' OR EXISTS (
		SELECT FROM jsonb_each(NEW.metadata) e WHERE jsonb_typeof(e.value) <> 'string') THEN
		RAISE EXCEPTION 'metadata must be a JSON object whose values are strings'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"team": "ads", "run": "nightly"}.';
	END IF;
	IF NEW.entrypoint_resources IS NULL OR jsonb_typeof(NEW.entrypoint_resources) <> 'object' THEN
		RAISE EXCEPTION 'entrypoint_resources must be a JSON object of resource names and amounts'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"accelerator_type:A10G": 1}.';
	END IF;
	FOR key, value IN SELECT * FROM jsonb_each(NEW.entrypoint_resources) LOOP
		IF key IN ('CPU', 'GPU', 'memory') THEN
			RAISE EXCEPTION 'entrypoint_resources must not name "%"', key
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use entrypoint_num_cpus, entrypoint_num_gpus or entrypoint_memory instead.';
		END IF;
		IF jsonb_typeof(value) <> 'number' OR value::text::numeric < 0 THEN
			RAISE EXCEPTION 'entrypoint_resources amount of "%" must be a non-negative number', key
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	PERFORM ray._check_entrypoint_amounts(NEW.entrypoint_num_cpus, NEW.entrypoint_num_gpus, NEW.entrypoint_memory);
	IF NEW.max_attempts IS NULL OR NEW.max_attempts NOT BETWEEN 1 AND 100 THEN
		RAISE EXCEPTION 'max_attempts must be between 1 and 100, not %', coalesce(NEW.max_attempts::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A job runs once unless it asks for more attempts.';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION ray._job_validate() IS
'BEFORE trigger: the rules of what a job asks for.';

/*
 * A node spec in use keeps its resource type: a head or worker group must
 * not silently turn into something it could not have been created as.
 */
CREATE OR REPLACE FUNCTION ray._node_spec_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	users text;
BEGIN
	IF NEW.resource_type IS DISTINCT FROM OLD.resource_type THEN
		SELECT string_agg(what, ', ' ORDER BY what) INTO users FROM (
			SELECT format('head of resource group %s', name) AS what
			FROM ray.resource_group WHERE head_spec = OLD.name
			UNION ALL
			SELECT format('worker group %s.%s', resource_group, name)
			FROM ray.worker_group WHERE spec = OLD.name) u;
		IF users IS NOT NULL THEN
			RAISE EXCEPTION 'node spec "%" is in use and cannot change its resource type', OLD.name
				USING ERRCODE = 'object_in_use',
					  DETAIL = format('It is used by: %s.', users),
					  HINT = 'Create a new spec and move the groups to it.';
		END IF;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION ray._node_spec_validate() IS
'BEFORE trigger: a node spec in use keeps its resource type.';
