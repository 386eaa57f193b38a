/*
 * pg_ray--0.1.sql
 *		The catalog and SQL API of pg_ray.
 *
 * Desired state (what users ask for) and observed state (what the background
 * worker saw) live in separate columns of the same rows, as in Kubernetes:
 * users change desired state through the functions below; only the worker
 * writes observed state.  Every rule a user can break is checked by a BEFORE
 * trigger that answers in PostgreSQL's message style, for the API functions
 * and direct INSERTs alike; CHECK constraints hold the same rules once more,
 * so they survive even a restore that runs without triggers.
 *
 * Copyright (c) 2026, pg_ray developers
 */

\echo Use "CREATE EXTENSION pg_ray" to load this file. \quit

/*
 * The background worker runs in one database, so the extension lives there
 * and nowhere else.
 */
DO $guard$
DECLARE
	worker_db text := current_setting('pg_ray.database_name', true);
BEGIN
	IF worker_db IS NULL THEN
		RAISE EXCEPTION 'pg_ray must be loaded via shared_preload_libraries'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Add pg_ray to shared_preload_libraries in postgresql.conf and restart the server.';
	END IF;
	IF current_database() <> worker_db THEN
		RAISE EXCEPTION 'pg_ray can only be created in database "%"', worker_db
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'The pg_ray background worker runs in the database named by pg_ray.database_name.',
				  HINT = format('Connect to database "%s", or set pg_ray.database_name to "%s" and restart the server.',
								worker_db, current_database());
	END IF;
END
$guard$;

/*
 * Roles.  ray_admin manages resource groups and sees every job; ray_user
 * submits jobs on the groups it was granted.  Roles are cluster-wide, so a
 * second database's extension (or a re-creation) finds them already there.
 */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ray_user') THEN
		CREATE ROLE ray_user NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ray_admin') THEN
		CREATE ROLE ray_admin NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('ray_admin', 'ray_user', 'MEMBER') THEN
		GRANT ray_user TO ray_admin;
	END IF;
	-- every batch inference run's login role, for pg_hba.conf (+ray_run)
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ray_run') THEN
		CREATE ROLE ray_run NOLOGIN;
	END IF;
END
$roles$;

GRANT USAGE ON SCHEMA ray TO ray_user;

/* ------------------------------------------------------------------------
 * C functions
 * ------------------------------------------------------------------------
 */

CREATE FUNCTION ray._calling_role()
RETURNS oid
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'pg_ray_calling_role';
COMMENT ON FUNCTION ray._calling_role() IS
'The role the caller acts as, even inside a SECURITY DEFINER function.';

CREATE FUNCTION ray._wakeup_trigger()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_wakeup_trigger';
COMMENT ON FUNCTION ray._wakeup_trigger() IS
'Statement trigger: wake the pg_ray worker when this transaction commits.';

CREATE FUNCTION ray.worker_status(
	OUT running boolean,
	OUT pid integer,
	OUT started_at timestamptz,
	OUT last_wakeup_at timestamptz,
	OUT last_round_at timestamptz,
	OUT wakeup_requests bigint,
	OUT latch_wakeups bigint,
	OUT timeout_wakeups bigint,
	OUT rounds bigint,
	OUT round_errors bigint,
	OUT last_error text)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_worker_status';
COMMENT ON FUNCTION ray.worker_status() IS
'Whether the pg_ray background worker runs, and what it has done since it started.';

CREATE FUNCTION ray._check_dashboard_url(url text)
RETURNS text
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'pg_ray_check_dashboard_url';
COMMENT ON FUNCTION ray._check_dashboard_url(text) IS
'The dashboard URL normalized, or an error: http(s) only, plain http only to a loopback address.';

CREATE FUNCTION ray._http_ray_version(url text, token text, ca_file text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_http_ray_version';
COMMENT ON FUNCTION ray._http_ray_version(text, text, text) IS
'GET /api/version of a Ray dashboard, in this backend: the Ray version, or an error saying what was tried.';

CREATE FUNCTION ray._http_job_logs(url text, token text, ca_file text, submission_id text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_http_job_logs';
COMMENT ON FUNCTION ray._http_job_logs(text, text, text, text) IS
'GET /api/jobs/{id}/logs of a Ray dashboard, in this backend, bounded by pg_ray.max_log_bytes.';

CREATE FUNCTION ray._http_cluster_status(url text, token text, ca_file text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_http_cluster_status';
COMMENT ON FUNCTION ray._http_cluster_status(text, text, text) IS
'GET /api/cluster_status?format=1 of a Ray dashboard, in this backend: the JSON text of the autoscaler''s report.';

CREATE FUNCTION ray.zip_directory(path text)
RETURNS bytea
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_zip_directory';
COMMENT ON FUNCTION ray.zip_directory(text) IS
'Zip a directory on the database server, files at the root, for submit_job''s working_dir. Superusers and members of pg_read_server_files only.';

CREATE FUNCTION ray._describe_query(query text)
RETURNS TABLE (column_name text, data_type text)
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'pg_ray_describe_query';
COMMENT ON FUNCTION ray._describe_query(text) IS
'The columns (name, type) a source query yields, without running it; an error unless it is one SELECT.';

CREATE FUNCTION ray._runner_package(credentials text DEFAULT NULL)
RETURNS bytea
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_runner_package';
COMMENT ON FUNCTION ray._runner_package(text) IS
'The batch inference runner installed with the extension, zipped as the working directory of a run; with a run''s credentials (JSON) as pg_ray_run_credentials.json.';

CREATE FUNCTION ray.wait_job(job_id bigint, timeout interval DEFAULT '1 hour')
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_wait_job';
COMMENT ON FUNCTION ray.wait_job(bigint, interval) IS
'Wait until a job has finished or the timeout has passed, and return its state; reports state changes as NOTICEs. Cancel with the usual query cancel.';

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------
 */

CREATE FUNCTION ray._caller()
RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT rolname FROM pg_roles WHERE oid = ray._calling_role() $$;
COMMENT ON FUNCTION ray._caller() IS
'The name of the role the caller acts as (see ray._calling_role).';

CREATE FUNCTION ray._is_admin(role oid)
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
CREATE FUNCTION ray._check_name(kind text, value text)
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

/*
 * One row naming this installation.  It prefixes Ray submission ids, so two
 * databases that share a Ray cluster can never mistake each other's runs for
 * their own.
 */
-- not dumped: a restored database is a new installation, and the submission
-- ids already made are kept on their jobs
CREATE TABLE ray.installation (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	id text NOT NULL DEFAULT substr(replace(gen_random_uuid()::text, '-', ''), 1, 10)
);
INSERT INTO ray.installation DEFAULT VALUES;
COMMENT ON TABLE ray.installation IS
'The id of this pg_ray installation, which prefixes the Ray submission ids it makes.';

/* ------------------------------------------------------------------------
 * Node specs: the sizes a head or worker node can have.  Admin-editable.
 * ------------------------------------------------------------------------
 */

CREATE TABLE ray.node_spec (
	name text PRIMARY KEY
		CONSTRAINT node_spec_name_check CHECK (name ~ '^[a-z][a-z0-9._-]{0,47}$'),
	resource_type text NOT NULL
		CONSTRAINT node_spec_resource_type_check CHECK (resource_type IN ('CPU', 'GPU')),
	num_cpus integer NOT NULL CONSTRAINT node_spec_num_cpus_check CHECK (num_cpus > 0),
	memory_mb bigint NOT NULL CONSTRAINT node_spec_memory_mb_check CHECK (memory_mb >= 512),
	num_gpus numeric NOT NULL DEFAULT 0 CONSTRAINT node_spec_num_gpus_check CHECK (num_gpus >= 0),
	gpu_model text,
	cpu_units numeric NOT NULL CONSTRAINT node_spec_cpu_units_check CHECK (cpu_units > 0),
	description text,
	builtin boolean NOT NULL DEFAULT false,
	CONSTRAINT node_spec_gpus_match_type CHECK ((resource_type = 'GPU') = (num_gpus > 0))
);
COMMENT ON TABLE ray.node_spec IS
'Sizes of Ray nodes: CPUs, memory and GPUs, and the CPU units a node is metered at.';

/* ------------------------------------------------------------------------
 * Resource groups and their worker groups.
 * ------------------------------------------------------------------------
 */

CREATE TABLE ray.resource_group (
	name text PRIMARY KEY
		CONSTRAINT resource_group_name_check CHECK (name ~ '^[a-z][a-z0-9_-]{0,47}$'),
	provider text NOT NULL DEFAULT 'local'
		CONSTRAINT resource_group_provider_check CHECK (provider IN ('local', 'external')),
	head_spec text REFERENCES ray.node_spec (name) ON UPDATE CASCADE,
	endpoint text,				-- external: the dashboard URL it was registered with
	options jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT resource_group_options_check CHECK (jsonb_typeof(options) = 'object'),
	owner name NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	generation bigint NOT NULL DEFAULT 1 CHECK (generation >= 1),
	delete_requested_at timestamptz,
	-- observed state, written by the background worker only
	state text NOT NULL DEFAULT 'CREATING'
		CONSTRAINT resource_group_state_check
		CHECK (state IN ('CREATING', 'READY', 'UPDATING', 'DEGRADED', 'DELETING', 'FAILED')),
	state_changed_at timestamptz NOT NULL DEFAULT now(),
	observed_generation bigint NOT NULL DEFAULT 0,
	dashboard_url text,
	client_address text,
	ray_version text,
	last_error text,
	unreachable_since timestamptz,
	CONSTRAINT resource_group_head_spec_check CHECK (provider = 'external' OR head_spec IS NOT NULL),
	CONSTRAINT resource_group_endpoint_check CHECK ((provider = 'external') = (endpoint IS NOT NULL))
);
COMMENT ON TABLE ray.resource_group IS
'Ray clusters: desired spec (provider, head spec, options, generation) and observed state.';

CREATE TABLE ray.resource_group_secret (
	resource_group text PRIMARY KEY
		REFERENCES ray.resource_group (name) ON UPDATE CASCADE ON DELETE CASCADE,
	token text NOT NULL
);
COMMENT ON TABLE ray.resource_group_secret IS
'Bearer tokens of Ray dashboards; readable by the extension owner and the background worker only.';

CREATE TABLE ray.worker_group (
	resource_group text NOT NULL
		REFERENCES ray.resource_group (name) ON UPDATE CASCADE ON DELETE CASCADE,
	name text NOT NULL
		CONSTRAINT worker_group_name_check CHECK (name ~ '^[a-z][a-z0-9_-]{0,47}$'),
	resource_type text NOT NULL
		CONSTRAINT worker_group_resource_type_check CHECK (resource_type IN ('CPU', 'GPU')),
	spec text NOT NULL REFERENCES ray.node_spec (name) ON UPDATE CASCADE,
	min_workers integer NOT NULL
		CONSTRAINT worker_group_min_workers_check CHECK (min_workers >= 1),
	max_workers integer NOT NULL,
	disk_gb integer NOT NULL DEFAULT 100
		CONSTRAINT worker_group_disk_gb_check CHECK (disk_gb BETWEEN 30 AND 2000),
	gpu_distribution_unit numeric
		CONSTRAINT worker_group_gpu_distribution_unit_check
		CHECK (gpu_distribution_unit > 0 AND gpu_distribution_unit <= 1),
	created_at timestamptz NOT NULL DEFAULT now(),
	-- live_workers is observed (the worker); desired_workers is the scaler's
	-- target, started at min_workers by the API and moved by the autoscaler
	live_workers integer NOT NULL DEFAULT 0,
	desired_workers integer NOT NULL DEFAULT 0,
	last_scaled_at timestamptz,	-- the autoscaler's latest step, for its cool-down
	PRIMARY KEY (resource_group, name),
	CONSTRAINT worker_group_min_le_max CHECK (min_workers <= max_workers),
	CONSTRAINT worker_group_gpu_unit_needs_gpu
		CHECK (gpu_distribution_unit IS NULL OR resource_type = 'GPU')
);
COMMENT ON TABLE ray.worker_group IS
'Worker groups of a resource group: CPU or GPU nodes of one spec, scaled between min_workers and max_workers.';

CREATE TABLE ray.resource_group_grant (
	resource_group text NOT NULL
		REFERENCES ray.resource_group (name) ON UPDATE CASCADE ON DELETE CASCADE,
	grantee name NOT NULL,		-- a role name, or 'public'
	granted_by name NOT NULL,
	granted_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (resource_group, grantee)
);
COMMENT ON TABLE ray.resource_group_grant IS
'Which roles may submit jobs to which resource group (grantee ''public'' is everyone).';

CREATE TABLE ray.resource_group_event (
	event_id bigint PRIMARY KEY,
	resource_group text NOT NULL,	-- no foreign key: history outlives the group
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	from_state text,
	to_state text NOT NULL,
	generation bigint NOT NULL,
	actor name NOT NULL,
	message text
);
CREATE SEQUENCE ray.resource_group_event_id_seq OWNED BY ray.resource_group_event.event_id;
ALTER TABLE ray.resource_group_event
	ALTER COLUMN event_id SET DEFAULT nextval('ray.resource_group_event_id_seq');
CREATE INDEX ON ray.resource_group_event (resource_group, event_id);
COMMENT ON TABLE ray.resource_group_event IS
'Append-only history of resource group changes and state transitions.';

/* ------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------
 */

CREATE SEQUENCE ray.job_id_seq;

CREATE TABLE ray.job (
	job_id bigint PRIMARY KEY DEFAULT nextval('ray.job_id_seq'),
	owner name NOT NULL,
	resource_group text NOT NULL,	-- no foreign key: history outlives the group
	kind text NOT NULL DEFAULT 'script'
		CONSTRAINT job_kind_check CHECK (kind IN ('script', 'batch_inference')),
	entrypoint text NOT NULL CONSTRAINT job_entrypoint_check CHECK (entrypoint ~ '\S'),
	runtime_env jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT job_runtime_env_check CHECK (jsonb_typeof(runtime_env) = 'object'),
	metadata jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT job_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
	entrypoint_num_cpus numeric CONSTRAINT job_entrypoint_num_cpus_check CHECK (entrypoint_num_cpus >= 0),
	entrypoint_num_gpus numeric CONSTRAINT job_entrypoint_num_gpus_check CHECK (entrypoint_num_gpus >= 0),
	entrypoint_memory bigint CONSTRAINT job_entrypoint_memory_check CHECK (entrypoint_memory >= 0),
	entrypoint_resources jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT job_entrypoint_resources_check CHECK (jsonb_typeof(entrypoint_resources) = 'object'),
	max_attempts integer NOT NULL DEFAULT 1
		CONSTRAINT job_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 100),
	retry_on_failure boolean NOT NULL DEFAULT false,
	-- a stop request is desired state, written by ray.stop_job
	stop_requested_at timestamptz,
	stopped_by name,
	-- observed state, written by the background worker and the state machine
	state text NOT NULL DEFAULT 'QUEUED'
		CONSTRAINT job_state_check CHECK (state IN ('QUEUED', 'SUBMITTING', 'PENDING', 'RUNNING',
													'PUBLISHING', 'SUCCEEDED', 'FAILED', 'STOPPED')),
	attempts integer NOT NULL DEFAULT 0,
	ray_submission_id text,
	ray_job_id text,
	ray_status text,
	last_seen_at timestamptz,
	stop_sent_at timestamptz,
	log_error text,
	submitted_at timestamptz NOT NULL DEFAULT now(),
	state_changed_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	finished_at timestamptz,
	message text,
	error_type text,
	driver_exit_code integer,
	rows_processed bigint,
	rows_total bigint,
	target_table text,
	rows_written bigint,
	CONSTRAINT job_attempts_check CHECK (attempts BETWEEN 0 AND max_attempts),
	CONSTRAINT job_finished_iff_terminal
		CHECK ((state IN ('SUCCEEDED', 'FAILED', 'STOPPED')) = (finished_at IS NOT NULL))
);
COMMENT ON TABLE ray.job IS
'Ray jobs: what was asked (entrypoint, runtime_env, resources) and what happened (state, attempts, times).';
CREATE INDEX job_active_idx ON ray.job (state)
	WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED');
CREATE INDEX job_owner_idx ON ray.job (owner, job_id);
CREATE INDEX job_resource_group_idx ON ray.job (resource_group);

/*
 * The working directory a job was submitted with, as the zip Ray's package
 * protocol takes.  Its name is its content hash, because Ray's nodes cache
 * unpacked packages by name.
 */
CREATE TABLE ray.job_package (
	job_id bigint PRIMARY KEY REFERENCES ray.job (job_id) ON DELETE CASCADE,
	package text NOT NULL CONSTRAINT job_package_name_check CHECK (package ~ '^_ray_pkg_[0-9a-f]{40}\.zip$'),
	content bytea NOT NULL
);
COMMENT ON TABLE ray.job_package IS
'Zipped working directories of jobs, uploaded to the cluster as gcs://<package> when the job is submitted.';

CREATE SEQUENCE ray.job_event_id_seq;

CREATE TABLE ray.job_event (
	event_id bigint PRIMARY KEY DEFAULT nextval('ray.job_event_id_seq'),
	job_id bigint NOT NULL REFERENCES ray.job (job_id) ON DELETE CASCADE,
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	from_state text,
	to_state text NOT NULL,
	attempt integer NOT NULL,
	actor name NOT NULL,
	message text
);
CREATE INDEX ON ray.job_event (job_id, event_id);
COMMENT ON TABLE ray.job_event IS
'Append-only history of every job state change: who, when, from what, to what, why.';

CREATE TABLE ray.job_log (
	job_id bigint NOT NULL REFERENCES ray.job (job_id) ON DELETE CASCADE,
	attempt integer NOT NULL,
	saved_at timestamptz NOT NULL DEFAULT now(),
	truncated boolean NOT NULL DEFAULT false,
	log text NOT NULL,
	PRIMARY KEY (job_id, attempt)
);
COMMENT ON TABLE ray.job_log IS
'Driver logs of finished attempts, saved so that they outlive the Ray cluster.';

/* ------------------------------------------------------------------------
 * Validation triggers: the rules, with messages a user can act on.
 * ------------------------------------------------------------------------
 */

/*
 * Options of a resource group.  Unknown keys are errors rather than being
 * ignored, so that a typo such as "ha ": true does not silently give a group
 * without high availability.
 */
CREATE FUNCTION ray._check_group_options(options jsonb, provider text DEFAULT 'local')
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
CREATE FUNCTION ray._node_spec(spec text)
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

CREATE FUNCTION ray._resource_group_validate()
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

CREATE TRIGGER resource_group_validate
	BEFORE INSERT OR UPDATE OF name, provider, head_spec, endpoint, options ON ray.resource_group
	FOR EACH ROW EXECUTE FUNCTION ray._resource_group_validate();

CREATE FUNCTION ray._worker_group_validate()
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

CREATE TRIGGER worker_group_validate
	BEFORE INSERT OR UPDATE OF name, resource_type, spec, min_workers, max_workers,
		disk_gb, gpu_distribution_unit ON ray.worker_group
	FOR EACH ROW EXECUTE FUNCTION ray._worker_group_validate();

/*
 * runtime_env in the shapes Ray's runtime environment accepts.  Unknown keys
 * are refused here rather than at submission time inside Ray, where the job
 * would fail long after the user typed it.
 */
CREATE FUNCTION ray._check_runtime_env(runtime_env jsonb)
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

CREATE FUNCTION ray._job_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key text;
	value jsonb;
BEGIN
	IF TG_OP = 'INSERT' AND NOT EXISTS (
		SELECT FROM ray.resource_group WHERE name = NEW.resource_group) THEN
		RAISE EXCEPTION 'resource group "%" does not exist', NEW.resource_group
			USING ERRCODE = 'undefined_object',
				  HINT = 'List resource groups with SELECT name FROM ray.resource_groups.';
	END IF;
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
	IF NEW.entrypoint_num_cpus < 0 OR NEW.entrypoint_num_gpus < 0 OR NEW.entrypoint_memory < 0 THEN
		RAISE EXCEPTION 'entrypoint_num_cpus, entrypoint_num_gpus and entrypoint_memory must not be negative'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
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

CREATE TRIGGER job_validate
	BEFORE INSERT OR UPDATE OF resource_group, entrypoint, runtime_env, metadata,
		entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory,
		entrypoint_resources, max_attempts ON ray.job
	FOR EACH ROW EXECUTE FUNCTION ray._job_validate();

/*
 * A node spec in use keeps its resource type: a head or worker group must
 * not silently turn into something it could not have been created as.
 */
CREATE FUNCTION ray._node_spec_validate()
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

CREATE TRIGGER node_spec_validate
	BEFORE UPDATE OF resource_type ON ray.node_spec
	FOR EACH ROW EXECUTE FUNCTION ray._node_spec_validate();

/*
 * Wake the worker at commit whenever desired state changes.  The node spec
 * table has the trigger too: its seed rows below are then what wakes a worker
 * that waits for the extension to be created.
 */
CREATE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.node_spec
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();
CREATE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.resource_group
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();
CREATE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.worker_group
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();
-- not for the progress a run reports, which asks nothing of the worker
CREATE TRIGGER wake_worker AFTER INSERT OR UPDATE OF state, stop_requested_at OR DELETE ON ray.job
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();

INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, num_gpus, gpu_model, cpu_units, description, builtin)
VALUES
	('small', 'CPU', 1, 4096, 0, NULL, 1, '1 CPU, 4 GiB', true),
	('m.xlarge', 'CPU', 4, 32768, 0, NULL, 4, '4 CPUs, 32 GiB', true),
	('m.2xlarge', 'CPU', 8, 65536, 0, NULL, 8, '8 CPUs, 64 GiB', true),
	('gpu.small', 'GPU', 4, 16384, 1, 'any', 4, '4 CPUs, 16 GiB, 1 GPU', true);

/* ------------------------------------------------------------------------
 * State machine: the one way states change, each change with its event.
 * ------------------------------------------------------------------------
 */

/*
 * Move a job to a new state and append the event in the same transaction.
 * Illegal transitions are internal errors: the callers (API functions and
 * the worker) decide what is legal for a user before they get here.
 */
CREATE FUNCTION ray._job_transition(id bigint, to_state text, why text, actor name)
RETURNS ray.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job;
	allowed constant jsonb := '{
		"QUEUED":     ["SUBMITTING", "STOPPED", "FAILED"],
		"SUBMITTING": ["QUEUED", "SUBMITTING", "PENDING", "RUNNING", "PUBLISHING", "SUCCEEDED", "FAILED", "STOPPED"],
		"PENDING":    ["QUEUED", "RUNNING", "PUBLISHING", "SUCCEEDED", "FAILED", "STOPPED"],
		"RUNNING":    ["QUEUED", "PUBLISHING", "SUCCEEDED", "FAILED", "STOPPED"],
		"PUBLISHING": ["SUCCEEDED", "FAILED", "STOPPED"],
		"SUCCEEDED":  [],
		"FAILED":     [],
		"STOPPED":    []
	}';
	terminal boolean := to_state IN ('SUCCEEDED', 'FAILED', 'STOPPED');
	previous text;
BEGIN
	SELECT * INTO job FROM ray.job WHERE job_id = id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job % does not exist', id USING ERRCODE = 'undefined_object';
	END IF;
	previous := job.state;
	IF NOT (allowed -> job.state) ? to_state THEN
		RAISE EXCEPTION 'job % cannot go from % to %', id, job.state, to_state
			USING ERRCODE = 'internal_error';
	END IF;
	UPDATE ray.job SET
		state = to_state,
		state_changed_at = clock_timestamp(),
		message = why,
		started_at = CASE WHEN to_state = 'RUNNING' THEN coalesce(started_at, clock_timestamp())
						  ELSE started_at END,
		finished_at = CASE WHEN terminal THEN clock_timestamp() END
	WHERE job_id = id
	RETURNING * INTO job;
	INSERT INTO ray.job_event (job_id, from_state, to_state, attempt, actor, message)
	VALUES (id, previous, to_state, job.attempts, actor, why);
	-- an attempt that ends takes its run's role and staging table with it
	IF job.kind = 'batch_inference' AND (terminal OR to_state = 'QUEUED') THEN
		PERFORM ray._end_batch_attempt(id);
	END IF;
	RETURN job;
END
$$;
COMMENT ON FUNCTION ray._job_transition(bigint, text, text, name) IS
'Move a job to a state and record the event; the only writer of ray.job.state.';

/* Record a resource group's state change together with its event. */
CREATE FUNCTION ray._group_transition(group_name text, to_state text, why text, actor name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	before text;
	gen bigint;
BEGIN
	SELECT state, generation INTO before, gen
	FROM ray.resource_group WHERE name = group_name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'resource group "%" does not exist', group_name
			USING ERRCODE = 'undefined_object';
	END IF;
	UPDATE ray.resource_group
	SET state = to_state, state_changed_at = clock_timestamp(), last_error = NULL
	WHERE name = group_name AND state IS DISTINCT FROM to_state;
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	VALUES (group_name, before, to_state, gen, actor, why);
END
$$;
COMMENT ON FUNCTION ray._group_transition(text, text, text, name) IS
'Record a resource group''s state change and its event; the only writer of ray.resource_group.state.';

/* ------------------------------------------------------------------------
 * Lookups and guards shared by the API functions
 * ------------------------------------------------------------------------
 */

/* The resource group of that name, or the error a user expects. */
CREATE FUNCTION ray._resource_group(group_name text, lock_mode text DEFAULT 'update')
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
	-- Changes lock the group FOR UPDATE and submissions FOR SHARE, so a job
	-- cannot slip into a group while it is being dropped.
	IF lock_mode = 'update' THEN
		SELECT * INTO result FROM ray.resource_group WHERE name = group_name FOR UPDATE;
	ELSIF lock_mode = 'share' THEN
		SELECT * INTO result FROM ray.resource_group WHERE name = group_name FOR SHARE;
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
'The resource group of that name, locked FOR UPDATE, FOR SHARE or not at all (lock_mode update, share, none), or an error if it does not exist or is being dropped.';

/* Whether a role may submit jobs to a resource group. */
CREATE FUNCTION ray._can_use(group_name text, role oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._is_admin(role) OR EXISTS (
		SELECT FROM ray.resource_group_grant g
		LEFT JOIN pg_roles r ON r.rolname = g.grantee
		WHERE g.resource_group = group_name
		  AND (g.grantee = 'public' OR (r.oid IS NOT NULL AND pg_has_role(role, r.oid, 'USAGE'))))
$$;
COMMENT ON FUNCTION ray._can_use(text, oid) IS
'True if the role is an admin, or was granted usage of the resource group directly, through a role it has, or through PUBLIC.';

/*
 * Refuse a change that would interrupt jobs, unless forced.  "Interrupt"
 * follows the managed service's documented effects: restarted or deleted
 * nodes take their drivers, tasks and object store data with them.
 */
CREATE FUNCTION ray._guard_interruption(group_name text, effect text, force boolean,
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
				  HINT = 'Wait for them to finish, stop them with ray.stop_job(), or pass force => true to interrupt them.';
	END IF;
	RAISE NOTICE '% interrupts %', effect,
		CASE WHEN cardinality(ids) = 1 THEN 'job ' ELSE 'jobs ' END || listed;
	RETURN ids;
END
$$;
COMMENT ON FUNCTION ray._guard_interruption(text, text, boolean, boolean) IS
'Raise an error listing the jobs a change would interrupt, unless force is true; returns their ids.';

/* Record a change of desired spec and bump the generation the worker follows. */
CREATE FUNCTION ray._spec_changed(group_name text, why text)
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

/* ------------------------------------------------------------------------
 * Resource group API (ray_admin)
 * ------------------------------------------------------------------------
 */

CREATE FUNCTION ray.create_resource_group(
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
	PERFORM ray._check_name('resource group', create_resource_group.name);
	IF EXISTS (SELECT FROM ray.resource_group g WHERE g.name = create_resource_group.name
			   AND g.delete_requested_at IS NOT NULL) THEN
		RAISE EXCEPTION 'resource group "%" is being dropped', create_resource_group.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Create it again once it is gone from ray.resource_groups.';
	END IF;
	IF EXISTS (SELECT FROM ray.resource_group g WHERE g.name = create_resource_group.name) THEN
		RAISE EXCEPTION 'resource group "%" already exists', create_resource_group.name
			USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO ray.resource_group (name, provider, head_spec, options, owner)
	VALUES (create_resource_group.name, create_resource_group.provider,
			create_resource_group.head_spec, coalesce(create_resource_group.options, '{}'), caller);
	-- a local cluster gets a token of its own: 244 random bits
	IF create_resource_group.provider = 'local' THEN
		INSERT INTO ray.resource_group_secret (resource_group, token)
		VALUES (create_resource_group.name,
				replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
	END IF;
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	VALUES (create_resource_group.name, NULL, 'CREATING', 1, caller, 'resource group created');
	RETURN create_resource_group.name;
END
$$;
COMMENT ON FUNCTION ray.create_resource_group(text, text, text, jsonb) IS
'Create a Ray resource group: a head node of head_spec run by provider; add workers with ray.add_worker_group.';

CREATE FUNCTION ray.alter_resource_group(
	name text,
	head_spec text DEFAULT NULL,
	options jsonb DEFAULT NULL,
	force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(alter_resource_group.name);
	new_head text := coalesce(alter_resource_group.head_spec, rg.head_spec);
	new_options jsonb := rg.options;
	changes text[] := '{}';
BEGIN
	IF alter_resource_group.options IS NOT NULL THEN
		IF jsonb_typeof(alter_resource_group.options) <> 'object' THEN
			PERFORM ray._check_group_options(alter_resource_group.options);
		END IF;
		-- keys given as null are removed; the others are set
		new_options := jsonb_strip_nulls(rg.options || alter_resource_group.options);
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
COMMENT ON FUNCTION ray.alter_resource_group(text, text, jsonb, boolean) IS
'Change a resource group''s head spec or options (merged; a null value removes a key). Head restarts are refused while jobs run unless force.';

CREATE FUNCTION ray.drop_resource_group(name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(drop_resource_group.name);
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
COMMENT ON FUNCTION ray.drop_resource_group(text, boolean) IS
'Drop a resource group: the worker stops its nodes and removes it. Refused while it has unfinished jobs unless force, which stops them.';

CREATE FUNCTION ray.add_worker_group(
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
	rg ray.resource_group := ray._resource_group(add_worker_group.resource_group);
BEGIN
	PERFORM ray._check_name('worker group', add_worker_group.name);
	IF EXISTS (SELECT FROM ray.worker_group w
			   WHERE w.resource_group = rg.name AND w.name = add_worker_group.name) THEN
		RAISE EXCEPTION 'worker group "%" already exists in resource group "%"',
			add_worker_group.name, rg.name
			USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO ray.worker_group (resource_group, name, resource_type, spec, min_workers,
								  max_workers, disk_gb, gpu_distribution_unit, desired_workers)
	VALUES (rg.name, add_worker_group.name, upper(add_worker_group.resource_type),
			add_worker_group.spec, add_worker_group.min_workers, add_worker_group.max_workers,
			add_worker_group.disk_gb, add_worker_group.gpu_distribution_unit,
			coalesce(add_worker_group.min_workers, 0));
	PERFORM ray._spec_changed(rg.name, format('worker group %s added', add_worker_group.name));
END
$$;
COMMENT ON FUNCTION ray.add_worker_group(text, text, text, text, integer, integer, integer, numeric) IS
'Add a worker group of CPU or GPU nodes of one spec, scaled between min_workers and max_workers.';

CREATE FUNCTION ray._worker_group(group_name text, worker_group_name text)
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

CREATE FUNCTION ray.alter_worker_group(
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
	wg ray.worker_group := ray._worker_group(alter_worker_group.resource_group, alter_worker_group.name);
	new ray.worker_group := wg;
	restarts boolean;
	deleted integer;
BEGIN
	new.spec := coalesce(alter_worker_group.spec, wg.spec);
	new.resource_type := coalesce(upper(alter_worker_group.resource_type), wg.resource_type);
	new.min_workers := coalesce(alter_worker_group.min_workers, wg.min_workers);
	new.max_workers := coalesce(alter_worker_group.max_workers, wg.max_workers);
	new.disk_gb := coalesce(alter_worker_group.disk_gb, wg.disk_gb);
	new.gpu_distribution_unit := CASE
		WHEN alter_worker_group.gpu_distribution_unit IS NOT NULL THEN alter_worker_group.gpu_distribution_unit
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
COMMENT ON FUNCTION ray.alter_worker_group(text, text, text, text, integer, integer, integer, numeric, boolean) IS
'Change a worker group. Restarts (spec, type, disk, GPU unit) and node deletions are refused while jobs run unless force.';

CREATE FUNCTION ray.drop_worker_group(resource_group text, name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	wg ray.worker_group := ray._worker_group(drop_worker_group.resource_group, drop_worker_group.name);
BEGIN
	PERFORM ray._guard_interruption(wg.resource_group,
		format('dropping worker group "%s"', wg.name), force);
	RAISE NOTICE 'dropping worker group "%" deletes its worker nodes', wg.name;
	DELETE FROM ray.worker_group w
	WHERE w.resource_group = wg.resource_group AND w.name = wg.name;
	PERFORM ray._spec_changed(wg.resource_group, format('worker group %s dropped', wg.name));
END
$$;
COMMENT ON FUNCTION ray.drop_worker_group(text, text, boolean) IS
'Drop a worker group and delete its nodes. Refused while jobs run unless force.';

CREATE FUNCTION ray.grant_usage(resource_group text, role name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(grant_usage.resource_group, 'none');
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF role <> 'public' AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role) THEN
		RAISE EXCEPTION 'role "%" does not exist', role
			USING ERRCODE = 'undefined_object',
				  HINT = 'Name an existing role, or ''public'' for every role.';
	END IF;
	INSERT INTO ray.resource_group_grant (resource_group, grantee, granted_by)
	VALUES (rg.name, role, ray._caller())
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RAISE NOTICE 'role "%" can already use resource group "%"', role, rg.name;
	END IF;
END
$$;
COMMENT ON FUNCTION ray.grant_usage(text, name) IS
'Let a role (and its members), or ''public'', submit jobs to a resource group.';

CREATE FUNCTION ray.revoke_usage(resource_group text, role name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(revoke_usage.resource_group, 'none');
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	DELETE FROM ray.resource_group_grant g
	WHERE g.resource_group = rg.name AND g.grantee = role;
	IF NOT FOUND THEN
		RAISE NOTICE 'role "%" had no usage of resource group "%" to revoke', role, rg.name;
	END IF;
END
$$;
COMMENT ON FUNCTION ray.revoke_usage(text, name) IS
'Take back usage of a resource group from a role; its jobs already submitted go on.';

/* ------------------------------------------------------------------------
 * External clusters (ray_admin)
 * ------------------------------------------------------------------------
 */

/* A bearer token goes into an HTTP header: printable ASCII, no spaces. */
CREATE FUNCTION ray._check_token(token text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF token IS NOT NULL AND token !~ '^[\x21-\x7e]+$' THEN
		RAISE EXCEPTION 'token must be printable ASCII without spaces'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_token(text) IS
'Raise an error unless a bearer token can travel in an HTTP header.';

CREATE FUNCTION ray.register_cluster(
	name text,
	dashboard_url text,
	token text DEFAULT NULL,
	options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller name := ray._caller();
	url text;
	version text;
BEGIN
	PERFORM ray._check_name('resource group', register_cluster.name);
	IF EXISTS (SELECT FROM ray.resource_group g WHERE g.name = register_cluster.name
			   AND g.delete_requested_at IS NOT NULL) THEN
		RAISE EXCEPTION 'resource group "%" is being dropped', register_cluster.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Register it again once it is gone from ray.resource_groups.';
	END IF;
	IF EXISTS (SELECT FROM ray.resource_group g WHERE g.name = register_cluster.name) THEN
		RAISE EXCEPTION 'resource group "%" already exists', register_cluster.name
			USING ERRCODE = 'duplicate_object';
	END IF;
	PERFORM ray._check_token(token);
	PERFORM ray._check_group_options(coalesce(register_cluster.options, '{}'), 'external');
	url := ray._check_dashboard_url(dashboard_url);
	-- a wrong URL or token is an error now, never a group that silently fails later
	version := ray._http_ray_version(url, token, register_cluster.options ->> 'ca_file');

	INSERT INTO ray.resource_group (name, provider, head_spec, endpoint, options, owner, ray_version)
	VALUES (register_cluster.name, 'external', NULL, url,
			coalesce(register_cluster.options, '{}'), caller, version);
	IF token IS NOT NULL THEN
		INSERT INTO ray.resource_group_secret (resource_group, token)
		VALUES (register_cluster.name, token);
	END IF;
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	VALUES (register_cluster.name, NULL, 'CREATING', 1, caller,
			format('registered Ray %s at %s', version, url));
	RETURN register_cluster.name;
END
$$;
COMMENT ON FUNCTION ray.register_cluster(text, text, text, jsonb) IS
'Attach an existing Ray cluster by its dashboard URL (and bearer token) as a resource group; checks GET /api/version first.';

/*
 * Point an external group at a new URL, token or options.  The new settings
 * are checked against the dashboard before they replace the old ones, so a
 * typo never disconnects a working group.
 */
CREATE FUNCTION ray.alter_cluster(
	name text,
	dashboard_url text DEFAULT NULL,
	token text DEFAULT NULL,
	options jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(alter_cluster.name);
	old_token text;
	new_token text;
	new_url text;
	new_options jsonb;
	changed text[] := '{}';
	version text;
BEGIN
	IF rg.provider <> 'external' THEN
		RAISE EXCEPTION 'resource group "%" is not an external cluster', rg.name
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Change it with ray.alter_resource_group.';
	END IF;
	SELECT s.token INTO old_token FROM ray.resource_group_secret s WHERE s.resource_group = rg.name;
	new_url := CASE WHEN dashboard_url IS NULL THEN rg.endpoint
					ELSE ray._check_dashboard_url(dashboard_url) END;
	-- an empty token removes it
	new_token := CASE WHEN token IS NULL THEN old_token ELSE nullif(token, '') END;
	PERFORM ray._check_token(new_token);
	new_options := rg.options;
	IF alter_cluster.options IS NOT NULL THEN
		IF jsonb_typeof(alter_cluster.options) <> 'object' THEN
			PERFORM ray._check_group_options(alter_cluster.options, 'external');
		END IF;
		new_options := jsonb_strip_nulls(rg.options || alter_cluster.options);
		PERFORM ray._check_group_options(new_options, 'external');
	END IF;

	IF new_url IS DISTINCT FROM rg.endpoint THEN
		changed := changed || 'dashboard URL'::text;
	END IF;
	IF new_token IS DISTINCT FROM old_token THEN
		changed := changed || 'token'::text;
	END IF;
	IF new_options IS DISTINCT FROM rg.options THEN
		changed := changed || 'options'::text;
	END IF;
	IF cardinality(changed) = 0 THEN
		RAISE NOTICE 'resource group "%" already has those settings; nothing changes', rg.name;
		RETURN;
	END IF;
	-- runs in the old cluster could be neither followed nor stopped any more
	IF new_url IS DISTINCT FROM rg.endpoint THEN
		PERFORM ray._guard_interruption(rg.name, 'pointing the group at another dashboard', false);
	END IF;

	version := ray._http_ray_version(new_url, new_token, new_options ->> 'ca_file');
	UPDATE ray.resource_group g SET endpoint = new_url, options = new_options, ray_version = version,
		unreachable_since = NULL, last_error = NULL
	WHERE g.name = rg.name;
	DELETE FROM ray.resource_group_secret s WHERE s.resource_group = rg.name;
	IF new_token IS NOT NULL THEN
		INSERT INTO ray.resource_group_secret (resource_group, token) VALUES (rg.name, new_token);
	END IF;
	PERFORM ray._spec_changed(rg.name, format('%s changed; Ray %s answers', array_to_string(changed, ', '), version));
END
$$;
COMMENT ON FUNCTION ray.alter_cluster(text, text, text, jsonb) IS
'Change an external group''s dashboard URL, token ('''' removes it) or options; the new settings are checked with GET /api/version first.';

/*
 * The driver log of a job: the saved one once the job has ended, the live
 * one from Ray while it runs.
 */
CREATE FUNCTION ray.job_logs(job_id bigint)
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
	IF job_logs.job_id IS NULL THEN
		RAISE EXCEPTION 'job id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO job FROM ray.job j WHERE j.job_id = job_logs.job_id;
	IF NOT FOUND OR (job.owner <> ray._caller() AND NOT ray._is_admin(caller_oid)) THEN
		RAISE EXCEPTION 'job % does not exist', job_logs.job_id
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
COMMENT ON FUNCTION ray.job_logs(bigint) IS
'The driver log of a job: saved when it ended, fetched live from Ray while it runs.';

/* ------------------------------------------------------------------------
 * Job API (ray_user)
 * ------------------------------------------------------------------------
 */

/*
 * A working directory is a zip within pg_ray.max_working_dir_bytes, and the
 * only one the job names.
 */
CREATE FUNCTION ray._check_working_dir(zip bytea, runtime_env jsonb)
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

CREATE FUNCTION ray.submit_job(
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
	working_dir bytea DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_oid oid := ray._calling_role();
	caller name := ray._caller();
	rg ray.resource_group := ray._resource_group(submit_job.resource_group, 'share');
	id bigint;
BEGIN
	IF NOT ray._can_use(rg.name, caller_oid) THEN
		RAISE EXCEPTION 'permission denied for resource group "%"', rg.name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = format('A ray_admin can grant it with SELECT ray.grant_usage(%L, %L).', rg.name, caller);
	END IF;

	-- A driver runs on one node: refuse what no node of the group could ever
	-- hold.  A group without worker groups yet is taken at its word.
	IF EXISTS (SELECT FROM ray.worker_group w WHERE w.resource_group = rg.name) THEN
		IF coalesce(submit_job.entrypoint_num_gpus, 0) > 0 AND NOT EXISTS (
			SELECT FROM ray.worker_group w WHERE w.resource_group = rg.name AND w.resource_type = 'GPU') THEN
			RAISE EXCEPTION 'resource group "%" has no GPU workers', rg.name
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('The job asks for entrypoint_num_gpus = %s.', submit_job.entrypoint_num_gpus),
					  HINT = 'Add a GPU worker group with ray.add_worker_group, or submit without entrypoint_num_gpus.';
		END IF;
		IF NOT EXISTS (
			SELECT FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
			WHERE w.resource_group = rg.name
			  AND coalesce(submit_job.entrypoint_num_cpus, 0) <= s.num_cpus
			  AND coalesce(submit_job.entrypoint_num_gpus, 0) <= coalesce(w.gpu_distribution_unit, s.num_gpus)
			  AND coalesce(submit_job.entrypoint_memory, 0) <= s.memory_mb * 1048576) THEN
			RAISE EXCEPTION 'no worker node of resource group "%" can hold the entrypoint', rg.name
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('The entrypoint asks for %s CPUs, %s GPUs and %s bytes of memory on one node; its nodes have %s.',
									  coalesce(submit_job.entrypoint_num_cpus, 0), coalesce(submit_job.entrypoint_num_gpus, 0),
									  coalesce(submit_job.entrypoint_memory, 0),
									  (SELECT string_agg(format('%s CPUs, %s GPUs and %s MB (%s)', s.num_cpus,
																round(coalesce(w.gpu_distribution_unit, s.num_gpus), 3)::float8,
																s.memory_mb, w.name),
														 '; ' ORDER BY w.name)
									   FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
									   WHERE w.resource_group = rg.name)),
					  HINT = 'Ask for less, or add a worker group of a larger spec.';
		END IF;
	END IF;

	IF submit_job.working_dir IS NOT NULL THEN
		PERFORM ray._check_working_dir(submit_job.working_dir, coalesce(submit_job.runtime_env, '{}'));
	END IF;

	INSERT INTO ray.job (owner, resource_group, kind, entrypoint, runtime_env, metadata,
						 entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory,
						 entrypoint_resources, max_attempts, retry_on_failure)
	VALUES (caller, rg.name, 'script', submit_job.entrypoint,
			coalesce(submit_job.runtime_env, '{}'), coalesce(submit_job.metadata, '{}'),
			submit_job.entrypoint_num_cpus, submit_job.entrypoint_num_gpus,
			submit_job.entrypoint_memory, coalesce(submit_job.entrypoint_resources, '{}'),
			submit_job.max_attempts, coalesce(submit_job.retry_on_failure, false))
	RETURNING job_id INTO id;
	IF submit_job.working_dir IS NOT NULL THEN
		-- named by content, 40 hex digits as Ray names its own packages
		INSERT INTO ray.job_package (job_id, package, content)
		VALUES (id, '_ray_pkg_' || left(encode(sha256(submit_job.working_dir), 'hex'), 40) || '.zip',
				submit_job.working_dir);
	END IF;
	INSERT INTO ray.job_event (job_id, from_state, to_state, attempt, actor, message)
	VALUES (id, NULL, 'QUEUED', 0, caller, 'submitted');
	RETURN id;
END
$$;
COMMENT ON FUNCTION ray.submit_job(text, text, jsonb, jsonb, numeric, numeric, bigint, jsonb, integer, boolean, bytea) IS
'Queue a Ray job on a resource group, as ray job submit does; returns the job id. The background worker submits it.';

CREATE FUNCTION ray.stop_job(job_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_oid oid := ray._calling_role();
	caller name := ray._caller();
	job ray.job;
BEGIN
	IF stop_job.job_id IS NULL THEN
		RAISE EXCEPTION 'job id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO job FROM ray.job j WHERE j.job_id = stop_job.job_id FOR UPDATE;
	-- Someone else's job does not exist, as far as this caller can tell.
	IF NOT FOUND OR (job.owner <> caller AND NOT ray._is_admin(caller_oid)) THEN
		RAISE EXCEPTION 'job % does not exist', stop_job.job_id
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
COMMENT ON FUNCTION ray.stop_job(bigint) IS
'Stop a job: a queued one at once, a submitted one through Ray. Returns false if it had already finished.';

/* ------------------------------------------------------------------------
 * The background worker's rounds (called by the worker through SPI)
 * ------------------------------------------------------------------------
 */

/*
 * After a (re)start, say what the previous worker left half done.  A job
 * caught in SUBMITTING stays there: its submission id is fixed by job id and
 * attempt, so the next round asks Ray whether that run exists before it
 * submits, and a run is never made twice.
 */
CREATE FUNCTION ray._worker_recover()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	id bigint;
	n integer := 0;
BEGIN
	PERFORM ray._drop_stray_run_roles();
	FOR id IN SELECT job_id FROM ray.job WHERE state = 'SUBMITTING' ORDER BY job_id LOOP
		PERFORM ray._job_transition(id, 'SUBMITTING',
			'the pg_ray worker restarted during submission; Ray will be asked whether this attempt exists before it is submitted again',
			'pg_ray worker');
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION ray._worker_recover() IS
'Worker startup: record that in-flight submissions were interrupted; they resume without being duplicated.';

/*
 * One reconciliation round.  Each step is level-triggered: it looks at the
 * rows as they are now, so running it twice does no harm.
 */
CREATE FUNCTION ray._worker_reconcile()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	id bigint;
BEGIN
	-- Dropped groups: DELETING, then gone once none of their jobs is unfinished.
	FOR rg IN SELECT * FROM ray.resource_group WHERE delete_requested_at IS NOT NULL
			  ORDER BY name FOR UPDATE LOOP
		IF rg.state <> 'DELETING' THEN
			PERFORM ray._group_transition(rg.name, 'DELETING', 'dropping', 'pg_ray worker');
		END IF;
		-- a local group's nodes are stopped now, which ends its runs at once
		IF rg.provider = 'local' THEN
			FOR id IN SELECT job_id FROM ray.job WHERE resource_group = rg.name
					  AND state IN ('SUBMITTING', 'PENDING', 'RUNNING') ORDER BY job_id LOOP
				PERFORM ray._job_transition(id, 'STOPPED',
					format('interrupted: resource group "%s" was dropped and its nodes stopped', rg.name),
					'pg_ray worker');
			END LOOP;
		END IF;
		IF NOT EXISTS (SELECT FROM ray.job WHERE resource_group = rg.name
					   AND state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED'))
			AND NOT EXISTS (SELECT FROM ray.node WHERE resource_group = rg.name) THEN
			INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
			VALUES (rg.name, 'DELETING', 'DELETED', rg.generation, 'pg_ray worker', 'resource group removed');
			DELETE FROM ray.resource_group WHERE name = rg.name;
		END IF;
	END LOOP;

	-- Queued jobs say what they wait for.
	UPDATE ray.job j
	SET message = format('waiting for resource group "%s" to become ready (it is %s)', g.name, g.state)
	FROM ray.resource_group g
	WHERE j.state = 'QUEUED' AND g.name = j.resource_group AND g.state <> 'READY'
	  AND j.message IS DISTINCT FROM
		  format('waiting for resource group "%s" to become ready (it is %s)', g.name, g.state);
END
$$;
COMMENT ON FUNCTION ray._worker_reconcile() IS
'One round of the background worker: remove dropped groups once their jobs are finished and their nodes gone; say what queued jobs wait for.';

/* ------------------------------------------------------------------------
 * The job lifecycle against Ray (called by the background worker)
 *
 * The worker does the HTTP; these functions decide what the answers mean,
 * each in the transaction that records it.  Every one of them takes the
 * attempt it acts for and does nothing if the job has moved on since, so a
 * late or repeated answer can never undo a newer state.
 * ------------------------------------------------------------------------
 */

/* Ray error types that mean the infrastructure failed, not the user's code. */
CREATE FUNCTION ray._is_infrastructure_failure(error_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	-- JOB_ENTRYPOINT_COMMAND_ERROR, JOB_ENTRYPOINT_COMMAND_START_ERROR,
	-- RUNTIME_ENV_SETUP_FAILURE and JOB_SUPERVISOR_ACTOR_START_FAILURE (an
	-- invalid runtime_env, for one) are the user's: the command or its setup
	SELECT coalesce(error_type IN ('JOB_SUPERVISOR_ACTOR_DIED', 'JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE',
								   'JOB_SUPERVISOR_ACTOR_START_TIMEOUT',
								   'JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE'), false)
$$;
COMMENT ON FUNCTION ray._is_infrastructure_failure(text) IS
'True for the Ray error types that say the run was lost to the infrastructure (its supervisor could not start or died), not failed by the user''s code.';

/*
 * Requeue a job whose run was lost, as a new attempt, or fail it when it has
 * used its attempts.
 */
CREATE FUNCTION ray._requeue_or_fail(id bigint, why text, what_happened text DEFAULT 'lost')
RETURNS ray.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job;
BEGIN
	SELECT * INTO job FROM ray.job WHERE job_id = id FOR UPDATE;
	IF job.stop_requested_at IS NOT NULL THEN
		RETURN ray._job_transition(id, 'STOPPED', format('stopped by %s (%s)', job.stopped_by, why),
								   'pg_ray worker');
	END IF;
	IF job.attempts < job.max_attempts THEN
		RETURN ray._job_transition(id, 'QUEUED',
			format('attempt %s of %s %s: %s; requeued', job.attempts, job.max_attempts, what_happened, why),
			'pg_ray worker');
	END IF;
	RETURN ray._job_transition(id, 'FAILED',
		format('attempt %s of %s %s: %s; no attempts left', job.attempts, job.max_attempts, what_happened, why),
		'pg_ray worker');
END
$$;
COMMENT ON FUNCTION ray._requeue_or_fail(bigint, text, text) IS
'A run was lost to the infrastructure: queue the job again as a new attempt, or fail it if it has none left.';

/* The job row of an attempt still in one of the given states, locked; or nothing. */
CREATE FUNCTION ray._current_attempt(id bigint, attempt integer, states text[])
RETURNS ray.job
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT * FROM ray.job
	WHERE job_id = id AND attempts = attempt AND state = ANY (states)
	FOR UPDATE
$$;
COMMENT ON FUNCTION ray._current_attempt(bigint, integer, text[]) IS
'The job if it is still at that attempt and in one of those states (locked), else NULL: the guard against late answers.';

/*
 * Take queued jobs of ready groups into SUBMITTING as a new attempt.  The
 * attempt and its submission id are committed before anything is sent, so
 * a crash after this point is resumed with the same id, never a second one.
 * A group has at most max_jobs jobs in SUBMITTING at once: the rest wait in
 * QUEUED, so that a burst of submissions (or a Ray that answers slowly) is
 * fed to Ray as fast as it takes them, not all at once.
 */
CREATE FUNCTION ray._begin_attempts(max_jobs integer DEFAULT 50)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	id bigint;
	n integer := 0;
	install text := (SELECT i.id FROM ray.installation i);
	sid text;
	failure text;
BEGIN
	FOR id IN
		SELECT j.job_id
		FROM ray.resource_group g
		CROSS JOIN LATERAL (
			SELECT q.job_id FROM ray.job q
			WHERE q.resource_group = g.name AND q.state = 'QUEUED'
			ORDER BY q.job_id
			LIMIT greatest(0, max_jobs - (SELECT count(*) FROM ray.job s
										  WHERE s.resource_group = g.name AND s.state = 'SUBMITTING'))
			FOR UPDATE OF q SKIP LOCKED) j
		WHERE g.state = 'READY' AND g.delete_requested_at IS NULL
		ORDER BY j.job_id
	LOOP
		UPDATE ray.job SET
			attempts = attempts + 1,
			ray_submission_id = format('pgray-%s-%s-%s', install, job_id, attempts + 1),
			ray_job_id = NULL, ray_status = NULL, error_type = NULL, driver_exit_code = NULL,
			log_error = NULL
		WHERE job_id = id
		RETURNING ray_submission_id INTO sid;
		PERFORM ray._job_transition(id, 'SUBMITTING', format('submitting to Ray as %s', sid),
									'pg_ray worker');
		IF (SELECT kind FROM ray.job WHERE job_id = id) = 'batch_inference' THEN
			BEGIN
				PERFORM ray._begin_batch_attempt(id);
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT;
				PERFORM ray._job_transition(id, 'FAILED', format('could not prepare the run: %s', failure),
											'pg_ray worker');
			END;
		END IF;
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION ray._begin_attempts(integer) IS
'Move queued jobs of ready resource groups to SUBMITTING as a new attempt with its fixed submission id, at most max_jobs per group in SUBMITTING at once.';

/*
 * What the worker has to do with Ray now, one row per thing.  The worker
 * skips what it already has in flight and decides when groups are polled.
 */
CREATE FUNCTION ray._worker_work()
RETURNS TABLE (action text, resource_group text, job_id bigint, attempt integer,
			   submission_id text)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	-- external groups to (re)connect to
	SELECT 'check_group', g.name, NULL::bigint, NULL::integer, NULL::text
	FROM ray.resource_group g
	WHERE g.provider = 'external' AND g.delete_requested_at IS NULL
	  AND (g.state <> 'READY' OR g.observed_generation < g.generation)
	UNION ALL
	-- local groups whose head answered once: their Ray version
	SELECT 'check_group', g.name, NULL::bigint, NULL::integer, NULL::text
	FROM ray.resource_group g JOIN ray.node h ON h.resource_group = g.name AND h.kind = 'head'
	WHERE g.provider = 'local' AND g.ray_version IS NULL AND h.answered_at IS NOT NULL
	UNION ALL
	-- local groups with a running head: their nodes and demand, on a schedule
	SELECT 'observe_group', g.name, NULL::bigint, NULL::integer, NULL::text
	FROM ray.resource_group g JOIN ray.node h ON h.resource_group = g.name AND h.kind = 'head'
	WHERE g.provider = 'local' AND h.pid IS NOT NULL AND h.stop_requested_at IS NULL
	UNION ALL
	-- submissions to verify and, if Ray does not have them, to make
	SELECT 'check_submission', j.resource_group, j.job_id, j.attempts, j.ray_submission_id
	FROM ray.job j WHERE j.state = 'SUBMITTING'
	UNION ALL
	-- stop requests for runs Ray may have (sent again if Ray has not obeyed in 30 s)
	SELECT 'stop', j.resource_group, j.job_id, j.attempts, j.ray_submission_id
	FROM ray.job j
	WHERE j.state IN ('PENDING', 'RUNNING') AND j.stop_requested_at IS NOT NULL
	  AND (j.stop_sent_at IS NULL OR j.stop_sent_at < now() - interval '30 seconds')
	UNION ALL
	-- groups whose runs are to be followed, one list call each
	SELECT DISTINCT 'poll_group', j.resource_group, NULL::bigint, NULL::integer, NULL::text
	FROM ray.job j WHERE j.state IN ('PENDING', 'RUNNING')
	UNION ALL
	-- runs given up on, to be stopped if they reappear
	SELECT 'stop_lost', l.resource_group, l.job_id, l.attempt, l.submission_id
	FROM ray.lost_run l JOIN ray.resource_group g ON g.name = l.resource_group
	WHERE g.state = 'READY'
	UNION ALL
	-- driver logs of finished runs, kept before the cluster forgets them
	SELECT 'fetch_log', j.resource_group, j.job_id, j.attempts, j.ray_submission_id
	FROM ray.job j
	WHERE j.state IN ('SUCCEEDED', 'FAILED', 'STOPPED') AND j.ray_submission_id IS NOT NULL
	  AND j.ray_status IS NOT NULL AND j.log_error IS NULL
	  AND j.finished_at > now() - interval '1 day'
	  AND NOT EXISTS (SELECT FROM ray.job_log l WHERE l.job_id = j.job_id AND l.attempt = j.attempts)
$$;
COMMENT ON FUNCTION ray._worker_work() IS
'The background worker''s to-do list against Ray: groups to check and observe, submissions to verify, stops to send, groups to poll, logs to save.';

/* Where and how to reach a group's Ray dashboard. */
CREATE FUNCTION ray._group_connection(group_name text,
									  OUT url text, OUT token text, OUT ca_file text)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(g.endpoint, g.dashboard_url), s.token, g.options ->> 'ca_file'
	FROM ray.resource_group g
	LEFT JOIN ray.resource_group_secret s ON s.resource_group = g.name
	WHERE g.name = group_name
$$;
COMMENT ON FUNCTION ray._group_connection(text) IS
'The dashboard URL, bearer token and CA file of a resource group; for the worker only.';

/*
 * Runs given up on while their cluster could not be asked.  If the cluster
 * comes back with such a run still going, the worker stops it, so that a
 * requeued job never runs twice at once.
 */
CREATE TABLE ray.lost_run (
	submission_id text PRIMARY KEY,
	resource_group text NOT NULL
		REFERENCES ray.resource_group (name) ON UPDATE CASCADE ON DELETE CASCADE,
	job_id bigint NOT NULL,
	attempt integer NOT NULL,
	lost_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ray.lost_run IS
'Ray submissions given up on (their cluster was unreachable); stopped if they reappear.';

/* Give up on a job's current run: remember it, then requeue or fail the job. */
CREATE FUNCTION ray._forget_run(id bigint, why text)
RETURNS ray.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO ray.lost_run (submission_id, resource_group, job_id, attempt)
	SELECT ray_submission_id, resource_group, job_id, attempts
	FROM ray.job WHERE job_id = id AND ray_submission_id IS NOT NULL
	ON CONFLICT DO NOTHING;
	RETURN ray._requeue_or_fail(id, why);
END
$$;
COMMENT ON FUNCTION ray._forget_run(bigint, text) IS
'Give up on a job''s current run (remembered in ray.lost_run, to be stopped if it reappears) and requeue or fail the job.';

/* Give up on every run a group may have in Ray: its cluster lost them. */
CREATE FUNCTION ray._forget_group_runs(group_name text, why text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	id bigint;
BEGIN
	FOR id IN SELECT job_id FROM ray.job
			  WHERE resource_group = group_name AND state IN ('SUBMITTING', 'PENDING', 'RUNNING')
			  ORDER BY job_id LOOP
		PERFORM ray._forget_run(id, why);
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._forget_group_runs(text, text) IS
'Give up on the runs of every unfinished job of a group that may be in Ray (see ray._forget_run).';

/*
 * The answer to GET /api/version: the group is reachable (version) or not
 * (error).  A group unreachable for longer than
 * pg_ray.cluster_unreachable_timeout loses its runs: they are requeued.
 */
CREATE FUNCTION ray._apply_group_check(group_name text, version text, error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	host text;
BEGIN
	SELECT * INTO rg FROM ray.resource_group WHERE name = group_name FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	IF error IS NULL THEN
		-- a group being dropped stays DELETING; it only stops being unreachable
		IF rg.delete_requested_at IS NOT NULL THEN
			UPDATE ray.resource_group SET unreachable_since = NULL WHERE name = group_name;
			RETURN;
		END IF;
		-- a local group's state follows its nodes (ray._apply_local_nodes)
		IF rg.provider = 'local' THEN
			UPDATE ray.resource_group SET ray_version = coalesce(version, ray_version),
				unreachable_since = NULL
			WHERE name = group_name;
			RETURN;
		END IF;
		host := substring(coalesce(rg.endpoint, rg.dashboard_url) from '^https?://(\[[^]]+\]|[^:/]+)');
		UPDATE ray.resource_group SET
			ray_version = coalesce(version, ray_version),
			observed_generation = generation,
			dashboard_url = coalesce(endpoint, dashboard_url),
			client_address = coalesce(options ->> 'client_address', format('ray://%s:10001', host)),
			unreachable_since = NULL
		WHERE name = group_name;
		IF rg.state <> 'READY' THEN
			PERFORM ray._group_transition(group_name, 'READY',
				format('Ray %s answers at %s', coalesce(version, rg.ray_version),
					   coalesce(rg.endpoint, rg.dashboard_url)),
				'pg_ray worker');
		END IF;
		RETURN;
	END IF;

	UPDATE ray.resource_group SET unreachable_since = coalesce(unreachable_since, now()),
		last_error = error
	WHERE name = group_name
	RETURNING * INTO rg;
	IF rg.state = 'READY' AND rg.delete_requested_at IS NULL THEN
		PERFORM ray._group_transition(group_name, 'DEGRADED', error, 'pg_ray worker');
		UPDATE ray.resource_group SET last_error = error WHERE name = group_name;
	END IF;
	IF now() - rg.unreachable_since
		> current_setting('pg_ray.cluster_unreachable_timeout')::interval THEN
		PERFORM ray._forget_group_runs(group_name,
			format('resource group "%s" unreachable since %s', group_name, rg.unreachable_since));
	END IF;
END
$$;
COMMENT ON FUNCTION ray._apply_group_check(text, text, text) IS
'Record whether a group''s dashboard answered (error NULL: it did, with version if known); requeue its runs once it has been unreachable for pg_ray.cluster_unreachable_timeout.';

/*
 * GET /api/jobs/{id} said 404 for a job in SUBMITTING: Ray has no such run,
 * so it is submitted now.  Returns the body to POST, or NULL when there is
 * nothing to submit any more (a stop request arrived: the job stops here,
 * never having run).
 */
CREATE FUNCTION ray._submission_body(id bigint, attempt integer)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['SUBMITTING']);
BEGIN
	IF job.job_id IS NULL THEN
		RETURN NULL;
	END IF;
	IF job.stop_requested_at IS NOT NULL THEN
		PERFORM ray._job_transition(id, 'STOPPED', format('stopped by %s before it reached Ray', job.stopped_by),
									'pg_ray worker');
		RETURN NULL;
	END IF;
	RETURN jsonb_strip_nulls(jsonb_build_object(
		'submission_id', job.ray_submission_id,
		'entrypoint', job.entrypoint,
		'runtime_env', nullif(job.runtime_env || coalesce(
			(SELECT jsonb_build_object('working_dir', 'gcs://' || p.package)
			 FROM ray._submission_package(id, attempt) p WHERE p.package IS NOT NULL), '{}')
			|| ray._run_connection_env(job), '{}'),
		'metadata', job.metadata || jsonb_build_object('pg_ray_job_id', job.job_id::text,
													   'pg_ray_owner', job.owner,
													   'pg_ray_attempt', job.attempts::text),
		'entrypoint_num_cpus', job.entrypoint_num_cpus,
		'entrypoint_num_gpus', job.entrypoint_num_gpus,
		'entrypoint_memory', job.entrypoint_memory,
		'entrypoint_resources', nullif(job.entrypoint_resources, '{}')))::text;
END
$$;
COMMENT ON FUNCTION ray._submission_body(bigint, integer) IS
'The JSON body of POST /api/jobs/ for a job''s current attempt, or NULL if it is not to be submitted any more.';

/* POST /api/jobs/ answered: accepted (error NULL), or refused for good. */
CREATE FUNCTION ray._apply_submitted(id bigint, attempt integer, error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['SUBMITTING']);
BEGIN
	IF job.job_id IS NULL THEN
		RETURN;
	END IF;
	IF error IS NULL THEN
		PERFORM ray._job_transition(id, 'PENDING', format('submitted to Ray as %s', job.ray_submission_id),
									'pg_ray worker');
	ELSE
		PERFORM ray._job_transition(id, 'FAILED', format('Ray refused the job: %s', error),
									'pg_ray worker');
	END IF;
END
$$;
COMMENT ON FUNCTION ray._apply_submitted(bigint, integer, text) IS
'Record Ray''s answer to a submission: PENDING, or FAILED when Ray refused it (a client error, not a failure to reach Ray).';

/* A transfer problem while submitting: stay in SUBMITTING and say why. */
CREATE FUNCTION ray._apply_submission_trouble(id bigint, attempt integer, error text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	UPDATE ray.job SET message = format('could not reach Ray, will retry: %s', error)
	WHERE job_id = id AND attempts = attempt AND state = 'SUBMITTING'
$$;
COMMENT ON FUNCTION ray._apply_submission_trouble(bigint, integer, text) IS
'Note why a submission is not through yet; the worker checks and tries again, never submitting twice.';

/*
 * What Ray says of a run, from GET /api/jobs/{id} or the list: move the job
 * along.  Ray's times are milliseconds since the epoch.
 */
CREATE FUNCTION ray._apply_job_info(id bigint, attempt integer, reported_status text,
									ray_message text, ray_error_type text,
									exit_code integer, start_ms bigint, end_ms bigint,
									ray_job text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['SUBMITTING', 'PENDING', 'RUNNING']);
	target text;
	why text := coalesce(ray_message, '');
	never_started boolean;
BEGIN
	IF job.job_id IS NULL THEN
		RETURN;
	END IF;
	never_started := job.started_at IS NULL;
	UPDATE ray.job SET
		ray_status = reported_status,
		ray_job_id = coalesce(ray_job, ray_job_id),
		last_seen_at = now(),
		error_type = ray_error_type,
		driver_exit_code = exit_code
	WHERE job_id = id;

	-- a failed runner says what went wrong in one line; Ray's message is its log's tail
	IF job.kind = 'batch_inference' AND why ~ 'pg_ray runner: [^\n]* failed: ' THEN
		why := (regexp_match(why, '(pg_ray runner: [^\n]* failed: [^\n]*)'))[1];
	END IF;
	-- a batch runner that lost its database (the server crashed or restarted
	-- under it) or a Ray node under a task exits 75: that attempt was lost
	-- to the infrastructure too
	IF reported_status = 'FAILED' AND job.stop_requested_at IS NULL
		AND (ray._is_infrastructure_failure(ray_error_type)
			 OR (job.kind = 'batch_inference' AND exit_code = 75)
			 OR (job.retry_on_failure AND job.attempts < job.max_attempts)) THEN
		PERFORM ray._requeue_or_fail(id, format('Ray reported %s: %s',
			coalesce(ray_error_type, 'a failure'), why),
			CASE WHEN ray._is_infrastructure_failure(ray_error_type)
					  OR (job.kind = 'batch_inference' AND exit_code = 75) THEN 'lost' ELSE 'failed' END);
		RETURN;
	END IF;

	target := CASE reported_status
		WHEN 'PENDING' THEN 'PENDING'
		WHEN 'RUNNING' THEN 'RUNNING'
		WHEN 'SUCCEEDED' THEN CASE WHEN job.kind = 'batch_inference' THEN 'PUBLISHING' ELSE 'SUCCEEDED' END
		WHEN 'STOPPED' THEN 'STOPPED'
		WHEN 'FAILED' THEN CASE WHEN job.stop_requested_at IS NOT NULL THEN 'STOPPED' ELSE 'FAILED' END
	END;
	IF target IS NULL THEN
		RAISE EXCEPTION 'unknown Ray job status "%"', reported_status USING ERRCODE = 'internal_error';
	END IF;
	IF target = 'STOPPED' AND job.stop_requested_at IS NOT NULL THEN
		why := format('stopped by %s', job.stopped_by);
	END IF;
	IF target <> job.state THEN
		-- a RUNNING job seen finished passes through RUNNING for its times
		IF target IN ('PUBLISHING', 'SUCCEEDED', 'FAILED', 'STOPPED') AND start_ms IS NOT NULL
			AND job.state IN ('SUBMITTING', 'PENDING') THEN
			PERFORM ray._job_transition(id, 'RUNNING', 'running in Ray', 'pg_ray worker');
		END IF;
		PERFORM ray._job_transition(id, target,
			CASE WHEN target = 'PUBLISHING' THEN 'the run succeeded in Ray; publishing its rows'
				 ELSE nullif(why, '') END, 'pg_ray worker');
	END IF;
	-- Ray's clock for the times, but the first attempt's start is kept
	UPDATE ray.job SET
		started_at = CASE WHEN never_started AND start_ms > 0 AND started_at IS NOT NULL
						  THEN to_timestamp(start_ms / 1000.0) ELSE started_at END,
		finished_at = CASE WHEN finished_at IS NOT NULL AND end_ms > 0
						   THEN greatest(to_timestamp(end_ms / 1000.0), coalesce(started_at, to_timestamp(end_ms / 1000.0)))
						   ELSE finished_at END
	WHERE job_id = id;
END
$$;
COMMENT ON FUNCTION ray._apply_job_info(bigint, integer, text, text, text, integer, bigint, bigint, text) IS
'Move a job along what Ray reports of its run: status, message, error type, exit code and times.';

/* Ray does not know a run it had: the head restarted, or the run was deleted. */
CREATE FUNCTION ray._apply_run_missing(id bigint, attempt integer, why text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['PENDING', 'RUNNING']);
BEGIN
	IF job.job_id IS NOT NULL THEN
		PERFORM ray._requeue_or_fail(id, why);
	END IF;
END
$$;
COMMENT ON FUNCTION ray._apply_run_missing(bigint, integer, text) IS
'A submitted run is gone from Ray: requeue the job as a new attempt, or fail it.';

/* Ray took a stop request for a run. */
CREATE FUNCTION ray._apply_stop_sent(id bigint, attempt integer, stopped boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['PENDING', 'RUNNING']);
BEGIN
	IF job.job_id IS NULL THEN
		RETURN;
	END IF;
	UPDATE ray.job SET stop_sent_at = now() WHERE job_id = id;
	IF job.stop_sent_at IS NULL THEN
		INSERT INTO ray.job_event (job_id, from_state, to_state, attempt, actor, message)
		VALUES (id, job.state, job.state, attempt, 'pg_ray worker',
				CASE WHEN stopped THEN 'stop sent to Ray' ELSE 'stop sent to Ray, which had already ended the run' END);
	END IF;
END
$$;
COMMENT ON FUNCTION ray._apply_stop_sent(bigint, integer, boolean) IS
'Record that Ray took the stop request of a run; its final state comes with the next poll.';

/*
 * A lost run was stopped in Ray, or Ray does not have it.  "Does not have it"
 * is believed only after a grace of three request timeouts: a POST that was
 * still on its way when the run was given up could land later.
 */
CREATE FUNCTION ray._lost_run_settled(lost_submission_id text, not_found boolean)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	DELETE FROM ray.lost_run
	WHERE submission_id = lost_submission_id
	  AND (NOT not_found
		   OR lost_at < now() - 3 * current_setting('pg_ray.http_timeout')::interval)
$$;
COMMENT ON FUNCTION ray._lost_run_settled(text, boolean) IS
'Forget a lost run once Ray has stopped it, or has not known it for longer than a late POST could take.';

/* A driver log fetched (or given up on) when a run ended. */
CREATE FUNCTION ray._save_job_log(id bigint, attempt integer, log_text text,
								  is_truncated boolean, error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- the job may have been deleted while its log was being fetched
	IF NOT EXISTS (SELECT FROM ray.job WHERE job_id = id) THEN
		RETURN;
	END IF;
	IF log_text IS NOT NULL THEN
		INSERT INTO ray.job_log (job_id, attempt, log, truncated)
		VALUES (id, attempt, log_text, is_truncated)
		ON CONFLICT ON CONSTRAINT job_log_pkey DO UPDATE SET log = EXCLUDED.log,
			truncated = EXCLUDED.truncated, saved_at = now();
	ELSE
		UPDATE ray.job SET log_error = error WHERE job_id = id AND attempts = attempt;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._save_job_log(bigint, integer, text, boolean, text) IS
'Keep the driver log of an attempt, or note why it could not be fetched.';

/* ------------------------------------------------------------------------
 * The local provider: Ray nodes as processes on this host
 *
 * Each node of a local resource group is one row of ray.node: a slot with
 * its ports, its run directory and, while it runs, the pid of its
 * "ray start --block" process, which leads a session of its own.  The
 * background worker compares the slots with the desired spec
 * (ray._local_plan), starts and stops processes, and reports back through
 * the ray._local_node_* functions.  Processes are found again by their run
 * directory, so a restarted worker or server adopts them instead of
 * starting twins.
 * ------------------------------------------------------------------------
 */

CREATE SEQUENCE ray.node_id_seq;

CREATE TABLE ray.node (
	node_id bigint PRIMARY KEY DEFAULT nextval('ray.node_id_seq'),
	-- no cascade: a group's row goes only after its processes are gone
	resource_group text NOT NULL REFERENCES ray.resource_group (name) ON UPDATE CASCADE,
	kind text NOT NULL CONSTRAINT node_kind_check CHECK (kind IN ('head', 'worker', 'redis')),
	worker_group text,			-- no foreign key: a dropped worker group's nodes stop first
	config jsonb NOT NULL,		-- what it runs with; a different desired config restarts it
	port_base integer NOT NULL UNIQUE,
	run_dir text NOT NULL,
	pid integer,				-- of the session leader, while it runs
	started_at timestamptz,
	answered_at timestamptz,	-- head: when its dashboard last answered
	next_start_at timestamptz NOT NULL DEFAULT now(),
	start_failures integer NOT NULL DEFAULT 0,
	stop_requested_at timestamptz,
	stop_reason text,
	restart_after_stop boolean NOT NULL DEFAULT false,
	last_exit text,
	-- observed through Ray's node state API
	ray_node_id text,
	ray_state text,
	idle_since timestamptz,	-- since when Ray reports nothing running on it
	resources_total jsonb,
	resources_used jsonb,
	observed_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT node_worker_group_check CHECK ((kind = 'worker') = (worker_group IS NOT NULL))
);
ALTER SEQUENCE ray.node_id_seq OWNED BY ray.node.node_id;
CREATE INDEX ON ray.node (resource_group, kind);
COMMENT ON TABLE ray.node IS
'Nodes of local resource groups: processes on this host, their ports, run directories and what Ray reports of them.';

CREATE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.node
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();

/* Append a note to a resource group's history without changing its state. */
CREATE FUNCTION ray._group_note(group_name text, why text, actor name DEFAULT 'pg_ray worker')
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	SELECT name, state, state, generation, actor, why FROM ray.resource_group WHERE name = group_name;
$$;
COMMENT ON FUNCTION ray._group_note(text, text, name) IS
'Record an event of a resource group (a node started or stopped, a scaling decision) that leaves its state as it is.';

/* How a node is called in events and errors. */
CREATE FUNCTION ray._node_label(n ray.node)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE n.kind
		WHEN 'head' THEN format('head node %s', n.node_id)
		WHEN 'redis' THEN format('Redis %s', n.node_id)
		ELSE format('worker node %s of worker group %s', n.node_id, n.worker_group) END
$$;
COMMENT ON FUNCTION ray._node_label(ray.node) IS
'The name of a node in events and messages: "head node 3", "worker node 7 of worker group cpu".';

/*
 * The object store of a node: the group's option, or 30% of the node's
 * memory as Ray itself would take, kept between 100 MB and 2 GB so that a
 * host running several groups is not filled by their stores.
 */
CREATE FUNCTION ray._object_store_mb(options jsonb, memory_mb bigint)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((options ->> 'object_store_memory_mb')::integer,
					least(greatest(memory_mb * 3 / 10, 100), 2048)::integer)
$$;
COMMENT ON FUNCTION ray._object_store_mb(jsonb, bigint) IS
'Object store size of a node in MB: the object_store_memory_mb option, else 30% of its memory between 100 and 2048.';

/*
 * What a node of a group should run with now.  A node whose recorded config
 * differs is restarted: this is where the documented effects of a change
 * (head spec, worker spec or type, disk, GPU unit, HA) come from.
 */
CREATE FUNCTION ray._node_desired_config(group_name text, node_kind text, worker_group_name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	wg ray.worker_group;
	spec ray.node_spec;
BEGIN
	SELECT * INTO rg FROM ray.resource_group WHERE name = group_name;
	IF node_kind = 'redis' THEN
		RETURN '{}';
	END IF;
	IF node_kind = 'head' THEN
		SELECT * INTO spec FROM ray.node_spec WHERE name = rg.head_spec;
		RETURN jsonb_build_object(
			'spec', spec.name, 'num_cpus', 0, 'num_gpus', 0, 'memory_mb', spec.memory_mb,
			'object_store_mb', ray._object_store_mb(rg.options, spec.memory_mb),
			'ha', coalesce((rg.options ->> 'ha')::boolean, false),
			'redis_url', rg.options ->> 'redis_url');
	END IF;
	SELECT * INTO wg FROM ray.worker_group WHERE resource_group = group_name AND name = worker_group_name;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT * INTO spec FROM ray.node_spec WHERE name = wg.spec;
	RETURN jsonb_build_object(
		'spec', spec.name, 'resource_type', wg.resource_type,
		'num_cpus', spec.num_cpus, 'memory_mb', spec.memory_mb,
		-- Ray takes whole GPUs per node; the distribution unit says how many
		-- workers share one physical GPU (see _local_node_command)
		'num_gpus', CASE WHEN wg.resource_type = 'GPU' THEN ceil(spec.num_gpus)::integer ELSE 0 END,
		'gpu_distribution_unit', wg.gpu_distribution_unit,
		'disk_gb', wg.disk_gb,
		'object_store_mb', ray._object_store_mb(rg.options, spec.memory_mb));
END
$$;
COMMENT ON FUNCTION ray._node_desired_config(text, text, text) IS
'The config a head, worker or Redis node of a local group should run with now; NULL for a worker group that is gone.';

/*
 * The first free block of 64 ports in pg_ray.port_range_start ..
 * pg_ray.port_range_end above a given port.  Blocks are recorded on their
 * node, so two nodes never share one and a restarted node keeps its own.
 */
CREATE FUNCTION ray._allocate_port_base(above integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	first_port integer := current_setting('pg_ray.port_range_start')::integer;
	last_port integer := current_setting('pg_ray.port_range_end')::integer;
	base integer;
BEGIN
	-- one allocator at a time
	LOCK TABLE ray.node IN SHARE ROW EXCLUSIVE MODE;
	SELECT b INTO base
	FROM generate_series(first_port, last_port - 63, 64) b
	WHERE b > above AND NOT EXISTS (SELECT FROM ray.node n WHERE n.port_base = b)
	ORDER BY b LIMIT 1;
	IF base IS NULL THEN
		RAISE EXCEPTION 'no free block of ports left between % and %', first_port, last_port
			USING ERRCODE = 'configuration_limit_exceeded',
				  DETAIL = 'Each local Ray node takes 64 ports.',
				  HINT = 'Widen pg_ray.port_range_start .. pg_ray.port_range_end, or drop resource groups.';
	END IF;
	RETURN base;
END
$$;
COMMENT ON FUNCTION ray._allocate_port_base(integer) IS
'The first free 64-port block of the local port range above a port, or an error when none is left.';

/* A new slot for a node of a local group; it starts in the next round. */
CREATE FUNCTION ray._add_node(group_name text, node_kind text, worker_group_name text, why text)
RETURNS ray.node
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	id bigint := nextval('ray.node_id_seq');
BEGIN
	INSERT INTO ray.node (node_id, resource_group, kind, worker_group, config, port_base, run_dir)
	VALUES (id, group_name, node_kind, worker_group_name,
			ray._node_desired_config(group_name, node_kind, worker_group_name),
			ray._allocate_port_base(),
			format('%s/%s/n%s', rtrim(current_setting('pg_ray.run_directory'), '/'),
				   (SELECT i.id FROM ray.installation i), id))
	RETURNING * INTO n;
	PERFORM ray._group_note(group_name, format('%s added (ports %s-%s): %s', ray._node_label(n),
											   n.port_base, n.port_base + 63, why));
	RETURN n;
END
$$;
COMMENT ON FUNCTION ray._add_node(text, text, text, text) IS
'Add a node slot (ports, run directory, config) to a local group; the worker starts its process.';

/* Ask for a node to stop, for a reason kept in its history. */
CREATE FUNCTION ray._stop_node(id bigint, why text, restart boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
BEGIN
	UPDATE ray.node SET stop_requested_at = now(), stop_reason = why, restart_after_stop = restart
	WHERE node_id = id AND stop_requested_at IS NULL
	RETURNING * INTO n;
	IF FOUND THEN
		PERFORM ray._group_note(n.resource_group,
			format('%s %s: %s', ray._node_label(n), CASE WHEN restart THEN 'restarts' ELSE 'stops' END, why));
	END IF;
END
$$;
COMMENT ON FUNCTION ray._stop_node(bigint, text, boolean) IS
'Ask the worker to stop a node''s processes (and start it again with its desired config when restart).';

/*
 * Bring the node slots of one local group in line with its desired spec:
 * a head (and a Redis for HA without redis_url), desired_workers nodes per
 * worker group, restarts where the config changed, stops for what was
 * dropped or scaled away.  Level-triggered: it looks at the rows as they
 * are, so running it twice changes nothing the second time.
 */
CREATE FUNCTION ray._local_reconcile_group(rg ray.resource_group)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	wg ray.worker_group;
	n ray.node;
	id bigint;
	wants_redis boolean;
	active integer;
	desired jsonb;
BEGIN
	IF rg.delete_requested_at IS NOT NULL THEN
		FOR n IN SELECT * FROM ray.node WHERE resource_group = rg.name AND stop_requested_at IS NULL
				 ORDER BY node_id LOOP
			PERFORM ray._stop_node(n.node_id, 'the resource group is dropped');
		END LOOP;
		RETURN;
	END IF;

	-- Redis first: a highly available head keeps its state there
	wants_redis := coalesce((rg.options ->> 'ha')::boolean, false) AND NOT rg.options ? 'redis_url';
	IF wants_redis AND NOT EXISTS (SELECT FROM ray.node WHERE resource_group = rg.name AND kind = 'redis') THEN
		PERFORM ray._add_node(rg.name, 'redis', NULL, 'the head is highly available');
	ELSIF NOT wants_redis THEN
		FOR n IN SELECT * FROM ray.node WHERE resource_group = rg.name AND kind = 'redis'
				 AND stop_requested_at IS NULL LOOP
			PERFORM ray._stop_node(n.node_id, 'the head no longer keeps its state in this Redis');
		END LOOP;
	END IF;

	desired := ray._node_desired_config(rg.name, 'head', NULL);
	SELECT * INTO n FROM ray.node WHERE resource_group = rg.name AND kind = 'head';
	IF NOT FOUND THEN
		PERFORM ray._add_node(rg.name, 'head', NULL, 'the group needs a head');
	ELSIF n.config IS DISTINCT FROM desired AND n.stop_requested_at IS NULL THEN
		PERFORM ray._stop_node(n.node_id, 'its spec changed', true);
		-- a head that keeps no state in Redis comes back as a new cluster
		IF NOT (coalesce((n.config ->> 'ha')::boolean, false) AND (desired ->> 'ha')::boolean) THEN
			FOR id IN SELECT node_id FROM ray.node WHERE resource_group = rg.name AND kind = 'worker'
					  AND stop_requested_at IS NULL ORDER BY node_id LOOP
				PERFORM ray._stop_node(id, 'the head restarts without its state, so the cluster starts anew', true);
			END LOOP;
		END IF;
	END IF;

	-- workers of dropped worker groups, or started with another config
	FOR n IN SELECT * FROM ray.node nd WHERE nd.resource_group = rg.name AND nd.kind = 'worker'
			 AND nd.stop_requested_at IS NULL ORDER BY nd.node_id LOOP
		desired := ray._node_desired_config(rg.name, 'worker', n.worker_group);
		IF desired IS NULL THEN
			PERFORM ray._stop_node(n.node_id, format('worker group %s was dropped', n.worker_group));
		ELSIF n.config IS DISTINCT FROM desired THEN
			PERFORM ray._stop_node(n.node_id, format('worker group %s changed', n.worker_group));
		END IF;
	END LOOP;

	-- as many live slots per worker group as desired
	FOR wg IN SELECT * FROM ray.worker_group WHERE resource_group = rg.name ORDER BY name LOOP
		SELECT count(*) INTO active FROM ray.node
		WHERE resource_group = rg.name AND worker_group = wg.name AND stop_requested_at IS NULL;
		WHILE active < wg.desired_workers LOOP
			PERFORM ray._add_node(rg.name, 'worker', wg.name,
				format('worker group %s wants %s workers', wg.name, wg.desired_workers));
			active := active + 1;
		END LOOP;
		-- too many: not started ones first, then the idlest, then the newest
		FOR n IN SELECT * FROM ray.node
				 WHERE resource_group = rg.name AND worker_group = wg.name AND stop_requested_at IS NULL
				 ORDER BY pid IS NOT NULL, idle_since NULLS LAST, node_id DESC
				 LIMIT greatest(active - wg.desired_workers, 0) LOOP
			PERFORM ray._stop_node(n.node_id,
				format('worker group %s wants %s workers', wg.name, wg.desired_workers));
		END LOOP;
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._local_reconcile_group(ray.resource_group) IS
'Add, restart and stop the node slots of one local group until they match its desired spec.';

/*
 * Reconcile every local group, each on its own: a group that cannot be
 * reconciled (no ports left, a broken spec) records why in its last_error
 * and history, and the others go on.
 */
CREATE FUNCTION ray._local_reconcile_nodes()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	failure text;
BEGIN
	FOR rg IN SELECT * FROM ray.resource_group WHERE provider = 'local' ORDER BY name FOR UPDATE LOOP
		BEGIN
			PERFORM ray._local_reconcile_group(rg);
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT;
			failure := format('could not manage its nodes: %s', failure);
			IF rg.last_error IS DISTINCT FROM failure THEN
				UPDATE ray.resource_group SET last_error = failure WHERE name = rg.name;
				PERFORM ray._group_note(rg.name, failure);
			END IF;
		END;
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._local_reconcile_nodes() IS
'Reconcile the node slots of every local group, each on its own: one that fails records why and does not stop the others.';

/* The password of a group's own Redis, derived from its token so that one secret is kept. */
CREATE FUNCTION ray._redis_password(group_name text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT encode(sha256(convert_to(s.token || ':redis', 'UTF8')), 'hex')
	FROM ray.resource_group_secret s WHERE s.resource_group = group_name
$$;
COMMENT ON FUNCTION ray._redis_password(text) IS
'The password of the Redis pg_ray runs for a group''s highly available head; for the worker only.';

/*
 * The command line and environment a node starts with.  Every port comes
 * from the node's block:
 *   +0 GCS (head) or Redis, +1 dashboard, +2 Ray client server,
 *   +3 node manager, +4 object manager, +5 metrics export,
 *   +6 dashboard agent HTTP, +7 dashboard agent gRPC, +8 runtime env agent,
 *   +9 dashboard metrics, +10 autoscaler metrics, +16..+63 worker processes.
 * Secrets travel in the environment, which only the server's OS user can
 * read, never on the command line.
 */
CREATE FUNCTION ray._local_node_command(id bigint, host_gpus integer, OUT argv text[], OUT env text[])
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	head ray.node;
	redis ray.node;
	rg ray.resource_group;
	token text;
	b integer;
	c jsonb;
	redis_url text;
	redis_address text;
	redis_password text;
	slot_index integer;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id;
	SELECT count(*) INTO slot_index FROM ray.node o
	WHERE o.resource_group = n.resource_group AND o.worker_group = n.worker_group AND o.node_id < n.node_id;
	SELECT * INTO rg FROM ray.resource_group WHERE name = n.resource_group;
	SELECT s.token INTO token FROM ray.resource_group_secret s WHERE s.resource_group = n.resource_group;
	b := n.port_base;
	c := n.config;

	IF n.kind = 'redis' THEN
		-- Redis rewrites its process title, which takes the password off
		-- the command line; the title keeps the run directory, by which
		-- the worker finds the process again
		argv := ARRAY[current_setting('pg_ray.redis_server'),
			'--port', b::text, '--bind', '127.0.0.1', '--protected-mode', 'yes',
			'--dir', n.run_dir, '--appendonly', 'yes', '--save', '',
			'--logfile', '', '--daemonize', 'no',
			'--proc-title-template', format('{title} {listen-addr} %s/', n.run_dir),
			'--requirepass', ray._redis_password(n.resource_group)];
		env := '{}';
		RETURN;
	END IF;

	argv := ARRAY[current_setting('pg_ray.ray_executable'), 'start', '--block'];
	-- without the drain, a stopped node goes in seconds rather than 30
	env := ARRAY['RAY_AUTH_MODE=token', 'RAY_AUTH_TOKEN=' || token, 'RAY_USAGE_STATS_ENABLED=0',
				 'RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0'];
	IF n.kind = 'head' THEN
		argv := argv || ARRAY['--head', '--port=' || b,
			'--dashboard-host=127.0.0.1', '--dashboard-port=' || (b + 1),
			'--ray-client-server-port=' || (b + 2), '--include-dashboard=true'];
		env := env || ARRAY['DASHBOARD_METRIC_PORT=' || (b + 9), 'AUTOSCALER_METRIC_PORT=' || (b + 10),
							'RAY_JOB_START_TIMEOUT_SECONDS=120'];
		IF (c ->> 'ha')::boolean THEN
			redis_url := c ->> 'redis_url';
			IF redis_url IS NULL THEN
				SELECT * INTO redis FROM ray.node WHERE resource_group = n.resource_group AND kind = 'redis';
				redis_address := '127.0.0.1:' || redis.port_base;
				redis_password := ray._redis_password(n.resource_group);
			ELSE
				redis_address := substring(redis_url from '^rediss?://(?:[^@/]*@)?([^/?#]+)');
				IF redis_url ~ '^rediss://' THEN
					redis_address := 'rediss://' || redis_address;
				END IF;
				redis_password := substring(redis_url from '^rediss?://[^:@/]*:([^@/]*)@');
			END IF;
			-- the GCS keeps its tables in Redis, under a namespace of this group
			env := env || ARRAY['RAY_REDIS_ADDRESS=' || redis_address,
								'RAY_external_storage_namespace=pgray-' || (SELECT i.id FROM ray.installation i)
									|| '-' || n.resource_group];
			-- Ray hands the password to its GCS server on the command line
			-- whatever way it gets it (docs/security.md says what that means)
			IF redis_password IS NOT NULL THEN
				argv := argv || ARRAY['--redis-password=' || redis_password];
			END IF;
		END IF;
	ELSE
		SELECT * INTO head FROM ray.node WHERE resource_group = n.resource_group AND kind = 'head';
		argv := argv || ARRAY['--address=127.0.0.1:' || head.port_base];
		-- Workers of a GPU group share the host's GPUs by the distribution
		-- unit: with a unit of 1/3, three workers in a row get the same GPU.
		-- The GPUs of the host are counted by the worker (host_gpus); with
		-- none, the worker's GPUs are logical and Ray numbers them itself.
		IF (c ->> 'num_gpus')::integer > 0 AND host_gpus > 0 THEN
			env := env || ARRAY['CUDA_VISIBLE_DEVICES=' || (
				SELECT string_agg(((floor(slot_index * (c ->> 'num_gpus')::integer
										  * coalesce((c ->> 'gpu_distribution_unit')::numeric, 1))::integer
								   + k) % host_gpus)::text, ',')
				FROM generate_series(0, (c ->> 'num_gpus')::integer - 1) k)];
		END IF;
	END IF;
	argv := argv || ARRAY['--node-ip-address=127.0.0.1',
		'--node-manager-port=' || (b + 3), '--object-manager-port=' || (b + 4),
		'--metrics-export-port=' || (b + 5), '--dashboard-agent-listen-port=' || (b + 6),
		'--dashboard-agent-grpc-port=' || (b + 7), '--runtime-env-agent-port=' || (b + 8),
		'--min-worker-port=' || (b + 16), '--max-worker-port=' || (b + 63),
		'--num-cpus=' || (c ->> 'num_cpus'), '--num-gpus=' || (c ->> 'num_gpus'),
		'--memory=' || ((c ->> 'memory_mb')::bigint * 1024 * 1024),
		'--object-store-memory=' || ((c ->> 'object_store_mb')::bigint * 1024 * 1024),
		'--temp-dir=' || n.run_dir || '/',
		'--labels=pgray-node=' || n.node_id,
		'--disable-usage-stats', '--log-style=record'];
END
$$;
COMMENT ON FUNCTION ray._local_node_command(bigint, integer) IS
'The command line and environment (with the group''s token) of a local node; for the worker only.';

/*
 * What the worker does with the processes of local groups now, one row per
 * node: start it, check it still runs, or stop it.  Called in each round
 * after the slots were reconciled.
 */
CREATE FUNCTION ray._local_plan(host_gpus integer)
RETURNS TABLE (action text, node_id bigint, pid integer, run_dir text, port_base integer,
			   elapsed_ms bigint, argv text[], env text[])
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM ray._local_reconcile_nodes();
	RETURN QUERY
	WITH slot AS (
		SELECT n.*,
			   n.next_start_at <= now()
			   -- Redis before the head, the head before workers; a worker
			   -- waits for the head's GCS by itself, so it starts alongside
			   AND CASE n.kind
				   WHEN 'redis' THEN true
				   WHEN 'head' THEN NOT EXISTS (
					   SELECT FROM ray.node r WHERE r.resource_group = n.resource_group AND r.kind = 'redis'
					   AND (r.pid IS NULL OR r.stop_requested_at IS NOT NULL))
				   ELSE EXISTS (
					   SELECT FROM ray.node h WHERE h.resource_group = n.resource_group AND h.kind = 'head'
					   AND h.pid IS NOT NULL AND h.stop_requested_at IS NULL) END AS startable
		FROM ray.node n
	)
	SELECT CASE WHEN n.stop_requested_at IS NOT NULL THEN 'stop'
				WHEN n.pid IS NOT NULL THEN 'check'
				WHEN n.startable THEN 'start' ELSE 'wait' END,
		   n.node_id, n.pid, n.run_dir, n.port_base,
		   CASE WHEN n.stop_requested_at IS NOT NULL
				THEN (extract(epoch FROM now() - n.stop_requested_at) * 1000)::bigint
				-- a node to start later: when to look again
				WHEN n.pid IS NULL AND NOT n.startable
				THEN greatest((extract(epoch FROM n.next_start_at - now()) * 1000)::bigint, 0) END,
		   cmd.argv, cmd.env
	FROM slot n
	LEFT JOIN LATERAL ray._local_node_command(n.node_id, host_gpus) cmd
		ON n.pid IS NULL AND n.stop_requested_at IS NULL AND n.startable
	ORDER BY n.node_id;
END
$$;
COMMENT ON FUNCTION ray._local_plan(integer) IS
'The worker''s to-do list for local nodes: start, check or stop each, or wait (elapsed_ms: until when) to start it.';

/* The worker started a node's process, or found it already running. */
CREATE FUNCTION ray._local_node_started(id bigint, leader_pid integer, adopted boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
BEGIN
	UPDATE ray.node SET pid = leader_pid, started_at = clock_timestamp(), answered_at = NULL,
		ray_node_id = NULL, ray_state = NULL, idle_since = NULL
	WHERE node_id = id
	RETURNING * INTO n;
	IF n.kind = 'head' THEN
		UPDATE ray.resource_group SET
			dashboard_url = format('http://127.0.0.1:%s', n.port_base + 1),
			client_address = format('ray://127.0.0.1:%s', n.port_base + 2)
		WHERE name = n.resource_group;
	END IF;
	PERFORM ray._group_note(n.resource_group,
		format('%s %s (pid %s)', ray._node_label(n),
			   CASE WHEN adopted THEN 'found running and adopted' ELSE 'started' END, leader_pid));
END
$$;
COMMENT ON FUNCTION ray._local_node_started(bigint, integer, boolean) IS
'Record the pid of a node''s process, started or adopted.';

/*
 * A node's process ended without being asked to.  It is started again after
 * a backoff that grows with failures in a row; a group whose head keeps
 * failing becomes FAILED, with the reason, and is still retried.  A head
 * without Redis loses the cluster's state, so its workers restart with it.
 */
CREATE FUNCTION ray._local_node_exited(id bigint, why text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	rg ray.resource_group;
	w ray.node;
	failures integer;
	delay integer;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id FOR UPDATE;
	IF NOT FOUND OR n.pid IS NULL THEN
		RETURN;
	END IF;
	SELECT * INTO rg FROM ray.resource_group WHERE name = n.resource_group FOR UPDATE;
	-- a node that came up (Ray reported it, or it ran for a minute) had
	-- succeeded: its failures in a row start again
	failures := CASE WHEN n.answered_at IS NOT NULL OR n.ray_state = 'ALIVE'
					   OR n.started_at < now() - interval '60 seconds' THEN 1
				ELSE n.start_failures + 1 END;
	delay := least(60, (2 ^ least(failures - 1, 6))::integer) - 1;
	UPDATE ray.node SET pid = NULL, last_exit = why, start_failures = failures,
		next_start_at = now() + make_interval(secs => delay),
		answered_at = NULL, ray_state = 'DEAD'
	WHERE node_id = id;
	PERFORM ray._group_note(n.resource_group,
		format('%s exited: %s; starting it again%s', ray._node_label(n), why,
			   CASE WHEN delay > 0 THEN format(' in %s s', delay) ELSE '' END));
	IF n.kind = 'worker' OR rg.delete_requested_at IS NOT NULL THEN
		RETURN;
	END IF;
	UPDATE ray.resource_group SET unreachable_since = coalesce(unreachable_since, now()),
		last_error = format('%s exited: %s', ray._node_label(n), why)
	WHERE name = n.resource_group;
	IF n.kind = 'head' AND NOT coalesce((n.config ->> 'ha')::boolean, false) THEN
		FOR w IN SELECT * FROM ray.node WHERE resource_group = n.resource_group AND kind = 'worker'
				 AND stop_requested_at IS NULL LOOP
			PERFORM ray._stop_node(w.node_id, 'the head restarts without HA, so the cluster starts anew', true);
		END LOOP;
	END IF;
	-- Job supervisors live on the head: its runs died with it.  Even with
	-- HA, Ray keeps listing them as running until its job manager is asked
	-- to act, so they are given up on now (and stopped should they show up
	-- again) and requeued as new attempts.
	IF n.kind = 'head' THEN
		PERFORM ray._forget_group_runs(n.resource_group,
			format('the head node of resource group "%s" died (%s)', n.resource_group, why));
	END IF;
	IF failures >= 5 AND rg.state <> 'FAILED' THEN
		PERFORM ray._group_transition(n.resource_group, 'FAILED',
			format('%s failed %s times in a row: %s', ray._node_label(n), failures, why), 'pg_ray worker');
		UPDATE ray.resource_group SET last_error = format('%s failed %s times in a row: %s',
			ray._node_label(n), failures, why) WHERE name = n.resource_group;
	ELSIF rg.state IN ('READY', 'UPDATING') THEN
		PERFORM ray._group_transition(n.resource_group, 'DEGRADED',
			format('%s exited: %s', ray._node_label(n), why), 'pg_ray worker');
		UPDATE ray.resource_group SET last_error = format('%s exited: %s', ray._node_label(n), why)
		WHERE name = n.resource_group;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._local_node_exited(bigint, text) IS
'A node''s process ended unasked: record why, schedule its restart with backoff, degrade or fail its group.';

/*
 * The processes of a node asked to stop are all gone: start it again with
 * its new config, or remove its slot.
 */
CREATE FUNCTION ray._local_node_gone(id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	desired jsonb;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	desired := ray._node_desired_config(n.resource_group, n.kind, n.worker_group);
	IF n.restart_after_stop AND desired IS NOT NULL
		AND (SELECT delete_requested_at FROM ray.resource_group WHERE name = n.resource_group) IS NULL THEN
		UPDATE ray.node SET pid = NULL, stop_requested_at = NULL, stop_reason = NULL,
			restart_after_stop = false, config = desired, next_start_at = now(),
			answered_at = NULL, ray_node_id = NULL, ray_state = NULL, idle_since = NULL, start_failures = 0
		WHERE node_id = id;
		PERFORM ray._group_note(n.resource_group, format('%s stopped; starting it again', ray._node_label(n)));
	ELSE
		DELETE FROM ray.node WHERE node_id = id;
		PERFORM ray._group_note(n.resource_group, format('%s stopped and removed', ray._node_label(n)));
	END IF;
END
$$;
COMMENT ON FUNCTION ray._local_node_gone(bigint) IS
'A stopped node''s processes are gone: restart it with its desired config, or remove it.';

/* The ports of a node that never ran are taken by something else: move it. */
CREATE FUNCTION ray._local_ports_busy(id bigint, port integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id FOR UPDATE;
	IF n.started_at IS NULL THEN
		UPDATE ray.node SET port_base = ray._allocate_port_base(n.port_base) WHERE node_id = id
		RETURNING * INTO n;
		PERFORM ray._group_note(n.resource_group,
			format('port %s is in use by another program; %s moves to ports %s-%s',
				   port, ray._node_label(n), n.port_base, n.port_base + 63));
	ELSE
		-- a node that ran keeps its ports (workers find the head by them)
		UPDATE ray.node SET next_start_at = now() + interval '2 seconds',
			last_exit = format('port %s is still in use; waiting for it', port)
		WHERE node_id = id;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._local_ports_busy(bigint, integer) IS
'A port of a node is taken: move a never-started node to other ports; a node that ran waits for its own.';

/*
 * What Ray's node state API (GET /api/v0/nodes?detail=1) says about a local
 * group, or why it could not be asked.  Nodes are matched to their slots by
 * the pgray-node label they were started with.  The group becomes READY once
 * its head answers, every worker group has its minimum of live workers and
 * no node waits to restart with a new spec; it is UPDATING while a change is
 * rolled out and DEGRADED while a worker group is short of its minimum.
 * Returns how many milliseconds until the group is to be observed again.
 */
CREATE FUNCTION ray._apply_local_nodes(group_name text, nodes jsonb, error text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	head ray.node;
	short text;
	converged boolean;
	alive integer;
	fast integer := 500;
	slow integer := (extract(epoch FROM current_setting('pg_ray.observe_interval')::interval) * 1000)::integer;
BEGIN
	SELECT * INTO rg FROM ray.resource_group WHERE name = group_name AND provider = 'local' FOR UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT * INTO head FROM ray.node WHERE resource_group = group_name AND kind = 'head';
	IF error IS NOT NULL THEN
		-- a head that is still coming up does not answer yet: that is no failure
		IF head.answered_at IS NULL AND head.started_at > now() - interval '2 minutes' THEN
			RETURN fast;
		END IF;
		PERFORM ray._apply_group_check(group_name, NULL, error);
		RETURN fast;
	END IF;

	UPDATE ray.node SET answered_at = now() WHERE node_id = head.node_id;
	-- the newest report of each slot (a restarted node leaves a DEAD entry)
	WITH reported AS (
		SELECT DISTINCT ON (o ->> 'label') o
		FROM (SELECT r || jsonb_build_object('label', r #>> '{labels,pgray-node}') AS o
			  FROM jsonb_array_elements(coalesce(nodes #> '{data,result,result}', '[]')) r) x
		WHERE o ->> 'label' ~ '^[0-9]{1,18}$'
		ORDER BY o ->> 'label', o ->> 'state' = 'ALIVE' DESC, (o ->> 'start_time_ms')::bigint DESC
	)
	UPDATE ray.node n SET
		ray_node_id = CASE WHEN n.started_at IS NULL THEN NULL ELSE r.o ->> 'node_id' END,
		ray_state = CASE WHEN n.pid IS NULL THEN 'DEAD' ELSE r.o ->> 'state' END,
		resources_total = r.o -> 'resources_total',
		observed_at = now()
	FROM reported r
	WHERE n.resource_group = group_name AND n.node_id = (r.o ->> 'label')::bigint;
	UPDATE ray.worker_group w SET live_workers = (
		SELECT count(*) FROM ray.node n
		WHERE n.resource_group = w.resource_group AND n.worker_group = w.name
		  AND n.stop_requested_at IS NULL AND n.pid IS NOT NULL AND n.ray_state = 'ALIVE')
	WHERE w.resource_group = group_name;
	IF rg.unreachable_since IS NOT NULL THEN
		PERFORM ray._apply_group_check(group_name, NULL, NULL);
	END IF;
	IF rg.delete_requested_at IS NOT NULL THEN
		RETURN slow;
	END IF;

	SELECT string_agg(format('worker group %s has %s of its %s workers alive', name, live_workers,
							 min_workers), '; ' ORDER BY name)
	INTO short
	FROM ray.worker_group WHERE resource_group = group_name AND live_workers < min_workers;
	SELECT count(*) INTO alive FROM ray.node
	WHERE resource_group = group_name AND kind = 'worker' AND ray_state = 'ALIVE' AND pid IS NOT NULL;
	converged := short IS NULL AND NOT EXISTS (
		SELECT FROM ray.node n WHERE n.resource_group = group_name
		AND ((n.stop_requested_at IS NOT NULL AND n.restart_after_stop)
			 OR (n.kind <> 'redis' AND n.config IS DISTINCT FROM
				 ray._node_desired_config(group_name, n.kind, n.worker_group))));
	IF converged THEN
		UPDATE ray.resource_group SET observed_generation = generation WHERE name = group_name;
		IF rg.state <> 'READY' THEN
			PERFORM ray._group_transition(group_name, 'READY',
				format('the head answers at %s with %s worker node%s alive', rg.dashboard_url, alive,
					   CASE WHEN alive = 1 THEN '' ELSE 's' END), 'pg_ray worker');
		END IF;
		RETURN slow;
	END IF;
	IF rg.state = 'READY' AND rg.observed_generation < rg.generation THEN
		PERFORM ray._group_transition(group_name, 'UPDATING',
			coalesce(short, 'nodes restart with their new spec'), 'pg_ray worker');
	ELSIF rg.state = 'READY' THEN
		PERFORM ray._group_transition(group_name, 'DEGRADED', short, 'pg_ray worker');
		UPDATE ray.resource_group SET last_error = short WHERE name = group_name;
	END IF;
	RETURN fast;
END
$$;
COMMENT ON FUNCTION ray._apply_local_nodes(text, jsonb, text) IS
'Record what Ray''s node state API says of a local group (or why it could not be asked) and set the group''s state; returns the milliseconds until the next look.';

/*
 * Autoscaling on Ray's logical demand, from GET /api/cluster_status: tasks,
 * actors and placement group bundles that wait because no node has room
 * scale their worker group up, by at most pg_ray.scale_up_step nodes per
 * pg_ray.scale_cooldown; nodes that ran nothing for the group's
 * idle_timeout_seconds are stopped, down to min_workers.  A CPU-only bundle
 * is for the CPU worker groups (a GPU group takes it only when no CPU group
 * could), a bundle that asks for GPUs for the GPU groups, so CPU and GPU
 * groups scale independently.  Every decision is an event with its reason.
 */
CREATE FUNCTION ray._apply_cluster_status(group_name text, status jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	wg record;
	idle_node ray.node;
	report jsonb := status #> '{data,clusterStatus,loadMetricsReport}';
	idle_timeout integer;
	demand jsonb;
	add integer;
	stopped integer;
BEGIN
	SELECT * INTO rg FROM ray.resource_group WHERE name = group_name AND provider = 'local' FOR UPDATE;
	IF NOT FOUND OR report IS NULL OR rg.delete_requested_at IS NOT NULL
		OR rg.state NOT IN ('READY', 'DEGRADED', 'UPDATING') THEN
		RETURN;
	END IF;
	idle_timeout := coalesce((rg.options ->> 'idle_timeout_seconds')::integer, 60);

	-- what each node uses now; a node is idle when no CPU, GPU or memory is taken
	UPDATE ray.node n SET
		resources_used = u.usage,
		idle_since = CASE WHEN u.busy THEN NULL ELSE coalesce(n.idle_since, now()) END
	FROM (SELECT key AS ray_node_id, value AS usage,
				 EXISTS (SELECT FROM jsonb_each(value) r
						 WHERE r.key IN ('CPU', 'GPU', 'memory')
						   AND (r.value ->> 0)::numeric > 0) AS busy
		  FROM jsonb_each(coalesce(report -> 'usageByNode', '{}'))) u
	WHERE n.resource_group = group_name AND n.ray_node_id = u.ray_node_id;

	-- waiting tasks and actors, and the bundles of waiting placement groups
	SELECT coalesce(jsonb_agg(jsonb_build_object('bundle', x.bundle, 'count', x.count)), '[]')
	INTO demand
	FROM (SELECT d -> 0 AS bundle, (d ->> 1)::integer AS count
		  FROM jsonb_array_elements(coalesce(report -> 'resourceDemand', '[]')) d
		  UNION ALL
		  SELECT b -> 0, (b ->> 1)::integer * (p ->> 1)::integer
		  FROM jsonb_array_elements(coalesce(report -> 'pgDemand', '[]')) p,
			   jsonb_array_elements(coalesce(p #> '{0,bundles}', '[]')) b) x;

	FOR wg IN
		SELECT w.*, s.num_cpus AS cpus, s.memory_mb, ceil(s.num_gpus)::integer AS gpus,
			   -- demand this worker group is the one to serve, in nodes' worth
			   (SELECT coalesce(sum(d.count * greatest(
						coalesce((d.bundle ->> 'CPU')::numeric, 0) / nullif(s.num_cpus, 0),
						coalesce((d.bundle ->> 'GPU')::numeric, 0) / nullif(ceil(s.num_gpus), 0),
						0.0001)), 0)
				FROM jsonb_to_recordset(demand) AS d(bundle jsonb, count integer)
				WHERE coalesce((d.bundle ->> 'CPU')::numeric, 0) <= s.num_cpus
				  AND coalesce((d.bundle ->> 'GPU')::numeric, 0) <= ceil(s.num_gpus)
				  AND coalesce((d.bundle ->> 'memory')::numeric, 0) <= s.memory_mb * 1048576.0
				  AND NOT EXISTS (SELECT FROM jsonb_object_keys(d.bundle) k
								  WHERE k NOT IN ('CPU', 'GPU', 'memory', 'object_store_memory'))
				  AND (coalesce((d.bundle ->> 'GPU')::numeric, 0) > 0) = (w.resource_type = 'GPU')
				   OR (w.resource_type = 'GPU' AND coalesce((d.bundle ->> 'GPU')::numeric, 0) = 0
					   AND coalesce((d.bundle ->> 'CPU')::numeric, 0) <= s.num_cpus
					   AND NOT EXISTS (
						   SELECT FROM ray.worker_group c JOIN ray.node_spec cs ON cs.name = c.spec
						   WHERE c.resource_group = w.resource_group AND c.resource_type = 'CPU'
							 AND cs.num_cpus >= coalesce((d.bundle ->> 'CPU')::numeric, 0)))
			   ) AS wanted_nodes,
			   (SELECT string_agg(format('%s x%s', d.bundle, d.count), ', ') FROM jsonb_to_recordset(demand) AS d(bundle jsonb, count integer)) AS demand,
			   (SELECT count(*) FROM ray.node nd WHERE nd.resource_group = w.resource_group
				  AND nd.worker_group = w.name AND nd.stop_requested_at IS NULL
				  AND (nd.pid IS NULL OR nd.ray_state IS DISTINCT FROM 'ALIVE')) AS starting
		FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
		WHERE w.resource_group = group_name
		ORDER BY w.name
		FOR UPDATE OF w
	LOOP
		IF wg.wanted_nodes > 0 THEN
			-- nodes still starting will take the demand first; and a cool-down between steps
			IF wg.starting > 0 OR wg.desired_workers >= wg.max_workers
				OR wg.last_scaled_at > now() - current_setting('pg_ray.scale_cooldown')::interval THEN
				CONTINUE;
			END IF;
			add := least(ceil(wg.wanted_nodes)::integer, wg.max_workers - wg.desired_workers,
						 current_setting('pg_ray.scale_up_step')::integer);
			UPDATE ray.worker_group SET desired_workers = desired_workers + add, last_scaled_at = now()
			WHERE resource_group = group_name AND name = wg.name;
			PERFORM ray._group_note(group_name,
				format('scaling worker group %s up from %s to %s workers: Ray has demand it cannot place (%s)',
					   wg.name, wg.desired_workers, wg.desired_workers + add, wg.demand),
				'pg_ray autoscaler');
			CONTINUE;
		END IF;

		-- no demand for this group: stop what idled too long, down to its minimum
		stopped := 0;
		FOR idle_node IN SELECT * FROM ray.node
				 WHERE resource_group = group_name AND worker_group = wg.name
				   AND stop_requested_at IS NULL AND ray_state = 'ALIVE'
				   AND idle_since < now() - make_interval(secs => idle_timeout)
				 ORDER BY idle_since, node_id DESC
				 LIMIT greatest(wg.desired_workers - wg.min_workers, 0) LOOP
			PERFORM ray._stop_node(idle_node.node_id, format('idle for %s s, longer than the idle timeout of %s s',
				extract(epoch FROM now() - idle_node.idle_since)::integer, idle_timeout));
			stopped := stopped + 1;
		END LOOP;
		IF stopped > 0 THEN
			UPDATE ray.worker_group SET desired_workers = desired_workers - stopped, last_scaled_at = now()
			WHERE resource_group = group_name AND name = wg.name;
			PERFORM ray._group_note(group_name,
				format('scaling worker group %s down from %s to %s workers: %s node%s idle longer than %s s',
					   wg.name, wg.desired_workers, wg.desired_workers - stopped, stopped,
					   CASE WHEN stopped = 1 THEN ' was' ELSE 's were' END, idle_timeout),
				'pg_ray autoscaler');
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._apply_cluster_status(text, jsonb) IS
'Scale the worker groups of a local group on Ray''s pending demand and idle nodes (GET /api/cluster_status), recording each decision.';

/*
 * What "ray status" prints for a group's cluster: its nodes, the resources
 * in use and the demand Ray cannot place yet, as Ray's autoscaler reports
 * them now.  For those who may use the group.
 */
CREATE FUNCTION ray.cluster_status(resource_group text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(cluster_status.resource_group, 'none');
	conn record;
	report jsonb;
BEGIN
	IF NOT ray._can_use(rg.name, ray._calling_role()) THEN
		RAISE EXCEPTION 'permission denied for resource group "%"', rg.name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'A ray_admin can grant it with ray.grant_usage().';
	END IF;
	SELECT * INTO conn FROM ray._group_connection(rg.name);
	IF conn.url IS NULL OR (rg.provider = 'local' AND NOT EXISTS (
			SELECT FROM ray.node WHERE node.resource_group = rg.name AND kind = 'head'
			AND pid IS NOT NULL AND answered_at IS NOT NULL)) THEN
		RAISE EXCEPTION 'resource group "%" has no running head to ask', rg.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('It is %s.', rg.state),
				  HINT = 'Its nodes are in ray.nodes and its history in ray.resource_group_event.';
	END IF;
	BEGIN
		report := ray._http_cluster_status(conn.url, conn.token, conn.ca_file)::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		report := NULL;
	END;
	IF jsonb_typeof(report #> '{data,clusterStatus}') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION 'the Ray dashboard of resource group "%" sent no cluster status', rg.name
			USING ERRCODE = 'protocol_violation',
				  DETAIL = 'GET /api/cluster_status?format=1 gave no data.clusterStatus text.';
	END IF;
	RETURN report #>> '{data,clusterStatus}';
END
$$;
COMMENT ON FUNCTION ray.cluster_status(text) IS
'What "ray status" prints for a resource group''s cluster: nodes, resources in use, pending demand. For those who may use the group.';

/* The nodes of local resource groups as Ray and pg_ray see them. */
CREATE VIEW ray.nodes AS
SELECT n.resource_group,
	   n.node_id,
	   n.kind,
	   n.worker_group,
	   CASE WHEN n.stop_requested_at IS NOT NULL THEN 'STOPPING'
			WHEN n.pid IS NULL AND n.started_at IS NULL THEN 'PENDING'
			WHEN n.pid IS NULL THEN 'RESTARTING'
			WHEN n.kind = 'redis' THEN 'RUNNING'
			ELSE coalesce(n.ray_state, 'STARTING') END AS state,
	   n.ray_node_id,
	   n.config ->> 'spec' AS spec,
	   CASE WHEN n.resources_total IS NOT NULL THEN coalesce((n.resources_total ->> 'CPU')::numeric, 0) END AS cpus,
	   CASE WHEN n.resources_total IS NOT NULL THEN coalesce((n.resources_total ->> 'GPU')::numeric, 0) END AS gpus,
	   (n.resources_used #>> '{CPU,0}')::numeric AS cpus_used,
	   (n.resources_used #>> '{GPU,0}')::numeric AS gpus_used,
	   n.idle_since,
	   n.pid,
	   n.port_base AS port,
	   n.started_at,
	   n.observed_at,
	   n.stop_reason,
	   n.last_exit
FROM ray.node n;
COMMENT ON VIEW ray.nodes IS
'Nodes of local resource groups: what runs (pid, first port), what Ray reports (state, node id, resources) and why a node stops or stopped.';

/* ------------------------------------------------------------------------
 * Models for batch inference
 *
 * A model is registered by name; registering the name again makes a new
 * version.  It is kept in the database (data) or named by where it lives
 * (uri): a path or URI of its file, "module:Class" of a Python class, the
 * base URL of an OpenAI-compatible endpoint, or a model id for vLLM.
 * ------------------------------------------------------------------------
 */

CREATE TABLE ray.model (
	name text NOT NULL
		CONSTRAINT model_name_check CHECK (name ~ '^[a-z][a-z0-9_-]{0,47}$'),
	version integer NOT NULL CONSTRAINT model_version_check CHECK (version >= 1),
	kind text NOT NULL
		CONSTRAINT model_kind_check CHECK (kind IN ('sklearn', 'onnx', 'python', 'http', 'vllm')),
	data bytea,
	uri text,
	options jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT model_options_check CHECK (jsonb_typeof(options) = 'object'),
	owner name NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (name, version),
	CONSTRAINT model_data_or_uri CHECK ((data IS NULL) <> (uri IS NULL))
);
COMMENT ON TABLE ray.model IS
'Models for batch inference, by name and version: kept here (data) or named by where they live (uri).';

/* The rules of a model's kind and location; errors in PostgreSQL's style. */
CREATE FUNCTION ray._check_model(kind text, data bytea, uri text, options jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF kind IS NULL THEN
		RAISE EXCEPTION 'model kind must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Model kinds: sklearn, onnx, python, http, vllm.';
	END IF;
	IF kind NOT IN ('sklearn', 'onnx', 'python', 'http', 'vllm') THEN
		RAISE EXCEPTION 'unknown model kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Model kinds: sklearn, onnx, python, http, vllm.';
	END IF;
	IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'model options must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"batch_size": 1024}.';
	END IF;
	IF data IS NULL AND uri IS NULL THEN
		RAISE EXCEPTION 'a model needs its data or a uri'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the model''s bytes as data, or where it lives as uri.';
	END IF;
	IF data IS NOT NULL THEN
		IF kind NOT IN ('sklearn', 'onnx', 'python') THEN
			RAISE EXCEPTION 'a model of kind "%" cannot be stored in the database', kind
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = CASE kind WHEN 'http' THEN 'Give its endpoint as uri => ''https://...''.'
									   ELSE 'Give the model id or path as uri.' END;
		END IF;
		IF kind = 'python' AND coalesce(options ->> 'class', '') !~ '^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$' THEN
			RAISE EXCEPTION 'a python model kept in the database needs its class in options'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Its data is the zip of its working directory, such as ray.zip_directory returns.',
					  HINT = 'Add "class": "module:Class" to options, such as {"class": "scoring.model:ClickModel"}.';
		END IF;
		IF length(data) = 0 THEN
			RAISE EXCEPTION 'model data must not be empty'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN;
	END IF;
	IF kind = 'python' AND uri !~ '^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$' THEN
		RAISE EXCEPTION 'invalid Python class "%"', uri
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A python model is named as module:Class, such as scoring.model:ClickModel.';
	END IF;
	IF kind = 'python' AND options ? 'working_dir' AND coalesce(options ->> 'working_dir', '') !~ '^/' THEN
		RAISE EXCEPTION 'invalid working_dir "%"', options ->> 'working_dir'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The working directory of a python model is an absolute path that every node of the cluster can read.';
	END IF;
	IF kind = 'http' AND uri !~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$' THEN
		RAISE EXCEPTION 'invalid endpoint URL "%"', uri
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'An http model is the base URL of an OpenAI-compatible endpoint, such as http://127.0.0.1:8000/v1, without credentials or a query.',
				  HINT = 'Pass an API key in options as "api_key_env", the name of an environment variable of the cluster.';
	END IF;
	IF kind IN ('sklearn', 'onnx', 'vllm') AND (uri = '' OR uri ~ '[[:cntrl:]]') THEN
		RAISE EXCEPTION 'invalid model location "%"', uri
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Give a path or URI the cluster can read, such as /models/ctr.onnx or s3://bucket/ctr.skops.';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_model(text, bytea, text, jsonb) IS
'Raise an error unless kind, data or uri, and options describe a model pg_ray can run.';

/* Store a new version of a model; the owner of its first version keeps the name. */
CREATE FUNCTION ray._register_model(model_name text, kind text, data bytea, uri text, options jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller name := ray._caller();
	first_owner name;
	next_version integer;
BEGIN
	PERFORM ray._check_name('model', model_name);
	PERFORM ray._check_model(kind, data, uri, coalesce(options, '{}'));
	-- one registration of a name at a time, so versions never collide
	PERFORM pg_advisory_xact_lock(hashtext('pg_ray model ' || model_name));
	SELECT owner, max(version) OVER () + 1 INTO first_owner, next_version
	FROM ray.model WHERE name = model_name ORDER BY version LIMIT 1;
	IF first_owner IS NOT NULL AND first_owner <> caller AND NOT ray._is_admin(ray._calling_role()) THEN
		RAISE EXCEPTION 'model "%" belongs to another role', model_name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Choose another name.';
	END IF;
	INSERT INTO ray.model (name, version, kind, data, uri, options, owner)
	VALUES (model_name, coalesce(next_version, 1), kind, data, uri, coalesce(options, '{}'),
			coalesce(first_owner, caller));
	RETURN coalesce(next_version, 1);
END
$$;
COMMENT ON FUNCTION ray._register_model(text, text, bytea, text, jsonb) IS
'Store a new version of a model (bytes or location) after checking it; returns its version.';

CREATE FUNCTION ray.register_model(name text, kind text, data bytea, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._register_model(register_model.name, register_model.kind, register_model.data, NULL,
							   register_model.options)
$$;
COMMENT ON FUNCTION ray.register_model(text, text, bytea, jsonb) IS
'Register a model kept in the database (sklearn or onnx bytes); a known name gets a new version, which is returned.';

CREATE FUNCTION ray.register_model(name text, kind text, uri text, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._register_model(register_model.name, register_model.kind, NULL, register_model.uri,
							   register_model.options)
$$;
COMMENT ON FUNCTION ray.register_model(text, text, text, jsonb) IS
'Register a model by where it lives: a path or URI, module:Class, an endpoint URL or a vLLM model id; returns its version.';

CREATE FUNCTION ray.drop_model(name text, version integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	dropped integer;
BEGIN
	PERFORM ray._check_name('model', drop_model.name);
	IF NOT EXISTS (SELECT FROM ray.model m WHERE m.name = drop_model.name
				   AND (m.owner = ray._caller() OR ray._is_admin(ray._calling_role()))) THEN
		RAISE EXCEPTION 'model "%" does not exist', drop_model.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'List your models with SELECT name, version FROM ray.models.';
	END IF;
	DELETE FROM ray.model m
	WHERE m.name = drop_model.name AND (drop_model.version IS NULL OR m.version = drop_model.version);
	GET DIAGNOSTICS dropped = ROW_COUNT;
	IF dropped = 0 THEN
		RAISE EXCEPTION 'model "%" has no version %', drop_model.name, drop_model.version
			USING ERRCODE = 'undefined_object';
	END IF;
	RETURN dropped;
END
$$;
COMMENT ON FUNCTION ray.drop_model(text, integer) IS
'Drop a model (every version, or one); returns how many versions were dropped. Owners and admins only.';

/* ------------------------------------------------------------------------
 * Batch inference: score a table or a query with a registered model on a
 * resource group, and publish the results into a table exactly once.
 *
 * ray.batch_inference plans the run as the calling role (so that what the
 * caller may not read or write is an error before anything runs) and
 * queues it as a job of kind batch_inference whose entrypoint is the
 * runner (src/runner), uploaded with the job.  When an attempt begins, the
 * worker makes it a login role that is a member of the job's owner and a
 * staging table; the runner reads the source as that role and writes the
 * results into the staging table.  When Ray reports success the job is
 * PUBLISHING and the worker moves the staged rows into the target as the
 * owner, in the transaction that marks the job SUCCEEDED (src/publish.c).
 * Whatever way an attempt ends, its role and staging table go with it.
 * ------------------------------------------------------------------------
 */

-- Staging tables of runs; only their run and the job's owner are granted them.
CREATE SCHEMA ray_staging;
REVOKE ALL ON SCHEMA ray_staging FROM PUBLIC;
GRANT USAGE ON SCHEMA ray_staging TO PUBLIC;
COMMENT ON SCHEMA ray_staging IS
'Staging tables of batch inference runs, one per attempt, dropped when the attempt ends.';

CREATE TABLE ray.batch_run (
	job_id bigint PRIMARY KEY REFERENCES ray.job (job_id) ON DELETE CASCADE,
	target text NOT NULL,
	plan jsonb NOT NULL CONSTRAINT batch_run_plan_check CHECK (jsonb_typeof(plan) = 'object')
);
CREATE INDEX ON ray.batch_run (target);
COMMENT ON TABLE ray.batch_run IS
'What a batch inference job reads, runs and writes, as ray.batch_inference_plan showed it.';

-- Read by the worker only: the run's password must not be readable by users.
CREATE TABLE ray.batch_run_secret (
	job_id bigint PRIMARY KEY REFERENCES ray.job (job_id) ON DELETE CASCADE,
	attempt integer NOT NULL,
	role_name name NOT NULL UNIQUE,
	password text NOT NULL,
	staging_table text NOT NULL,
	-- the runner with this attempt's credentials, the working directory it is submitted with
	package text NOT NULL CHECK (package ~ '^_ray_pkg_[0-9a-f]{40}\.zip$'),
	content bytea NOT NULL
);
COMMENT ON TABLE ray.batch_run_secret IS
'The login role, password and staging table of the current attempt of each batch inference job.';

/* Types a model of kind sklearn or onnx can take as input. */
CREATE FUNCTION ray._is_numeric_type(type_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT type_name IN ('smallint', 'integer', 'bigint', 'real', 'double precision', 'boolean')
		OR type_name LIKE 'numeric%'
$$;
COMMENT ON FUNCTION ray._is_numeric_type(text) IS
'True for the column types that become numbers in a model''s input matrix.';

/* The options of a batch inference run, checked, with their defaults. */
CREATE FUNCTION ray._batch_options(options jsonb, model_kind text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	known constant text[] := ARRAY['batch_size', 'concurrency', 'num_cpus', 'num_gpus', 'output',
								   'output_type', 'partitions', 'shard_key', 'max_attempts',
								   'read_concurrency', 'write_concurrency'];
	io_option text;
	unknown text;
	result jsonb;
BEGIN
	IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'batch inference options must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"batch_size": 4096, "concurrency": 2}.';
	END IF;
	SELECT k INTO unknown FROM jsonb_object_keys(options) k WHERE k <> ALL (known) LIMIT 1;
	IF unknown IS NOT NULL THEN
		RAISE EXCEPTION 'unknown batch inference option "%"', unknown
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Options: ' || array_to_string(known, ', ') || '.';
	END IF;
	-- concurrency NULL: up to 2 replicas, as many as the group holds (decided at submission)
	result := jsonb_build_object('batch_size', 4096, 'concurrency', NULL, 'num_cpus', 1, 'num_gpus', 0,
								 'output', 'probability', 'partitions', NULL, 'max_attempts', 3)
		|| options;
	IF jsonb_typeof(result -> 'batch_size') <> 'number' OR (result ->> 'batch_size')::numeric NOT BETWEEN 1 AND 10000000
		OR (result ->> 'batch_size')::numeric % 1 <> 0 THEN
		RAISE EXCEPTION 'batch_size must be a whole number from 1 to 10000000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (jsonb_typeof(result -> 'concurrency') = 'null'
			OR (jsonb_typeof(result -> 'concurrency') = 'number'
			 AND (result ->> 'concurrency')::numeric BETWEEN 1 AND 1000
			 AND (result ->> 'concurrency')::numeric % 1 = 0)
			OR (jsonb_typeof(result -> 'concurrency') = 'array' AND jsonb_array_length(result -> 'concurrency') = 2
				AND jsonb_typeof(result -> 'concurrency' -> 0) = 'number' AND jsonb_typeof(result -> 'concurrency' -> 1) = 'number'
				AND (result -> 'concurrency' ->> 0)::numeric >= 1
				AND (result -> 'concurrency' ->> 1)::numeric BETWEEN (result -> 'concurrency' ->> 0)::numeric AND 1000)) THEN
		RAISE EXCEPTION 'concurrency must be a number of model replicas from 1 to 1000, or [min, max]'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('It is %s.', result -> 'concurrency');
	END IF;
	IF jsonb_typeof(result -> 'num_cpus') <> 'number' OR (result ->> 'num_cpus')::numeric < 0 THEN
		RAISE EXCEPTION 'num_cpus must be a number of CPUs per model replica, 0 or more'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_typeof(result -> 'num_gpus') <> 'number' OR (result ->> 'num_gpus')::numeric < 0 THEN
		RAISE EXCEPTION 'num_gpus must be a number of GPUs per model replica, 0 or more'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF result ->> 'output' IS NULL OR result ->> 'output' NOT IN ('probability', 'label') THEN
		RAISE EXCEPTION 'output must be "probability" or "label"'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A classifier''s prediction is the probability of its positive class, or with "label" its predicted class.';
	END IF;
	IF result ? 'output_type' AND (jsonb_typeof(result -> 'output_type') <> 'string'
								   OR to_regtype(result ->> 'output_type') IS NULL) THEN
		RAISE EXCEPTION 'output_type "%" is not a type', result ->> 'output_type'
			USING ERRCODE = 'undefined_object',
				  HINT = 'Name a type such as double precision, integer or text.';
	END IF;
	IF jsonb_typeof(result -> 'partitions') NOT IN ('null', 'number')
		OR (result ->> 'partitions')::numeric NOT BETWEEN 1 AND 10000
		OR (result ->> 'partitions')::numeric % 1 <> 0 THEN
		RAISE EXCEPTION 'partitions must be a whole number from 1 to 10000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF result ? 'shard_key' AND (jsonb_typeof(result -> 'shard_key') <> 'string' OR result ->> 'shard_key' !~ '\S') THEN
		RAISE EXCEPTION 'shard_key must be an expression over the source''s columns'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"shard_key": "user_id", "partitions": 8}.';
	END IF;
	IF jsonb_typeof(result -> 'max_attempts') <> 'number' OR (result ->> 'max_attempts')::numeric NOT BETWEEN 1 AND 100
		OR (result ->> 'max_attempts')::numeric % 1 <> 0 THEN
		RAISE EXCEPTION 'max_attempts must be a whole number from 1 to 100'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOREACH io_option IN ARRAY ARRAY['read_concurrency', 'write_concurrency'] LOOP
		IF result ? io_option AND (jsonb_typeof(result -> io_option) <> 'number'
								   OR (result ->> io_option)::numeric NOT BETWEEN 1 AND 64
								   OR (result ->> io_option)::numeric % 1 <> 0) THEN
			RAISE EXCEPTION '% must be a whole number from 1 to 64', io_option
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'It is how many read or write tasks, each with a connection to PostgreSQL, may run at once.';
		END IF;
	END LOOP;
	IF model_kind = 'vllm' AND (result ->> 'num_gpus')::numeric = 0 THEN
		result := result || '{"num_gpus": 1}';
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION ray._batch_options(jsonb, text) IS
'Check the options of a batch inference run and fill in their defaults.';

/*
 * Plan a run as the calling role: what it reads, with which model, and what
 * it writes where.  Runs with the caller's privileges, so reading the source
 * (LIMIT 0) fails here as it would in the run, and with the caller's
 * search_path (no SET clause), so that names resolve as the caller means
 * them; every name of its own is schema-qualified.
 */
CREATE FUNCTION ray._plan_batch_inference(source text, model text, target text, key text[],
										  input_columns text[], output_column text, mode text,
										  create_target boolean, options jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	is_query boolean;
	source_oid oid;
	source_kind "char";
	source_name text;
	columns jsonb;
	read_from text;
	select_list text;
	model_name text;
	model_version integer;
	m record;
	opts jsonb;
	inputs text[];
	out_name text := coalesce(output_column, 'prediction');
	out_type text;
	target_oid oid;
	target_schema text;
	target_name text;
	target_parts text[];
	target_columns jsonb;
	create_statement text;
	missing text;
BEGIN
	IF source IS NULL OR source !~ '\S' THEN
		RAISE EXCEPTION 'source must be a table name or a query'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF model IS NULL OR target IS NULL THEN
		RAISE EXCEPTION 'model and target must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF mode IS NULL OR mode NOT IN ('append', 'overwrite', 'upsert') THEN
		RAISE EXCEPTION 'unknown mode "%"', mode
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Modes: append (add the rows), overwrite (replace the target''s rows), upsert (insert or update on the key).';
	END IF;
	IF out_name !~ '\S' OR length(out_name) > 63 THEN
		RAISE EXCEPTION 'invalid output column name "%"', out_name
			USING ERRCODE = 'invalid_name';
	END IF;

	-- the model: name, or name:version
	model_name := split_part(model, ':', 1);
	IF model ~ '^[a-z][a-z0-9_-]*:[0-9]+$' THEN
		model_version := split_part(model, ':', 2)::integer;
	ELSIF model !~ '^[a-z][a-z0-9_-]*$' THEN
		RAISE EXCEPTION 'invalid model "%"', model
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name a registered model, or one of its versions as name:version.';
	END IF;
	SELECT v.name, v.version, v.kind INTO m FROM ray.models v
	WHERE v.name = model_name AND (model_version IS NULL OR v.version = model_version)
	ORDER BY v.version DESC LIMIT 1;
	IF m.name IS NULL THEN
		RAISE EXCEPTION 'model "%" does not exist', model
			USING ERRCODE = 'undefined_object',
				  HINT = 'List your models with SELECT name, version, kind FROM ray.models.';
	END IF;
	opts := ray._batch_options(coalesce(options, '{}'), m.kind);

	-- the source: a query, or a table (or view) by name
	is_query := source ~* '^\s*\(*\s*(select|with|values|table)\M';
	IF is_query THEN
		SELECT jsonb_agg(jsonb_build_object('name', d.column_name, 'type', d.data_type))
		INTO columns FROM ray._describe_query(source) d;
		IF (SELECT count(DISTINCT e ->> 'name') FROM jsonb_array_elements(columns) e) <> jsonb_array_length(columns) THEN
			RAISE EXCEPTION 'source query has two columns of the same name'
				USING ERRCODE = 'duplicate_column',
					  HINT = 'Name every column of the query differently, with AS.';
		END IF;
		read_from := format('(%s) q', source);
	ELSE
		source_oid := to_regclass(source);
		IF source_oid IS NULL THEN
			RAISE EXCEPTION 'relation "%" does not exist', source
				USING ERRCODE = 'undefined_table',
					  HINT = 'A source is a table name, or a query that starts with SELECT, WITH, VALUES or TABLE.';
		END IF;
		SELECT c2.relkind, format('%I.%I', n.nspname, c2.relname) INTO source_kind, source_name
		FROM pg_class c2 JOIN pg_namespace n ON n.oid = c2.relnamespace WHERE c2.oid = source_oid;
		IF (SELECT relpersistence FROM pg_class WHERE oid = source_oid) = 't' THEN
			RAISE EXCEPTION 'source "%" is a temporary table', source
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'The run reads in sessions of its own, which cannot see this session''s temporary tables.';
		END IF;
		SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod))
						 ORDER BY a.attnum)
		INTO columns FROM pg_attribute a
		WHERE a.attrelid = source_oid AND a.attnum > 0 AND NOT a.attisdropped;
		read_from := source_name;
		IF key IS NULL THEN
			SELECT array_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum))
			INTO key FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
			WHERE i.indrelid = source_oid AND i.indisprimary;
		END IF;
	END IF;
	IF opts ? 'shard_key' AND NOT is_query THEN
		RAISE EXCEPTION 'shard_key is for query sources'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A table is read in parallel by ranges of its blocks.';
	END IF;

	-- the key carried to the output, and the model's inputs
	IF key IS NULL OR cardinality(key) = 0 THEN
		RAISE EXCEPTION 'batch inference needs a key'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = CASE WHEN is_query THEN 'The source is a query.' ELSE format('Table %s has no primary key.', source) END,
				  HINT = 'Name the columns that identify a row, such as key => ARRAY[''impression_id''].';
	END IF;
	SELECT k INTO missing FROM unnest(key) k
	WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(columns) e WHERE e ->> 'name' = k) LIMIT 1;
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'key column "%" is not a column of the source', missing
			USING ERRCODE = 'undefined_column';
	END IF;
	inputs := coalesce(input_columns,
					   ARRAY(SELECT e ->> 'name' FROM jsonb_array_elements(columns) e
							 WHERE e ->> 'name' <> ALL (key) AND e ->> 'name' <> out_name));
	IF cardinality(inputs) = 0 THEN
		RAISE EXCEPTION 'batch inference needs at least one input column'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The source has no columns besides its key.';
	END IF;
	SELECT k INTO missing FROM unnest(inputs) k
	WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(columns) e WHERE e ->> 'name' = k) LIMIT 1;
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'input column "%" is not a column of the source', missing
			USING ERRCODE = 'undefined_column';
	END IF;
	IF m.kind IN ('sklearn', 'onnx') THEN
		SELECT e ->> 'name' || ' (' || (e ->> 'type') || ')' INTO missing
		FROM jsonb_array_elements(columns) e
		WHERE e ->> 'name' = ANY (inputs) AND NOT ray._is_numeric_type(e ->> 'type') LIMIT 1;
		IF missing IS NOT NULL THEN
			RAISE EXCEPTION 'input column % is not numeric', missing
				USING ERRCODE = 'datatype_mismatch',
					  DETAIL = format('A model of kind %s takes numbers.', m.kind),
					  HINT = 'Encode it in a source query, or leave it out with input_columns.';
		END IF;
	END IF;
	IF out_name = ANY (key) THEN
		RAISE EXCEPTION 'output column "%" is also a key column', out_name
			USING ERRCODE = 'duplicate_column';
	END IF;
	-- only the columns the run needs are read, key first
	columns := (SELECT jsonb_agg(e ORDER BY coalesce(array_position(key, e ->> 'name'), 1000 + array_position(inputs, e ->> 'name')))
				FROM jsonb_array_elements(columns) e
				WHERE e ->> 'name' = ANY (key) OR e ->> 'name' = ANY (inputs));
	select_list := (SELECT string_agg(quote_ident(e ->> 'name'), ', ') FROM jsonb_array_elements(columns) e);
	-- the caller must be able to read what the run will read
	EXECUTE format('SELECT %s FROM %s LIMIT 0', select_list, read_from);
	-- the shard key goes into each partition's query as the runner writes
	-- it: it must be one expression there, which reads and hashes
	IF opts ? 'shard_key' THEN
		DECLARE
			shard_query text := format('SELECT %s FROM %s WHERE mod(coalesce(hashtext((%s)::text), 0)::bigint + 2147483648, 2) = 0',
									   select_list, read_from, opts ->> 'shard_key');
		BEGIN
			PERFORM ray._describe_query(shard_query);
			EXECUTE shard_query || ' LIMIT 0';
		EXCEPTION WHEN OTHERS THEN
			RAISE EXCEPTION 'invalid shard_key "%"', opts ->> 'shard_key'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('As an expression over the source''s rows: %s.', SQLERRM),
					  HINT = 'A shard key is one expression over the columns of the source query, such as "user_id".';
		END;
	END IF;

	out_type := coalesce((SELECT format_type(to_regtype(opts ->> 'output_type'), NULL)),
						 CASE WHEN m.kind IN ('http', 'vllm') THEN 'text'
							  WHEN opts ->> 'output' = 'label' THEN 'text'
							  ELSE 'double precision' END);

	-- the target: an existing table that fits, or one to create
	target_parts := parse_ident(target);
	IF cardinality(target_parts) > 2 THEN
		RAISE EXCEPTION 'invalid target "%"', target
			USING ERRCODE = 'invalid_name', HINT = 'Name a table as table or schema.table.';
	END IF;
	target_oid := to_regclass(target);
	IF target_oid IS NOT NULL THEN
		SELECT n.nspname, c2.relname INTO target_schema, target_name
		FROM pg_class c2 JOIN pg_namespace n ON n.oid = c2.relnamespace WHERE c2.oid = target_oid;
		IF (SELECT relkind FROM pg_class WHERE oid = target_oid) NOT IN ('r', 'p') THEN
			RAISE EXCEPTION '"%" is not a table', target
				USING ERRCODE = 'wrong_object_type';
		END IF;
		IF target_oid = source_oid THEN
			RAISE EXCEPTION 'target "%" is the source', target
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Write the predictions into a table of their own and join them to the source.';
		END IF;
		IF NOT has_table_privilege(target_oid, 'INSERT')
			OR (mode = 'overwrite' AND NOT has_table_privilege(target_oid, 'DELETE'))
			OR (mode = 'upsert' AND NOT has_table_privilege(target_oid, 'UPDATE')) THEN
			RAISE EXCEPTION 'permission denied for table %', target_name
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = CASE mode WHEN 'append' THEN 'Mode append needs INSERT on the target.'
										 WHEN 'overwrite' THEN 'Mode overwrite needs INSERT and DELETE on the target.'
										 ELSE 'Mode upsert needs INSERT and UPDATE on the target.' END;
		END IF;
		SELECT jsonb_object_agg(a.attname, format_type(a.atttypid, a.atttypmod)) INTO target_columns
		FROM pg_attribute a WHERE a.attrelid = target_oid AND a.attnum > 0 AND NOT a.attisdropped;
		SELECT k INTO missing FROM unnest(key || out_name) k WHERE NOT target_columns ? k LIMIT 1;
		IF missing IS NOT NULL THEN
			RAISE EXCEPTION 'target "%" has no column "%"', target, missing
				USING ERRCODE = 'undefined_column',
					  DETAIL = format('The run writes the key (%s) and the output column %s.',
									  array_to_string(key, ', '), out_name);
		END IF;
		SELECT a.attname INTO missing FROM pg_attribute a
		WHERE a.attrelid = target_oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
		  AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
		  AND a.attname <> ALL (key || out_name) LIMIT 1;
		IF missing IS NOT NULL THEN
			RAISE EXCEPTION 'target column "%" is NOT NULL without a default', missing
				USING ERRCODE = 'not_null_violation',
					  DETAIL = 'The run writes only the key and the output column.';
		END IF;
		IF mode = 'upsert' AND NOT EXISTS (
			SELECT FROM pg_index i
			WHERE i.indrelid = target_oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
			  AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
				   WHERE a.attrelid = target_oid AND a.attnum = ANY (i.indkey))
				  = (SELECT array_agg(k ORDER BY k) FROM unnest(key) k)) THEN
			RAISE EXCEPTION 'target "%" has no unique index on the key', target
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Mode upsert updates the rows whose key (%s) is already there.', array_to_string(key, ', ')),
					  HINT = 'Add a primary key or unique constraint on the key columns, or use mode append or overwrite.';
		END IF;
		-- the target's types win: COPY converts the run's output into them
		out_type := target_columns ->> out_name;
	ELSE
		IF NOT coalesce(create_target, true) THEN
			RAISE EXCEPTION 'relation "%" does not exist', target
				USING ERRCODE = 'undefined_table',
					  HINT = 'Create it, or let the run create it with create_target => true.';
		END IF;
		target_schema := CASE WHEN cardinality(target_parts) = 2 THEN target_parts[1] ELSE current_schema() END;
		target_name := target_parts[cardinality(target_parts)];
		IF target_schema IS NULL OR to_regnamespace(quote_ident(target_schema)) IS NULL THEN
			RAISE EXCEPTION 'schema "%" does not exist', coalesce(target_schema, '')
				USING ERRCODE = 'invalid_schema_name';
		END IF;
		IF NOT has_schema_privilege(quote_ident(target_schema), 'CREATE') THEN
			RAISE EXCEPTION 'permission denied for schema %', target_schema
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = format('The run would create table %s there.', target_name);
		END IF;
		create_statement := format('CREATE TABLE %I.%I (%s, %I %s%s)', target_schema, target_name,
			(SELECT string_agg(format('%I %s NOT NULL', e ->> 'name', e ->> 'type'), ', '
							   ORDER BY array_position(key, e ->> 'name'))
			 FROM jsonb_array_elements(columns) e WHERE e ->> 'name' = ANY (key)),
			out_name, out_type,
			CASE WHEN mode IN ('overwrite', 'upsert')
				 THEN format(', PRIMARY KEY (%s)', (SELECT string_agg(quote_ident(k), ', ') FROM unnest(key) k))
				 ELSE '' END);
	END IF;

	RETURN jsonb_build_object(
		'source', jsonb_strip_nulls(jsonb_build_object(
			'table', CASE WHEN NOT is_query AND source_kind IN ('r', 'm') THEN source_name END,
			'query', CASE WHEN is_query THEN source
						  WHEN source_kind NOT IN ('r', 'm') THEN 'SELECT * FROM ' || source_name END,
			'select_list', select_list,
			'shard_key', opts ->> 'shard_key',
			-- names in a query resolve in the run as they did here
			'search_path', (SELECT string_agg(quote_ident(s), ', ') FROM unnest(current_schemas(false)) s))),
		'columns', columns,
		'key', to_jsonb(key),
		'inputs', to_jsonb(inputs),
		'output', jsonb_build_object('name', out_name, 'type', out_type),
		'target', jsonb_strip_nulls(jsonb_build_object(
			'name', format('%I.%I', target_schema, target_name),
			'exists', target_oid IS NOT NULL,
			'create_statement', create_statement)),
		'mode', mode,
		'model', jsonb_build_object('name', m.name, 'version', m.version, 'kind', m.kind),
		'options', opts - 'shard_key');
END
$$;
COMMENT ON FUNCTION ray._plan_batch_inference(text, text, text, text[], text[], text, text, boolean, jsonb) IS
'Plan a batch inference run as the calling role: source, model, key, inputs, output and target, checked.';

CREATE FUNCTION ray.batch_inference_plan(
	resource_group text,
	source text,
	model text,
	target text,
	key text[] DEFAULT NULL,
	input_columns text[] DEFAULT NULL,
	output_column text DEFAULT 'prediction',
	mode text DEFAULT 'append',
	create_target boolean DEFAULT true,
	options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql
AS $$
	SELECT ray._plan_batch_inference(source, model, target, key, input_columns, output_column,
									 mode, create_target, options)
$$;
COMMENT ON FUNCTION ray.batch_inference_plan(text, text, text, text, text[], text[], text, text, boolean, jsonb) IS
'What ray.batch_inference would do with these arguments, without doing it: columns read, model, options and the target (with the CREATE TABLE it would run).';

/* Queue a planned run as a job of the caller; returns its id. */
CREATE FUNCTION ray._submit_batch_inference(resource_group text, run_plan jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_oid oid := ray._calling_role();
	caller name := ray._caller();
	rg ray.resource_group := ray._resource_group(_submit_batch_inference.resource_group, 'share');
	target_name text := run_plan -> 'target' ->> 'name';
	group_cpus numeric;
	node_cpus numeric;
	replica_cpus numeric;
	replicas numeric;
	runner bytea;
	busy record;
	id bigint;
BEGIN
	IF NOT ray._can_use(rg.name, caller_oid) THEN
		RAISE EXCEPTION 'permission denied for resource group "%"', rg.name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = format('A ray_admin can grant it with SELECT ray.grant_usage(%L, %L).', rg.name, caller);
	END IF;
	-- the plan was made by the caller; the model must still be theirs to use
	IF NOT EXISTS (SELECT FROM ray.model m
				   WHERE m.name = run_plan -> 'model' ->> 'name' AND m.version = (run_plan -> 'model' ->> 'version')::integer
					 AND (m.owner = caller OR ray._is_admin(caller_oid))) THEN
		RAISE EXCEPTION 'model "%" does not exist', run_plan -> 'model' ->> 'name'
			USING ERRCODE = 'undefined_object';
	END IF;
	IF (run_plan -> 'options' ->> 'num_gpus')::numeric > 0 AND NOT EXISTS (
		SELECT FROM ray.worker_group w WHERE w.resource_group = rg.name AND w.resource_type = 'GPU') THEN
		RAISE EXCEPTION 'resource group "%" has no GPU workers', rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Model %s (%s) asks for %s GPUs per replica.', run_plan -> 'model' ->> 'name',
								  run_plan -> 'model' ->> 'kind', run_plan -> 'options' ->> 'num_gpus'),
				  HINT = 'Add a GPU worker group with ray.add_worker_group, or run it on a group that has one.';
	END IF;

	-- Replicas the group can never hold would wait in Ray forever.
	SELECT sum(w.max_workers * s.num_cpus), max(s.num_cpus) INTO group_cpus, node_cpus
	FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
	WHERE w.resource_group = rg.name;
	replica_cpus := (run_plan -> 'options' ->> 'num_cpus')::numeric;
	IF jsonb_typeof(run_plan -> 'options' -> 'concurrency') = 'null' THEN
		run_plan := jsonb_set(run_plan, '{options,concurrency}', to_jsonb(
			CASE WHEN group_cpus IS NULL OR replica_cpus = 0 THEN 2
				 ELSE greatest(1, least(2, floor(group_cpus / replica_cpus)))::integer END));
	END IF;
	replicas := CASE WHEN jsonb_typeof(run_plan -> 'options' -> 'concurrency') = 'array'
					 THEN (run_plan -> 'options' -> 'concurrency' ->> 0)::numeric
					 ELSE (run_plan -> 'options' ->> 'concurrency')::numeric END;
	IF node_cpus IS NOT NULL AND replica_cpus > node_cpus THEN
		RAISE EXCEPTION 'a model replica needs % CPUs, more than any node of resource group "%" has', replica_cpus, rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Its largest worker nodes have %s CPUs.', node_cpus),
				  HINT = 'Lower num_cpus, or add a worker group of a larger spec.';
	END IF;
	IF group_cpus IS NOT NULL AND replicas * replica_cpus > group_cpus THEN
		RAISE EXCEPTION 'the model replicas need % CPUs, more than resource group "%" can have', replicas * replica_cpus, rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('concurrency %s times num_cpus %s; its worker groups have at most %s CPUs in all.',
								  replicas, replica_cpus, group_cpus),
				  HINT = 'Lower concurrency or num_cpus, or raise max_workers.';
	END IF;

	-- One unfinished run per target: a nightly schedule that fires again
	-- while last night's run is still going gets that run, not a second
	-- copy of its rows.
	PERFORM pg_advisory_xact_lock(hashtext('pg_ray batch target ' || target_name));
	SELECT j.job_id, j.owner, b.plan = run_plan AS same INTO busy
	FROM ray.batch_run b JOIN ray.job j ON j.job_id = b.job_id
	WHERE b.target = target_name AND j.state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED')
	ORDER BY j.job_id LIMIT 1;
	IF busy.job_id IS NOT NULL THEN
		IF busy.same AND busy.owner = caller THEN
			RAISE NOTICE 'job % is already scoring into %; returning it instead of starting another', busy.job_id, target_name
				USING HINT = format('Wait for it with SELECT ray.wait_job(%s).', busy.job_id);
			RETURN busy.job_id;
		END IF;
		RAISE EXCEPTION 'target % is being written by another batch inference run', target_name
			USING ERRCODE = 'object_in_use',
				  DETAIL = CASE WHEN busy.owner = caller THEN format('Job %s, with other arguments, has not finished.', busy.job_id)
								ELSE 'A run of another role has not finished.' END,
				  HINT = 'Wait for it to finish, or write into another table.';
	END IF;

	runner := ray._runner_package();
	INSERT INTO ray.job (owner, resource_group, kind, entrypoint, runtime_env, metadata,
						 max_attempts, retry_on_failure, target_table)
	VALUES (caller, rg.name, 'batch_inference', 'python -m pg_ray_runner',
			'{"env_vars": {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}}',
			jsonb_build_object('pg_ray_model', format('%s:%s', run_plan -> 'model' ->> 'name', run_plan -> 'model' ->> 'version')),
			(run_plan -> 'options' ->> 'max_attempts')::integer, false, target_name)
	RETURNING job_id INTO id;
	INSERT INTO ray.job_package (job_id, package, content)
	VALUES (id, '_ray_pkg_' || left(encode(sha256(runner), 'hex'), 40) || '.zip', runner);
	INSERT INTO ray.batch_run (job_id, target, plan) VALUES (id, target_name, run_plan);
	INSERT INTO ray.job_event (job_id, from_state, to_state, attempt, actor, message)
	VALUES (id, NULL, 'QUEUED', 0, caller,
			format('batch inference of %s with model %s:%s into %s (%s)',
				   coalesce(run_plan -> 'source' ->> 'table', 'a query'), run_plan -> 'model' ->> 'name',
				   run_plan -> 'model' ->> 'version', target_name, run_plan ->> 'mode'));
	RETURN id;
END
$$;
COMMENT ON FUNCTION ray._submit_batch_inference(text, jsonb) IS
'Queue a batch inference run planned by ray._plan_batch_inference as a job of the caller.';

CREATE FUNCTION ray.batch_inference(
	resource_group text,
	source text,
	model text,
	target text,
	key text[] DEFAULT NULL,
	input_columns text[] DEFAULT NULL,
	output_column text DEFAULT 'prediction',
	mode text DEFAULT 'append',
	create_target boolean DEFAULT true,
	options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE sql
AS $$
	SELECT ray._submit_batch_inference(resource_group,
		ray._plan_batch_inference(source, model, target, key, input_columns, output_column,
								  mode, create_target, options))
$$;
COMMENT ON FUNCTION ray.batch_inference(text, text, text, text, text[], text[], text, text, boolean, jsonb) IS
'Score a table or query with a registered model on a resource group; the results are published into target exactly once when the run succeeds. Returns the job id.';

/*
 * An attempt of a batch inference job begins: its login role (a member of
 * the owner, so it reads with the owner's privileges and no more) and its
 * staging table.  The role's password is known to the worker only.
 */
CREATE FUNCTION ray._begin_batch_attempt(id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job;
	plan jsonb := (SELECT b.plan FROM ray.batch_run b WHERE b.job_id = id);
	run_role text;
	run_password text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
	staging text;
	runner bytea;
BEGIN
	SELECT * INTO job FROM ray.job WHERE job_id = id;
	PERFORM ray._end_batch_attempt(id);
	run_role := format('pgray_run_%s_%s_%s', (SELECT oid FROM pg_database WHERE datname = current_database()),
					   id, job.attempts);
	staging := format('ray_staging.%I', format('job_%s_%s', id, job.attempts));
	EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L VALID UNTIL %L IN ROLE %I, ray_run',
				   run_role, run_password, now() + interval '2 days', job.owner);
	EXECUTE format('GRANT USAGE ON SCHEMA ray TO %I', run_role);
	-- the columns in the order of the target that the run may create, so that it can be this table
	EXECUTE format('CREATE TABLE %s (%s, %I %s)', staging,
				   (SELECT string_agg(format('%I %s', e ->> 'name', e ->> 'type'), ', ' ORDER BY k.ord)
					FROM jsonb_array_elements_text(plan -> 'key') WITH ORDINALITY k(name, ord)
					JOIN jsonb_array_elements(plan -> 'columns') e ON e ->> 'name' = k.name),
				   plan -> 'output' ->> 'name', plan -> 'output' ->> 'type');
	-- and to the run's role only: the owner reads it only while its rows are published
	EXECUTE format('GRANT SELECT, INSERT ON %s TO %I', staging, run_role);
	-- the password goes in the run's package, not in its runtime_env (see ray._runner_package)
	runner := ray._runner_package(jsonb_build_object('password', run_password)::text);
	INSERT INTO ray.batch_run_secret (job_id, attempt, role_name, password, staging_table, package, content)
	VALUES (id, job.attempts, run_role, run_password, staging,
			'_ray_pkg_' || left(encode(sha256(runner), 'hex'), 40) || '.zip', runner);
	UPDATE ray.job SET rows_processed = NULL, rows_total = NULL, rows_written = NULL WHERE job_id = id;
END
$$;
COMMENT ON FUNCTION ray._begin_batch_attempt(bigint) IS
'Make the login role and the staging table of a batch inference job''s new attempt.';

/* A run's login role goes: its sessions end, its grants and the role itself are dropped. */
CREATE FUNCTION ray._drop_run_role(role_name name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM pg_terminate_backend(a.pid) FROM pg_stat_activity a WHERE a.usename = role_name;
	IF EXISTS (SELECT FROM pg_roles r WHERE r.rolname = role_name) THEN
		EXECUTE format('DROP OWNED BY %I', role_name);
		EXECUTE format('DROP ROLE %I', role_name);
	END IF;
END
$$;
COMMENT ON FUNCTION ray._drop_run_role(name) IS
'Drop a batch inference run''s login role after ending its sessions.';

/*
 * An attempt ends (published, failed, stopped or lost): its sessions are
 * ended, its staging table and its role dropped.  What it staged is never
 * published by a later attempt, which is why a retry cannot duplicate rows.
 */
CREATE FUNCTION ray._end_batch_attempt(id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret;
BEGIN
	FOR s IN DELETE FROM ray.batch_run_secret WHERE job_id = id RETURNING * LOOP
		-- the run's sessions end first: one still writing would hold the staging table
		PERFORM ray._drop_run_role(s.role_name);
		EXECUTE format('DROP TABLE IF EXISTS %s', s.staging_table);
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._end_batch_attempt(bigint) IS
'End a batch inference attempt: its sessions, staging table and login role go.';

/*
 * The environment a run connects to this server with: libpq's variables and
 * its login role.  Its password is in its package (ray._runner_package), not
 * here: Ray writes a job's environment variables on the command line of each
 * of its worker processes, for any user of the host to read.
 */
CREATE FUNCTION ray._run_connection_env(job ray.job)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((
		SELECT jsonb_build_object('env_vars', coalesce(job.runtime_env -> 'env_vars', '{}') || jsonb_build_object(
			'PGHOST', current_setting('pg_ray.runner_host'),
			'PGPORT', current_setting('port'),
			'PGDATABASE', current_database(),
			'PGUSER', s.role_name,
			'PGAPPNAME', format('pg_ray run %s/%s', s.job_id, s.attempt),
			'PGCONNECT_TIMEOUT', '10'))
		FROM ray.batch_run_secret s
		WHERE s.job_id = job.job_id AND s.attempt = job.attempts), '{}')
$$;
COMMENT ON FUNCTION ray._run_connection_env(ray.job) IS
'The runtime_env part that lets a batch inference run connect back: libpq variables with its role (the password is in its package).';

/*
 * The package a job's attempt is submitted with: a batch inference
 * attempt's own (the runner and the attempt's credentials), else the
 * working directory the job was submitted with, if any.
 */
CREATE FUNCTION ray._submission_package(id bigint, attempt integer, OUT package text, OUT content bytea)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(s.package, p.package), coalesce(s.content, p.content)
	FROM (SELECT) one
	LEFT JOIN ray.batch_run_secret s ON s.job_id = id AND s.attempt = _submission_package.attempt
	LEFT JOIN ray.job_package p ON p.job_id = id
$$;
COMMENT ON FUNCTION ray._submission_package(bigint, integer) IS
'The working directory package an attempt is submitted with (name and zip), or NULLs if it has none.';

/* Run roles left by a server crash between their creation and their job's end. */
CREATE FUNCTION ray._drop_stray_run_roles()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r name;
	n integer := 0;
BEGIN
	FOR r IN
		SELECT rolname FROM pg_roles
		WHERE rolname LIKE format('pgray\_run\_%s\_%%', (SELECT oid FROM pg_database WHERE datname = current_database()))
		  AND rolname NOT IN (SELECT role_name FROM ray.batch_run_secret)
	LOOP
		PERFORM ray._drop_run_role(r);
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION ray._drop_stray_run_roles() IS
'Drop login roles of batch inference runs that no attempt owns any more.';

/* The run a runner's session belongs to, if that run is still current. */
CREATE FUNCTION ray._current_run()
RETURNS ray.batch_run_secret
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret;
BEGIN
	SELECT r.* INTO s FROM ray.batch_run_secret r JOIN ray.job j ON j.job_id = r.job_id
	WHERE r.role_name = session_user AND j.attempts = r.attempt
	  AND j.state IN ('SUBMITTING', 'PENDING', 'RUNNING');
	IF s.job_id IS NULL THEN
		RAISE EXCEPTION 'not a current batch inference run'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Only the login role of a running batch inference attempt may ask for its run.';
	END IF;
	RETURN s;
END
$$;
COMMENT ON FUNCTION ray._current_run() IS
'The attempt whose login role this session is, while the attempt runs; an error otherwise.';

/* What the runner is to do, for the run whose login role asks. */
CREATE FUNCTION ray._run_spec()
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret := ray._current_run();
	plan jsonb := (SELECT b.plan FROM ray.batch_run b WHERE b.job_id = s.job_id);
	m ray.model;
	model_options jsonb;
	model_uri text;
BEGIN
	SELECT * INTO m FROM ray.model
	WHERE name = plan -> 'model' ->> 'name' AND version = (plan -> 'model' ->> 'version')::integer;
	IF m.name IS NULL THEN
		RAISE EXCEPTION 'model %:% was dropped', plan -> 'model' ->> 'name', plan -> 'model' ->> 'version'
			USING ERRCODE = 'undefined_object';
	END IF;
	-- the runner's view of a model: python code as a directory, endpoints as base_url
	model_options := m.options;
	model_uri := m.uri;
	IF m.kind = 'python' AND m.data IS NULL THEN
		model_options := model_options || jsonb_build_object('class', m.uri);
		model_uri := m.options ->> 'working_dir';
	ELSIF m.kind = 'http' THEN
		model_options := model_options || jsonb_build_object('base_url', m.uri);
	END IF;
	RETURN jsonb_build_object(
		'job_id', s.job_id,
		'attempt', s.attempt,
		'source', plan -> 'source',
		'columns', plan -> 'columns',
		'key', plan -> 'key',
		'inputs', plan -> 'inputs',
		'output', plan -> 'output',
		'staging_table', s.staging_table,
		'staging_columns', (plan -> 'key') || jsonb_build_array(plan -> 'output' ->> 'name'),
		'model', jsonb_build_object('name', m.name, 'version', m.version, 'kind', m.kind,
									'options', model_options, 'uri', model_uri,
									'has_data', m.data IS NOT NULL),
		'options', plan -> 'options');
END
$$;
COMMENT ON FUNCTION ray._run_spec() IS
'For a runner: what its run reads, runs and writes (source, columns, model, staging table, options).';

CREATE FUNCTION ray._run_model_data()
RETURNS bytea
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT m.data FROM ray.model m JOIN ray.batch_run b
		ON m.name = b.plan -> 'model' ->> 'name' AND m.version = (b.plan -> 'model' ->> 'version')::integer
	WHERE b.job_id = (ray._current_run()).job_id
$$;
COMMENT ON FUNCTION ray._run_model_data() IS
'For a runner: the bytes of its model, when the model is kept in the database.';

CREATE FUNCTION ray._run_progress(rows_done bigint, rows_total bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret := ray._current_run();
BEGIN
	IF rows_done < 0 OR rows_total < 0 THEN
		RAISE EXCEPTION 'row counts must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE ray.job SET
		rows_processed = coalesce(rows_processed, 0) + coalesce(_run_progress.rows_done, 0),
		rows_total = coalesce(_run_progress.rows_total, ray.job.rows_total)
	WHERE job_id = s.job_id AND attempts = s.attempt;
END
$$;
COMMENT ON FUNCTION ray._run_progress(bigint, bigint) IS
'For a runner: add rows scored and staged, and set the total to score, for ray.jobs and ray.wait_job.';

/*
 * What publishing a job runs as its owner: create the target if it is to be
 * created, clear it for overwrite, move the staged rows.  A stop asked for
 * before publishing wins: nothing is published.
 */
CREATE FUNCTION ray._publish_plan(id bigint, attempt integer,
								  OUT owner_oid oid, OUT statements text[], OUT rows_moved bigint)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['PUBLISHING']);
	plan jsonb := (SELECT b.plan FROM ray.batch_run b WHERE b.job_id = id);
	secret ray.batch_run_secret := (SELECT s FROM ray.batch_run_secret s
									WHERE s.job_id = id AND s.attempt = _publish_plan.attempt);
	target_name text := plan -> 'target' ->> 'name';
	written text;
	keys text;
BEGIN
	IF job.job_id IS NULL THEN
		RETURN;
	END IF;
	IF job.stop_requested_at IS NOT NULL THEN
		PERFORM ray._job_transition(id, 'STOPPED',
			format('stopped by %s before its results were published; nothing was published', job.stopped_by),
			'pg_ray worker');
		RETURN;
	END IF;
	owner_oid := (SELECT r.oid FROM pg_roles r WHERE r.rolname = job.owner);
	IF owner_oid IS NULL OR secret.staging_table IS NULL THEN
		PERFORM ray._job_transition(id, 'FAILED',
			CASE WHEN owner_oid IS NULL THEN format('role %s no longer exists; nothing was published', job.owner)
				 ELSE 'the staging table of this attempt is gone; nothing was published' END,
			'pg_ray worker');
		owner_oid := NULL;
		RETURN;
	END IF;
	keys := (SELECT string_agg(quote_ident(k), ', ') FROM jsonb_array_elements_text(plan -> 'key') k);
	IF plan -> 'target' ? 'create_statement' AND to_regclass(target_name) IS NULL THEN
		EXECUTE format('SELECT count(*) FROM %s', secret.staging_table) INTO rows_moved;
		statements := ray._adopt_staging_table(plan, secret, owner_oid);
		IF statements IS NOT NULL THEN
			RETURN;
		END IF;
		rows_moved := NULL;
	END IF;
	written := (SELECT string_agg(quote_ident(k), ', ')
				FROM jsonb_array_elements_text((plan -> 'key') || jsonb_build_array(plan -> 'output' ->> 'name')) k);
	-- the owner reads the staged rows in this transaction only, which drops them at its end: no
	-- session of the owner ever could, nor hold a lock on them that the worker would wait for
	EXECUTE format('GRANT SELECT ON %s TO %I', secret.staging_table, job.owner);
	statements := ARRAY[]::text[];
	IF plan -> 'target' ? 'create_statement' THEN
		statements := statements || regexp_replace(plan -> 'target' ->> 'create_statement',
												   '^CREATE TABLE ', 'CREATE TABLE IF NOT EXISTS ');
	END IF;
	IF plan ->> 'mode' = 'overwrite' THEN
		statements := statements || format('DELETE FROM %s', target_name);
	END IF;
	statements := statements || (format('INSERT INTO %s (%s) SELECT %s FROM %s', target_name, written, written,
										secret.staging_table)
		|| CASE WHEN plan ->> 'mode' = 'upsert'
				THEN format(' ON CONFLICT (%s) DO UPDATE SET %I = EXCLUDED.%I', keys,
							plan -> 'output' ->> 'name', plan -> 'output' ->> 'name')
				ELSE '' END);
END
$$;
COMMENT ON FUNCTION ray._publish_plan(bigint, integer) IS
'The statements that publish a job''s staged rows, to be run as its owner, and the rows they publish when known in advance; no owner when there is nothing to publish.';

/*
 * A target the run is to create, and that still does not exist, is made of
 * the staging table itself rather than by copying every staged row into a
 * new table: the staging table is renamed and given to the owner here (as
 * the worker: only it may rename in ray_staging), and the statements
 * returned, run as the owner, move it into the target's schema (the
 * owner's CREATE privilege there is checked then, as for CREATE TABLE),
 * add what the CREATE TABLE of the plan has and the staging table lacks
 * (NOT NULL keys, the primary key of overwrite and upsert) and give it the
 * privileges a table the owner creates there gets (its default
 * privileges).  The result is the table create_statement describes, in one
 * pass over the rows instead of a copy of all of them.  NULL when the name
 * is taken in ray_staging (by another run's staging table): the rows are
 * then copied.
 */
CREATE FUNCTION ray._adopt_staging_table(plan jsonb, secret ray.batch_run_secret, owner_oid oid)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	target_parts text[] := parse_ident(plan -> 'target' ->> 'name');
	target_name text := plan -> 'target' ->> 'name';
	target_schema oid := to_regnamespace(quote_ident(target_parts[1]));
	owner_name text := (SELECT r.rolname FROM pg_roles r WHERE r.oid = owner_oid);
	adopted text := format('ray_staging.%I', target_parts[2]);
	default_acl aclitem[];
	schema_acl aclitem[];
	statements text[];
BEGIN
	IF to_regclass(adopted) IS NOT NULL OR target_schema IS NULL THEN
		RETURN NULL;
	END IF;
	EXECUTE format('ALTER TABLE %s RENAME TO %I', secret.staging_table, target_parts[2]);
	EXECUTE format('ALTER TABLE %s OWNER TO %I', adopted, owner_name);
	statements := ARRAY[format('ALTER TABLE %s SET SCHEMA %I', adopted, target_parts[1]),
		format('ALTER TABLE %s %s', target_name,
			   (SELECT string_agg(format('ALTER COLUMN %I SET NOT NULL', k), ', ')
				FROM jsonb_array_elements_text(plan -> 'key') k)
			   || CASE WHEN plan ->> 'mode' IN ('overwrite', 'upsert')
					   THEN format(', ADD PRIMARY KEY (%s)',
								   (SELECT string_agg(quote_ident(k), ', ') FROM jsonb_array_elements_text(plan -> 'key') k))
					   ELSE '' END),
		format('REVOKE ALL ON %s FROM %I, %I', target_name, owner_name, secret.role_name)];

	/*
	 * The privileges of a new table, as PostgreSQL works them out: the
	 * owner's default privileges for all schemas, or else the built-in
	 * ones, merged with its default privileges for this schema.
	 */
	default_acl := coalesce((SELECT d.defaclacl FROM pg_default_acl d
							 WHERE d.defaclrole = owner_oid AND d.defaclnamespace = 0 AND d.defaclobjtype = 'r'),
							acldefault('r', owner_oid));
	schema_acl := (SELECT d.defaclacl FROM pg_default_acl d
				   WHERE d.defaclrole = owner_oid AND d.defaclnamespace = target_schema AND d.defaclobjtype = 'r');
	RETURN statements || ARRAY(
		SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, target_name,
					  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,
					  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
		FROM (SELECT * FROM aclexplode(default_acl)
			  UNION SELECT * FROM aclexplode(schema_acl)) a
		LEFT JOIN pg_roles r ON r.oid = a.grantee
		ORDER BY a.grantee, a.privilege_type);
END
$$;
COMMENT ON FUNCTION ray._adopt_staging_table(jsonb, ray.batch_run_secret, oid) IS
'Make a run''s staging table its new target: renamed and given to the owner here, moved and completed by the statements returned, to be run as the owner.';

/* The staged rows are in the target: the job succeeded, in this transaction. */
CREATE FUNCTION ray._published(id bigint, attempt integer, rows_moved bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['PUBLISHING']);
BEGIN
	IF job.job_id IS NULL THEN
		RETURN;
	END IF;
	UPDATE ray.job SET rows_written = rows_moved WHERE job_id = id;
	PERFORM ray._job_transition(id, 'SUCCEEDED',
		format('published %s rows into %s (%s)', rows_moved, job.target_table,
			   (SELECT b.plan ->> 'mode' FROM ray.batch_run b WHERE b.job_id = id)),
		'pg_ray worker');
END
$$;
COMMENT ON FUNCTION ray._published(bigint, integer, bigint) IS
'Record that a job''s rows were published: rows written and SUCCEEDED, in the publishing transaction.';

CREATE FUNCTION ray._publish_deferred(id bigint, attempt integer, error text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	UPDATE ray.job SET message = format('waiting to publish into %s, tried again in a few seconds: %s',
										 target_table, error)
	WHERE job_id = id AND attempts = attempt AND state = 'PUBLISHING'
$$;
COMMENT ON FUNCTION ray._publish_deferred(bigint, integer, text) IS
'A job''s rows could not be published because of a passing conflict (a lock held on the target): say so; it is tried again.';

CREATE FUNCTION ray._publish_failed(id bigint, attempt integer, error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF (ray._current_attempt(id, attempt, ARRAY['PUBLISHING'])).job_id IS NOT NULL THEN
		PERFORM ray._job_transition(id, 'FAILED',
			format('could not publish into %s: %s; nothing was published',
				   (SELECT target_table FROM ray.job WHERE job_id = id), error),
			'pg_ray worker');
	END IF;
END
$$;
COMMENT ON FUNCTION ray._publish_failed(bigint, integer, text) IS
'A job''s rows could not be published (a constraint, a privilege): it fails and publishes nothing.';

/* ------------------------------------------------------------------------
 * Views for psql users and BI tools
 * ------------------------------------------------------------------------
 */

CREATE VIEW ray.jobs WITH (security_invoker = true) AS
SELECT
	job_id,
	resource_group,
	owner,
	kind,
	state,
	attempts,
	max_attempts,
	submitted_at,
	started_at,
	finished_at,
	finished_at - started_at AS run_time,
	message,
	entrypoint,
	ray_submission_id,
	error_type,
	driver_exit_code,
	rows_processed,
	rows_total,
	CASE WHEN rows_total > 0 THEN round(100.0 * rows_processed / rows_total, 1) END AS progress_pct,
	target_table,
	rows_written,
	stop_requested_at,
	stopped_by
FROM ray.job;
COMMENT ON VIEW ray.jobs IS
'Jobs the current role may see (its own; all for ray_admin), with typed columns for psql and BI tools.';

CREATE VIEW ray.job_events WITH (security_invoker = true) AS
SELECT e.event_id, e.job_id, j.resource_group, j.owner, e.at, e.from_state, e.to_state,
	   e.attempt, e.actor, e.message
FROM ray.job_event e
JOIN ray.job j USING (job_id);
COMMENT ON VIEW ray.job_events IS
'State changes of the jobs the current role may see.';

CREATE VIEW ray.resource_groups AS
SELECT
	g.name,
	g.provider,
	g.head_spec,
	g.state,
	g.dashboard_url,
	g.client_address,
	g.ray_version,
	count(w.name)::integer AS worker_groups,
	coalesce(sum(w.min_workers), 0)::integer AS min_workers,
	coalesce(sum(w.max_workers), 0)::integer AS max_workers,
	coalesce(sum(w.desired_workers), 0)::integer AS desired_workers,
	coalesce(sum(w.live_workers), 0)::integer AS live_workers,
	g.generation,
	g.observed_generation,
	g.delete_requested_at IS NOT NULL AS dropping,
	g.last_error,
	g.owner,
	g.created_at,
	g.state_changed_at
FROM ray.resource_group g
LEFT JOIN ray.worker_group w ON w.resource_group = g.name
GROUP BY g.name;
COMMENT ON VIEW ray.resource_groups IS
'Resource groups with their observed state and worker counts (options, which may hold secrets, are left out).';

CREATE VIEW ray.worker_groups AS
SELECT w.resource_group, w.name, w.resource_type, w.spec, s.num_cpus, s.memory_mb, s.num_gpus,
	   w.min_workers, w.max_workers, w.disk_gb, w.gpu_distribution_unit,
	   w.desired_workers, w.live_workers, w.created_at
FROM ray.worker_group w
JOIN ray.node_spec s ON s.name = w.spec;
COMMENT ON VIEW ray.worker_groups IS
'Worker groups with the size of their nodes and their desired and live worker counts.';

CREATE VIEW ray.models WITH (security_invoker = true) AS
SELECT name, version, kind, uri, length(data) AS data_bytes, options, owner, created_at
FROM ray.model;
COMMENT ON VIEW ray.models IS
'Models the current role may see (its own; all for ray_admin), without their bytes.';

/* ------------------------------------------------------------------------
 * Privileges and row-level security
 * ------------------------------------------------------------------------
 */

ALTER TABLE ray.job ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_owner_or_admin ON ray.job FOR SELECT
	USING (owner = current_user OR pg_has_role(current_user, 'ray_admin', 'USAGE'));

ALTER TABLE ray.job_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_event_of_visible_job ON ray.job_event FOR SELECT
	USING (job_id IN (SELECT job_id FROM ray.job));

ALTER TABLE ray.model ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_owner_or_admin ON ray.model FOR SELECT
	USING (owner = current_user OR pg_has_role(current_user, 'ray_admin', 'USAGE'));

ALTER TABLE ray.job_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_log_of_visible_job ON ray.job_log FOR SELECT
	USING (job_id IN (SELECT job_id FROM ray.job));

REVOKE ALL ON ALL TABLES IN SCHEMA ray FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ray FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ray FROM PUBLIC;

GRANT SELECT ON ray.job, ray.job_event, ray.job_log, ray.node_spec, ray.worker_group,
	ray.jobs, ray.job_events, ray.resource_groups, ray.worker_groups, ray.nodes,
	ray.model, ray.models TO ray_user;
GRANT SELECT ON ALL TABLES IN SCHEMA ray TO ray_admin;
-- tokens are written by ray.register_cluster and read by the worker only
REVOKE ALL ON ray.resource_group_secret FROM ray_admin;
-- and the passwords of batch inference runs, by the worker only
REVOKE ALL ON ray.batch_run_secret FROM ray_admin;
GRANT INSERT, UPDATE, DELETE ON ray.node_spec TO ray_admin;

GRANT EXECUTE ON FUNCTION
	ray.submit_job(text, text, jsonb, jsonb, numeric, numeric, bigint, jsonb, integer, boolean, bytea),
	ray.stop_job(bigint),
	ray.wait_job(bigint, interval),
	ray.job_logs(bigint),
	ray.worker_status(),
	ray.cluster_status(text),
	ray.register_model(text, text, bytea, jsonb),
	ray.register_model(text, text, text, jsonb),
	ray.drop_model(text, integer)
TO ray_user;
-- it reads server files: for superusers and pg_read_server_files, checked inside
GRANT EXECUTE ON FUNCTION ray.zip_directory(text) TO ray_admin;
-- batch inference is planned as the caller, then queued by the definer
GRANT EXECUTE ON FUNCTION
	ray.batch_inference(text, text, text, text, text[], text[], text, text, boolean, jsonb),
	ray.batch_inference_plan(text, text, text, text, text[], text[], text, text, boolean, jsonb),
	ray._plan_batch_inference(text, text, text, text[], text[], text, text, boolean, jsonb),
	ray._batch_options(jsonb, text),
	ray._describe_query(text),
	ray._is_numeric_type(text),
	ray._submit_batch_inference(text, jsonb)
TO ray_user;
-- a run's login role asks for its run; they check that it is one
GRANT EXECUTE ON FUNCTION ray._run_spec(), ray._run_model_data(), ray._run_progress(bigint, bigint) TO PUBLIC;
GRANT EXECUTE ON FUNCTION
	ray.create_resource_group(text, text, text, jsonb),
	ray.register_cluster(text, text, text, jsonb),
	ray.alter_cluster(text, text, text, jsonb),
	ray.alter_resource_group(text, text, jsonb, boolean),
	ray.drop_resource_group(text, boolean),
	ray.add_worker_group(text, text, text, text, integer, integer, integer, numeric),
	ray.alter_worker_group(text, text, text, text, integer, integer, integer, numeric, boolean),
	ray.drop_worker_group(text, text, boolean),
	ray.grant_usage(text, name),
	ray.revoke_usage(text, name)
TO ray_admin;

/* ------------------------------------------------------------------------
 * pg_dump: user data is dumped; the built-in node specs come with the
 * extension itself.
 * ------------------------------------------------------------------------
 */

SELECT pg_catalog.pg_extension_config_dump('ray.node_spec', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('ray.resource_group', '');
SELECT pg_catalog.pg_extension_config_dump('ray.worker_group', '');
SELECT pg_catalog.pg_extension_config_dump('ray.resource_group_grant', '');
SELECT pg_catalog.pg_extension_config_dump('ray.resource_group_event', '');
SELECT pg_catalog.pg_extension_config_dump('ray.resource_group_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ray.job', '');
SELECT pg_catalog.pg_extension_config_dump('ray.job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ray.job_event', '');
SELECT pg_catalog.pg_extension_config_dump('ray.job_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ray.job_log', '');
SELECT pg_catalog.pg_extension_config_dump('ray.job_package', '');
SELECT pg_catalog.pg_extension_config_dump('ray.resource_group_secret', '');
SELECT pg_catalog.pg_extension_config_dump('ray.lost_run', '');
SELECT pg_catalog.pg_extension_config_dump('ray.model', '');
