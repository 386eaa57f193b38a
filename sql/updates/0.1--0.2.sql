/*
 * sql/updates/0.1--0.2.sql
 *		What changes in the objects made once when pg_ray 0.1 becomes 0.2.
 *
 * The update script from 0.1 runs this first, then every file that is run
 * again on each update (the Makefile's SQL_UPDATE), so functions, triggers,
 * views and privileges need nothing here unless one is dropped or changes
 * its signature.  The same changes are in sql/install/, for a fresh install;
 * test/integration/test_upgrade.py checks that both give the same catalog.
 *
 * Copyright (c) 2026, pg_ray developers
 */

-- ray_monitor sees what an admin sees and changes nothing (monitoring, BI tools); ray_admin has it
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ray_monitor') THEN
		CREATE ROLE ray_monitor NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('ray_admin', 'ray_monitor', 'MEMBER') THEN
		GRANT ray_monitor TO ray_admin;
	END IF;
END
$roles$;

-- the login roles of batch runs reach schema ray through ray_run (0.1 granted each its own USAGE,
-- which a statement of an update that grants on the schema records among the extension's initial
-- privileges, where it outlives the role: pg_dump then revokes from a role that does not exist)
GRANT USAGE ON SCHEMA ray TO ray_run;
DO $runs$
DECLARE
	run_role name;
BEGIN
	FOR run_role IN SELECT r.rolname FROM pg_catalog.pg_roles r
					JOIN pg_catalog.pg_auth_members m ON m.member = r.oid
					WHERE m.roleid = 'ray_run'::regrole
					  AND EXISTS (SELECT FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
								  WHERE n.nspname = 'ray' AND a.grantee = r.oid) LOOP
		EXECUTE pg_catalog.format('REVOKE USAGE ON SCHEMA ray FROM %I', run_role);
	END LOOP;
END
$runs$;

-- batch runs are dumped with their jobs (0.1 left them out of a backup)
SELECT pg_catalog.pg_extension_config_dump('ray.batch_run', '');

-- models run only for their owner and whom the owner grants them (0.1 let admins run any)
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
SELECT pg_catalog.pg_extension_config_dump('ray.model_grant', '');

-- owners and grantees by OID as well as by name (0.1: by name only, so a role created under a
-- dropped role's name took over its jobs and models, and a renamed role lost them); rows made
-- before are bound to the roles that have their names now, as ray._bind_roles binds new rows
ALTER TABLE ray.job ADD COLUMN owner_oid oid;
UPDATE ray.job SET owner_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = owner);
DROP INDEX ray.job_owner_idx;
CREATE INDEX job_owner_idx ON ray.job (owner_oid, job_id);
ALTER TABLE ray.model ADD COLUMN owner_oid oid;
UPDATE ray.model SET owner_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = owner);
ALTER TABLE ray.resource_group_grant ADD COLUMN grantee_oid oid;
UPDATE ray.resource_group_grant
SET grantee_oid = CASE WHEN grantee = 'public' THEN 0 ELSE (SELECT r.oid FROM pg_roles r WHERE r.rolname = grantee) END;

DROP POLICY job_owner_or_admin ON ray.job;
CREATE POLICY job_owner_or_admin ON ray.job FOR SELECT
	USING (owner_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
		   OR pg_has_role(current_user, 'ray_monitor', 'USAGE'));

DROP POLICY model_owner_or_admin ON ray.model;
CREATE POLICY model_owner_grantee_or_admin ON ray.model FOR SELECT
	USING (owner_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
		   OR pg_has_role(current_user, 'ray_monitor', 'USAGE')
		   OR EXISTS (SELECT FROM ray.model_grant g WHERE g.model = name AND g.granted_by_oid = owner_oid));

ALTER TABLE ray.model_grant ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_grant_of_party_or_admin ON ray.model_grant FOR SELECT
	USING (granted_by_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user) OR grantee_oid = 0
		   OR EXISTS (SELECT FROM pg_roles r WHERE r.oid = grantee_oid AND pg_has_role(current_user, r.oid, 'USAGE'))
		   OR pg_has_role(current_user, 'ray_monitor', 'USAGE'));

-- ray._drop_run_role says whether it could drop the role (0.1: void)
DROP FUNCTION ray._drop_run_role(name);

-- node specs within bounds the worker can compute with (0.1: a memory_mb too large to count
-- in bytes, or a NaN or infinite number of GPUs or CPU units, failed every round); a spec
-- out of them stops the update with a message, and nothing is changed
DO $$
DECLARE
	spec ray.node_spec;
BEGIN
	SELECT * INTO spec FROM ray.node_spec
	WHERE NOT (memory_mb <= 1073741824 AND num_gpus <= 1024 AND cpu_units <= 1000000)
	ORDER BY name LIMIT 1;
	IF spec.name IS NOT NULL THEN
		RAISE EXCEPTION 'node spec "%" is out of the bounds pg_ray 0.2 sets', spec.name
			USING ERRCODE = 'check_violation',
				  DETAIL = format('memory_mb %s (at most 1073741824), num_gpus %s (at most 1024), cpu_units %s (at most 1000000).',
								  spec.memory_mb, spec.num_gpus, spec.cpu_units),
				  HINT = 'Correct it with UPDATE ray.node_spec, then run ALTER EXTENSION pg_ray UPDATE again.';
	END IF;
END
$$;
ALTER TABLE ray.node_spec
	DROP CONSTRAINT node_spec_memory_mb_check,
	ADD CONSTRAINT node_spec_memory_mb_check CHECK (memory_mb >= 512 AND memory_mb <= 1073741824),
	DROP CONSTRAINT node_spec_num_gpus_check,
	ADD CONSTRAINT node_spec_num_gpus_check CHECK (num_gpus >= 0 AND num_gpus <= 1024),
	DROP CONSTRAINT node_spec_cpu_units_check,
	ADD CONSTRAINT node_spec_cpu_units_check CHECK (cpu_units > 0 AND cpu_units <= 1000000);

-- jobs queued by 0.1 run the model registration they name now, as 0.2 records at submission
UPDATE ray.batch_run b
SET plan = jsonb_set(b.plan, '{model}', (b.plan -> 'model')
					 || jsonb_build_object('owner', m.owner, 'registered_at', m.created_at))
FROM ray.model m, ray.job j
WHERE j.job_id = b.job_id AND j.state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED')
  AND m.name = b.plan -> 'model' ->> 'name' AND m.version::text = b.plan -> 'model' ->> 'version'
  AND NOT b.plan -> 'model' ? 'registered_at';

-- local groups run their Ray nodes as an OS user of their own (pgray-g<N>), handed out in
-- the order the groups were made; their nodes restart once as that user (security.md)
ALTER TABLE ray.resource_group ADD COLUMN os_user name;
UPDATE ray.resource_group g SET os_user = 'pgray-g' || o.n
FROM (SELECT name, row_number() OVER (ORDER BY created_at, name) - 1 AS n
	  FROM ray.resource_group WHERE provider = 'local') o
WHERE o.name = g.name;
ALTER TABLE ray.resource_group
	ADD CONSTRAINT resource_group_os_user_key UNIQUE (os_user),
	ADD CONSTRAINT resource_group_os_user_check CHECK ((provider = 'local') = (os_user IS NOT NULL));

-- ray._local_plan says each node's OS user (0.1: none), and whether to measure its disk use
DROP FUNCTION ray._local_plan(integer);

-- a worker node's disk use against its worker group's disk_gb (docs/sql.md, "Disk")
ALTER TABLE ray.node ADD COLUMN disk_used_bytes bigint, ADD COLUMN disk_measured_at timestamptz;

-- admission (docs/design.md, "Admission"): priorities, what each job asks for, and runs Ray's
-- own machinery lost before their driver began, which spend no attempt; jobs queued by 0.1 ask
-- what 0.2 would have recorded (a batch run: its replicas at most)
ALTER TABLE ray.job
	ADD COLUMN priority integer NOT NULL DEFAULT 0
		CONSTRAINT job_priority_check CHECK (priority BETWEEN -1000 AND 1000),
	ADD COLUMN cpus_asked numeric NOT NULL DEFAULT 1 CONSTRAINT job_cpus_asked_check CHECK (cpus_asked >= 0),
	ADD COLUMN gpus_asked numeric NOT NULL DEFAULT 0 CONSTRAINT job_gpus_asked_check CHECK (gpus_asked >= 0),
	ADD COLUMN ray_requeues integer NOT NULL DEFAULT 0 CONSTRAINT job_ray_requeues_check CHECK (ray_requeues >= 0),
	ADD COLUMN worker_group text,			-- the worker group the job asked to run on (its entrypoint or its replicas)
	DROP CONSTRAINT job_attempts_check,
	ADD CONSTRAINT job_attempts_check CHECK (attempts BETWEEN 0 AND max_attempts + ray_requeues);
UPDATE ray.job SET cpus_asked = coalesce(entrypoint_num_cpus, 1), gpus_asked = coalesce(entrypoint_num_gpus, 0)
WHERE kind = 'script';
UPDATE ray.job j
SET cpus_asked = r.replicas * coalesce((b.plan #>> '{options,num_cpus}')::numeric, 1),
	gpus_asked = r.replicas * coalesce((b.plan #>> '{options,num_gpus}')::numeric, 0)
FROM ray.batch_run b
CROSS JOIN LATERAL (
	SELECT CASE WHEN jsonb_typeof(b.plan #> '{options,concurrency}') = 'array'
				THEN (b.plan #>> '{options,concurrency,0}')::numeric
				ELSE coalesce((b.plan #>> '{options,concurrency}')::numeric, 1) END AS replicas) r
WHERE b.job_id = j.job_id;

-- fair share reads the jobs that ended within pg_ray.fair_share_window
CREATE INDEX job_finished_at_idx ON ray.job (finished_at) WHERE finished_at IS NOT NULL;

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
SELECT pg_catalog.pg_extension_config_dump('ray.quota', '');

-- submit_job and batch inference take a priority; Ray's verdict on a run is read with its message
DROP FUNCTION ray.submit_job(text, text, jsonb, jsonb, numeric, numeric, bigint, jsonb, integer, boolean, bytea);
DROP FUNCTION ray.batch_inference(text, text, text, text, text[], text[], text, text, boolean, jsonb);
DROP FUNCTION ray._submit_batch_inference(text, jsonb);
DROP FUNCTION ray._is_infrastructure_failure(text);

-- usage metering (docs/operations.md, "Usage"): node lifetimes and job runs, from now on;
-- a node running now is counted from its start
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
INSERT INTO ray.node_lifetime (resource_group, kind, worker_group, node_id, spec, num_cpus, num_gpus,
							   memory_mb, disk_gb, cpu_units, started_at)
SELECT n.resource_group, n.kind, n.worker_group, n.node_id, s.name,
	   s.num_cpus, CASE WHEN n.kind = 'worker' AND s.resource_type = 'GPU' THEN s.num_gpus ELSE 0 END,
	   s.memory_mb, (SELECT w.disk_gb FROM ray.worker_group w
					 WHERE w.resource_group = n.resource_group AND w.name = n.worker_group),
	   s.cpu_units, coalesce(n.started_at, now())
FROM ray.node n JOIN ray.node_spec s ON s.name = n.config ->> 'spec'
WHERE n.pid IS NOT NULL AND n.kind IN ('head', 'worker');
SELECT pg_catalog.pg_extension_config_dump('ray.node_lifetime', '');
SELECT pg_catalog.pg_extension_config_dump('ray.node_lifetime_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ray.job_run_usage', '');

-- working directories go once no attempt can need them: when their job has finished
DELETE FROM ray.job_package p USING ray.job j
WHERE j.job_id = p.job_id AND j.state IN ('SUCCEEDED', 'FAILED', 'STOPPED');
