/*
 * sql/install/tables.sql
 *		The catalog's tables, sequences and indexes, and what pg_dump
 *		dumps of them.
 *
 * This file runs once, in a fresh install (the install script); an update
 * script changes what it made with statements of its own in sql/updates/.
 *
 * Copyright (c) 2026, pg_ray developers
 */

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
	-- bounded: the worker computes bytes from it, and one spec it cannot must not stop every round
	memory_mb bigint NOT NULL
		CONSTRAINT node_spec_memory_mb_check CHECK (memory_mb >= 512 AND memory_mb <= 1073741824),
	num_gpus numeric NOT NULL DEFAULT 0
		CONSTRAINT node_spec_num_gpus_check CHECK (num_gpus >= 0 AND num_gpus <= 1024),
	gpu_model text,
	cpu_units numeric NOT NULL
		CONSTRAINT node_spec_cpu_units_check CHECK (cpu_units > 0 AND cpu_units <= 1000000),
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
	-- local: the OS user of pg_ray's pool its Ray nodes run as, its alone
	os_user name,
	CONSTRAINT resource_group_head_spec_check CHECK (provider = 'external' OR head_spec IS NOT NULL),
	CONSTRAINT resource_group_endpoint_check CHECK ((provider = 'external') = (endpoint IS NOT NULL)),
	CONSTRAINT resource_group_os_user_key UNIQUE (os_user),
	CONSTRAINT resource_group_os_user_check CHECK ((provider = 'local') = (os_user IS NOT NULL))
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
	grantee_oid oid,			-- 0 for public (ray._bind_roles)
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
	owner_oid oid,				-- the role named owner, bound when the row is made (ray._bind_roles)
	-- admission (docs/design.md, "Admission"): higher priorities start first in their group,
	-- and a job starts when what it asks for fits; runs Ray's own machinery lost before
	-- their driver began are requeued without spending an attempt, ray_requeues times
	priority integer NOT NULL DEFAULT 0
		CONSTRAINT job_priority_check CHECK (priority BETWEEN -1000 AND 1000),
	cpus_asked numeric NOT NULL DEFAULT 1 CONSTRAINT job_cpus_asked_check CHECK (cpus_asked >= 0),
	gpus_asked numeric NOT NULL DEFAULT 0 CONSTRAINT job_gpus_asked_check CHECK (gpus_asked >= 0),
	ray_requeues integer NOT NULL DEFAULT 0 CONSTRAINT job_ray_requeues_check CHECK (ray_requeues >= 0),
	worker_group text,			-- the worker group the job asked to run on (its entrypoint or its replicas)
	CONSTRAINT job_attempts_check CHECK (attempts BETWEEN 0 AND max_attempts + ray_requeues),
	CONSTRAINT job_finished_iff_terminal
		CHECK ((state IN ('SUCCEEDED', 'FAILED', 'STOPPED')) = (finished_at IS NOT NULL))
);
COMMENT ON TABLE ray.job IS
'Ray jobs: what was asked (entrypoint, runtime_env, resources) and what happened (state, attempts, times).';
CREATE INDEX job_active_idx ON ray.job (state)
	WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED');
CREATE INDEX job_owner_idx ON ray.job (owner_oid, job_id);
CREATE INDEX job_resource_group_idx ON ray.job (resource_group);
-- fair share reads the jobs that ended within pg_ray.fair_share_window
CREATE INDEX job_finished_at_idx ON ray.job (finished_at) WHERE finished_at IS NOT NULL;

/*
 * What a role may have of a resource group at once: jobs in Ray, CPUs and
 * GPUs they ask for, jobs queued; the highest priority its jobs may have;
 * and its share in fair share.  A quota on a role bounds the jobs of the
 * role and of its members together.
 */
CREATE TABLE ray.quota (
	resource_group text NOT NULL
		REFERENCES ray.resource_group (name) ON UPDATE CASCADE ON DELETE CASCADE,
	role name NOT NULL,
	max_running_jobs integer CONSTRAINT quota_max_running_jobs_check CHECK (max_running_jobs >= 0),
	max_cpus numeric CONSTRAINT quota_max_cpus_check CHECK (max_cpus >= 0),
	max_gpus numeric CONSTRAINT quota_max_gpus_check CHECK (max_gpus >= 0),
	max_queued_jobs integer CONSTRAINT quota_max_queued_jobs_check CHECK (max_queued_jobs >= 0),
	max_priority integer CONSTRAINT quota_max_priority_check CHECK (max_priority BETWEEN -1000 AND 1000),
	share numeric NOT NULL DEFAULT 1 CONSTRAINT quota_share_check CHECK (share > 0 AND share <= 1000),
	set_by name NOT NULL,
	set_at timestamptz NOT NULL DEFAULT now(),
	role_oid oid,				-- the role named, bound when the row is made (ray._bind_roles)
	PRIMARY KEY (resource_group, role)
);
COMMENT ON TABLE ray.quota IS
'Quotas of roles on resource groups (NULL: no limit) and their shares in fair share; a role''s members count together.';

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
	-- what its run directory takes on disk, as pg_ray_launch last counted it (worker nodes)
	disk_used_bytes bigint,
	disk_measured_at timestamptz,
	CONSTRAINT node_worker_group_check CHECK ((kind = 'worker') = (worker_group IS NOT NULL))
);
ALTER SEQUENCE ray.node_id_seq OWNED BY ray.node.node_id;
CREATE INDEX ON ray.node (resource_group, kind);
COMMENT ON TABLE ray.node IS
'Nodes of local resource groups: processes on this host, their ports, run directories and what Ray reports of them.';

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
	owner_oid oid,				-- the role named owner, bound when the row is made (ray._bind_roles)
	PRIMARY KEY (name, version),
	CONSTRAINT model_data_or_uri CHECK ((data IS NULL) <> (uri IS NULL))
);
COMMENT ON TABLE ray.model IS
'Models for batch inference, by name and version: kept here (data) or named by where they live (uri).';

/*
 * Who may run a model besides its owner: a model is code, and a batch run
 * runs it with the identity and data of whoever runs it, so a user runs
 * only models of their own, or those their owner granted them.  A grant
 * covers the versions its granter owns.
 */
CREATE TABLE ray.model_grant (
	model text NOT NULL,
	grantee name NOT NULL,		-- a role name, or 'public'
	granted_by name NOT NULL,
	granted_at timestamptz NOT NULL DEFAULT now(),
	grantee_oid oid,			-- 0 for public (ray._bind_roles)
	granted_by_oid oid,
	PRIMARY KEY (model, grantee, granted_by)
);
COMMENT ON TABLE ray.model_grant IS
'Which roles may run which model besides its owner (grantee ''public'' is everyone): the versions the granter owns.';


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


/* ------------------------------------------------------------------------
 * Usage: what ran, for how long, with what.  Kept apart from the history
 * that pg_ray.history_retention purges, and outliving the groups, nodes and
 * jobs it tells of (docs/operations.md, "Usage").
 * ------------------------------------------------------------------------
 */

/*
 * Each life of a node of a local group, from the start of its process to
 * the end of its last one, with the size it had.  The worker opens a row
 * when it starts a node and closes it when the node's processes are gone;
 * a node that outlives a restart of the worker or the server keeps its row
 * open, so it is counted once.
 */
CREATE SEQUENCE ray.node_lifetime_id_seq;

CREATE TABLE ray.node_lifetime (
	lifetime_id bigint PRIMARY KEY DEFAULT nextval('ray.node_lifetime_id_seq'),
	resource_group text NOT NULL,	-- no foreign key: usage outlives the group
	kind text NOT NULL CONSTRAINT node_lifetime_kind_check CHECK (kind IN ('head', 'worker')),
	worker_group text,
	node_id bigint NOT NULL,		-- the slot in ray.node while it lasts
	spec text NOT NULL,
	num_cpus numeric NOT NULL,
	num_gpus numeric NOT NULL,		-- physical GPUs: a share of one with a distribution unit
	memory_mb bigint NOT NULL,
	disk_gb integer,				-- a worker's worker group's disk_gb
	cpu_units numeric NOT NULL,
	started_at timestamptz NOT NULL,
	ended_at timestamptz,
	CONSTRAINT node_lifetime_worker_group_check CHECK ((kind = 'worker') = (worker_group IS NOT NULL)),
	CONSTRAINT node_lifetime_ends_after_start CHECK (ended_at >= started_at)
);
ALTER SEQUENCE ray.node_lifetime_id_seq OWNED BY ray.node_lifetime.lifetime_id;
CREATE UNIQUE INDEX node_lifetime_open_idx ON ray.node_lifetime (node_id) WHERE ended_at IS NULL;
CREATE INDEX ON ray.node_lifetime (resource_group, started_at);
COMMENT ON TABLE ray.node_lifetime IS
'Each life of a local Ray node: its group, size and start and end, from which ray.usage meters groups.';

/*
 * Each attempt of a job that ran in Ray, from its start to its end (Ray's
 * own times when it reports them), with what the job asked for.  Written
 * when the attempt stops running; ray.job_usage adds the attempts running
 * now.
 */
CREATE TABLE ray.job_run_usage (
	job_id bigint NOT NULL,			-- no foreign key: usage outlives the job's history
	attempt integer NOT NULL,
	owner name NOT NULL,
	owner_oid oid,
	resource_group text NOT NULL,
	worker_group text,
	kind text NOT NULL,
	cpus numeric NOT NULL,
	gpus numeric NOT NULL,
	memory_bytes bigint NOT NULL,
	started_at timestamptz NOT NULL,
	ended_at timestamptz NOT NULL,
	PRIMARY KEY (job_id, attempt),
	CONSTRAINT job_run_usage_ends_after_start CHECK (ended_at >= started_at)
);
CREATE INDEX ON ray.job_run_usage (owner_oid, started_at);
COMMENT ON TABLE ray.job_run_usage IS
'Each attempt of a job that ran in Ray: its owner, times and the CPUs, GPUs and memory it asked for.';


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
SELECT pg_catalog.pg_extension_config_dump('ray.model_grant', '');
SELECT pg_catalog.pg_extension_config_dump('ray.batch_run', '');
SELECT pg_catalog.pg_extension_config_dump('ray.quota', '');
SELECT pg_catalog.pg_extension_config_dump('ray.node_lifetime', '');
SELECT pg_catalog.pg_extension_config_dump('ray.node_lifetime_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ray.job_run_usage', '');
