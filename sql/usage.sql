/*
 * sql/usage.sql
 *		What the worker records for usage metering: the lives of local nodes
 *		and the runs of jobs (docs/operations.md, "Usage").
 *
 * The views that meter them (ray.usage, ray.job_usage, ray.usage_by_role)
 * are in views.sql.  A node's life is recorded by the functions that record
 * its process (local_nodes.sql), a job's run by the state machine
 * (state_machine.sql), each in the transaction that records the change, so
 * what is metered is what the catalog says happened, once.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * A node's process was started (or found running and adopted): open its
 * lifetime, with the size its spec gives it now.  An adopted node that has
 * an open lifetime keeps it, so a node that outlived a restart of the
 * worker or of the server is counted once, from its real start.  A
 * lifetime left open by a node that no longer runs (its database was
 * restored from a backup) ends now.
 */
CREATE OR REPLACE FUNCTION ray._node_life_began(id bigint, adopted boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	spec ray.node_spec;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id;
	IF NOT FOUND OR n.kind NOT IN ('head', 'worker') THEN
		RETURN;
	END IF;
	IF adopted AND EXISTS (SELECT FROM ray.node_lifetime WHERE node_id = id AND ended_at IS NULL) THEN
		RETURN;
	END IF;
	PERFORM ray._node_life_ended(id, clock_timestamp());
	SELECT * INTO spec FROM ray.node_spec WHERE name = n.config ->> 'spec';
	INSERT INTO ray.node_lifetime (resource_group, kind, worker_group, node_id, spec, num_cpus, num_gpus,
								   memory_mb, disk_gb, cpu_units, started_at)
	VALUES (n.resource_group, n.kind, n.worker_group, id, n.config ->> 'spec',
			coalesce(spec.num_cpus, (n.config ->> 'num_cpus')::numeric, 0),
			-- with a distribution unit a worker has a share of one physical GPU
			CASE WHEN n.config ->> 'resource_type' = 'GPU'
				 THEN coalesce((n.config ->> 'gpu_distribution_unit')::numeric, spec.num_gpus, 0)
				 ELSE 0 END,
			coalesce(spec.memory_mb, (n.config ->> 'memory_mb')::bigint, 0),
			(n.config ->> 'disk_gb')::integer,
			coalesce(spec.cpu_units, 0),
			coalesce(n.started_at, clock_timestamp()));
END
$$;
COMMENT ON FUNCTION ray._node_life_began(bigint, boolean) IS
'Open the lifetime of a node whose process was started, or keep the open one of a node adopted.';

/* A node's processes are gone: its lifetime ends at the time given. */
CREATE OR REPLACE FUNCTION ray._node_life_ended(id bigint, ended timestamptz)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	UPDATE ray.node_lifetime SET ended_at = greatest(started_at, ended)
	WHERE node_id = id AND ended_at IS NULL
$$;
COMMENT ON FUNCTION ray._node_life_ended(bigint, timestamptz) IS
'End the open lifetime of a node whose processes are gone.';

/*
 * When a node found dead ended.  If this worker saw it alive, now: it
 * checks its nodes every few hundred milliseconds.  If it did not (the
 * node died while the worker or the server was down), the last time Ray
 * reported it alive, or its start: the time it was down is not its.
 */
CREATE OR REPLACE FUNCTION ray._node_end_time(n ray.node)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN greatest(n.started_at, CASE WHEN n.ray_state = 'ALIVE' THEN n.observed_at END)
					 >= (SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = pg_backend_pid())
				THEN clock_timestamp()
				ELSE coalesce(CASE WHEN n.ray_state = 'ALIVE' THEN n.observed_at END, n.started_at, clock_timestamp())
		   END
$$;
COMMENT ON FUNCTION ray._node_end_time(ray.node) IS
'When a node found dead ended: now if this worker saw it alive, else when it was last seen alive.';

/*
 * A job's attempt stopped running in Ray: record its run, from when it was
 * seen running until now, with what the job asked for (as admission counts
 * it: a batch run's replicas).  ray._job_run_times corrects the times to
 * Ray's own when Ray reports them.
 */
CREATE OR REPLACE FUNCTION ray._job_run_ended(job ray.job, running_since timestamptz)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO ray.job_run_usage (job_id, attempt, owner, owner_oid, resource_group, worker_group, kind,
								   cpus, gpus, memory_bytes, started_at, ended_at)
	VALUES (job.job_id, job.attempts, job.owner, job.owner_oid, job.resource_group, job.worker_group, job.kind,
			job.cpus_asked, job.gpus_asked, coalesce(job.entrypoint_memory, 0),
			running_since, greatest(running_since, clock_timestamp()))
	ON CONFLICT ON CONSTRAINT job_run_usage_pkey DO NOTHING
$$;
COMMENT ON FUNCTION ray._job_run_ended(ray.job, timestamptz) IS
'Record the run of a job''s attempt that stopped running in Ray.';

/*
 * Ray's own start and end of an attempt's driver (milliseconds since the
 * epoch), for its run: a run seen only once it had finished was RUNNING in
 * pg_ray for no time at all, and one that failed and was requeued before it
 * was seen running has no run recorded yet.  Ray's times come from the
 * cluster, where a job's own code runs: they are taken only between the
 * job's submission and now, else pg_ray's own are kept.
 */
CREATE OR REPLACE FUNCTION ray._job_run_times(id bigint, run_attempt integer, start_ms bigint, end_ms bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job;
	started timestamptz;
	ended timestamptz;
BEGIN
	SELECT * INTO job FROM ray.job WHERE job_id = id;
	IF NOT FOUND OR start_ms IS NULL OR end_ms IS NULL
		OR start_ms < extract(epoch FROM job.submitted_at) * 1000 - 60000
		OR end_ms < start_ms
		OR end_ms > extract(epoch FROM clock_timestamp()) * 1000 + 60000 THEN
		RETURN;
	END IF;
	started := to_timestamp(start_ms / 1000.0);
	ended := least(to_timestamp(end_ms / 1000.0), clock_timestamp());
	UPDATE ray.job_run_usage SET started_at = started, ended_at = greatest(ended, started)
	WHERE job_id = id AND attempt = run_attempt;
	IF NOT FOUND THEN
		job.attempts := run_attempt;
		PERFORM ray._job_run_ended(job, started);
		UPDATE ray.job_run_usage SET ended_at = greatest(ended, started)
		WHERE job_id = id AND attempt = run_attempt;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._job_run_times(bigint, integer, bigint, bigint) IS
'Set a run''s times to those Ray reported for its driver (within the job''s submission and now), recording the run if it was never seen running.';
