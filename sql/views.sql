/*
 * sql/views.sql
 *		Views for psql users and BI tools.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * The resource groups the querying role may use through a grant (to it, to
 * a role it has, or to PUBLIC): ray._can_use without its admin case, for
 * the views below, which read it with their owner's rights (a function
 * would read the grants with the caller's).  pg_has_role asks about the
 * role that queries.  Not granted to ray_user (ray_admin reads every view).
 */
CREATE OR REPLACE VIEW ray._granted_groups WITH (security_barrier = true) AS
SELECT DISTINCT g.resource_group
FROM ray.resource_group_grant g
LEFT JOIN pg_roles r ON r.oid = g.grantee_oid
WHERE g.grantee_oid = 0 OR (r.oid IS NOT NULL AND pg_has_role(current_user, r.oid, 'USAGE'));
COMMENT ON VIEW ray._granted_groups IS
'The resource groups the querying role was granted usage of, directly, through a role it has, or through PUBLIC.';

/* The nodes of local resource groups as Ray and pg_ray see them. */
-- a security barrier: the caller's conditions must not see rows of groups it may not use
CREATE OR REPLACE VIEW ray.nodes WITH (security_barrier = true) AS
SELECT * FROM (
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
	   n.last_exit,
	   (n.config ->> 'disk_gb')::integer AS disk_gb,
	   round(n.disk_used_bytes / 1073741824.0, 3) AS disk_used_gb,
	   n.disk_measured_at
FROM ray.node n
-- a role sees the nodes of the groups it may use
WHERE pg_has_role(current_user, 'ray_monitor', 'USAGE')
   OR n.resource_group IN (SELECT resource_group FROM ray._granted_groups)
-- a fence: not even a leakproof condition of the caller's reaches the hidden rows (EXPLAIN
-- ANALYZE would tell whether one matched)
OFFSET 0) visible;
COMMENT ON VIEW ray.nodes IS
'Nodes of the local resource groups the role may use: what runs (pid, first port), what Ray reports (state, node id, resources) and why a node stops or stopped.';

/*
 * The queue of each group as the worker takes it (ray._queue_order): the
 * place of each job is counted among every job of its group, but a role
 * sees only its own jobs (all for ray_admin).
 */
CREATE OR REPLACE VIEW ray.queue WITH (security_barrier = true) AS
SELECT * FROM (
SELECT o.resource_group,
	   o.queue_position,
	   o.job_id,
	   j.owner,
	   j.kind,
	   o.priority,
	   o.cpus_asked,
	   o.gpus_asked,
	   o.fair_share_key,
	   j.submitted_at,
	   j.message AS waiting_for
FROM ray._queue_order o
JOIN ray.job j ON j.job_id = o.job_id
WHERE j.owner_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
   OR pg_has_role(current_user, 'ray_monitor', 'USAGE')
OFFSET 0) visible;
COMMENT ON VIEW ray.queue IS
'Queued jobs of the current role (all for ray_admin) in the order they start in their group: priority, then fair share between roles, then submission; and what each waits for.';

CREATE OR REPLACE VIEW ray.jobs WITH (security_invoker = true) AS
SELECT
	job_id,
	j.resource_group,
	j.owner,
	j.kind,
	j.state,
	j.attempts,
	j.max_attempts,
	j.submitted_at,
	j.started_at,
	j.finished_at,
	j.finished_at - j.started_at AS run_time,
	j.message,
	j.entrypoint,
	j.ray_submission_id,
	j.error_type,
	j.driver_exit_code,
	j.rows_processed,
	j.rows_total,
	CASE WHEN j.rows_total > 0 THEN round(100.0 * j.rows_processed / j.rows_total, 1) END AS progress_pct,
	j.target_table,
	j.rows_written,
	j.stop_requested_at,
	j.stopped_by,
	j.priority,
	j.cpus_asked,
	j.gpus_asked,
	j.ray_requeues,
	-- where a queued job is in its group's queue (1: next to start); why it waits is its message
	q.queue_position
FROM ray.job j
LEFT JOIN ray.queue q USING (job_id);
COMMENT ON VIEW ray.jobs IS
'Jobs the current role may see (its own; all for ray_admin), with typed columns for psql and BI tools; a queued job''s message says why it waits.';

/*
 * Quotas with what their roles have in Ray now.  A role sees the quotas of
 * the roles it belongs to; ray_admin all.
 */
CREATE OR REPLACE VIEW ray.quotas WITH (security_barrier = true) AS
SELECT * FROM (
SELECT q.resource_group,
	   q.role,
	   q.max_running_jobs,
	   q.max_cpus,
	   q.max_gpus,
	   q.max_queued_jobs,
	   q.max_priority,
	   q.share,
	   u.running_jobs,
	   u.cpus_in_use,
	   u.gpus_in_use,
	   u.queued_jobs,
	   q.set_by,
	   q.set_at
FROM ray.quota q
CROSS JOIN LATERAL (
	SELECT count(*) FILTER (WHERE j.state IN ('SUBMITTING', 'PENDING', 'RUNNING'))::integer AS running_jobs,
		   coalesce(sum(j.cpus_asked) FILTER (WHERE j.state IN ('SUBMITTING', 'PENDING', 'RUNNING')), 0) AS cpus_in_use,
		   coalesce(sum(j.gpus_asked) FILTER (WHERE j.state IN ('SUBMITTING', 'PENDING', 'RUNNING')), 0) AS gpus_in_use,
		   count(*) FILTER (WHERE j.state = 'QUEUED')::integer AS queued_jobs
	FROM ray.job j
	WHERE j.resource_group = q.resource_group AND j.state IN ('QUEUED', 'SUBMITTING', 'PENDING', 'RUNNING')
	  AND ray._quota_applies(j.owner_oid, q.role_oid)) u
WHERE pg_has_role(current_user, 'ray_monitor', 'USAGE')
   OR ray._quota_applies((SELECT c.oid FROM pg_roles c WHERE c.rolname = current_user), q.role_oid)
OFFSET 0) visible;
COMMENT ON VIEW ray.quotas IS
'Quotas of roles on resource groups (NULL: no limit), their shares in fair share, and what the role and its members have in Ray and queued now.';

CREATE OR REPLACE VIEW ray.job_events WITH (security_invoker = true) AS
SELECT e.event_id, e.job_id, j.resource_group, j.owner, e.at, e.from_state, e.to_state,
	   e.attempt, e.actor, e.message
FROM ray.job_event e
JOIN ray.job j USING (job_id);
COMMENT ON VIEW ray.job_events IS
'State changes of the jobs the current role may see.';

CREATE OR REPLACE VIEW ray.resource_groups AS
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
	g.state_changed_at,
	-- a local group's head's Ray metrics (each node's are in pg_ray.metrics_targets_file)
	(SELECT format('http://127.0.0.1:%s/metrics', h.port_base + 5) FROM ray.node h
	 WHERE h.resource_group = g.name AND h.kind = 'head' AND h.pid IS NOT NULL) AS metrics_url
FROM ray.resource_group g
LEFT JOIN ray.worker_group w ON w.resource_group = g.name
GROUP BY g.name;
COMMENT ON VIEW ray.resource_groups IS
'Resource groups with their observed state and worker counts (options, which may hold secrets, are left out).';

CREATE OR REPLACE VIEW ray.worker_groups AS
SELECT w.resource_group, w.name, w.resource_type, w.spec, s.num_cpus, s.memory_mb, s.num_gpus,
	   w.min_workers, w.max_workers, w.disk_gb, w.gpu_distribution_unit,
	   w.desired_workers, w.live_workers, w.created_at
FROM ray.worker_group w
JOIN ray.node_spec s ON s.name = w.spec;
COMMENT ON VIEW ray.worker_groups IS
'Worker groups with the size of their nodes and their desired and live worker counts.';

CREATE OR REPLACE VIEW ray.models WITH (security_invoker = true) AS
SELECT name, version, kind, uri, length(data) AS data_bytes, options, owner, created_at
FROM ray.model;
COMMENT ON VIEW ray.models IS
'Models the current role may see (its own; all for ray_admin), without their bytes.';

/*
 * The history of the resource groups a role may use: each state change, scale
 * step, node start, exit, restart and stop, with its reason, so that users
 * see why their group grew, shrank or became DEGRADED.  The events of a group
 * that is gone are for admins only: nobody holds a grant on it any more.
 */
-- a security barrier: the caller's conditions must not see events of groups it may not use
CREATE OR REPLACE VIEW ray.resource_group_events WITH (security_barrier = true) AS
SELECT * FROM (
SELECT e.event_id,
	   e.resource_group,
	   e.at,
	   e.from_state,
	   e.to_state,
	   e.generation,
	   e.actor,
	   e.message
FROM ray.resource_group_event e
WHERE pg_has_role(current_user, 'ray_monitor', 'USAGE')
   -- the group of that name now, from its creation event on: not an earlier group's history
   OR EXISTS (SELECT FROM ray.resource_group g
			  WHERE g.name = e.resource_group
				AND g.name IN (SELECT resource_group FROM ray._granted_groups)
				-- (all of it once retention purged the creation event, and every earlier one)
				AND e.event_id >= coalesce((SELECT max(c.event_id) FROM ray.resource_group_event c
											WHERE c.resource_group = g.name AND c.from_state IS NULL), 0))
OFFSET 0) visible;
COMMENT ON VIEW ray.resource_group_events IS
'The history of the resource groups the role may use (all, for ray_admin): state changes, scaling, node starts, exits and stops, each with its reason.';

/* ------------------------------------------------------------------------
 * Usage (docs/operations.md, "Usage")
 * ------------------------------------------------------------------------
 */

/*
 * Node lifetimes cut at the hours they span (in the session's time zone),
 * with the seconds of each piece; an open lifetime counts until now.
 * Unfiltered: ray.usage shows it to whom may see each group.
 */
CREATE OR REPLACE VIEW ray._node_hours AS
SELECT l.*, h.hour,
	   extract(epoch FROM least(h.hour + interval '1 hour', coalesce(l.ended_at, greatest(l.started_at, now())))
						  - greatest(h.hour, l.started_at)) AS seconds
FROM ray.node_lifetime l
CROSS JOIN LATERAL generate_series(date_trunc('hour', l.started_at), coalesce(l.ended_at, greatest(l.started_at, now())),
								   interval '1 hour') h(hour);
COMMENT ON VIEW ray._node_hours IS
'Node lifetimes cut at the hours they span, with the seconds of each piece (for ray.usage).';

/*
 * What the nodes of each group and worker group used, hour by hour: the
 * groups a role may use (all, and those dropped, for ray_admin).  A group
 * made under a dropped group's name shows from its creation on.
 */
CREATE OR REPLACE VIEW ray.usage WITH (security_barrier = true) AS
SELECT * FROM (
SELECT u.resource_group,
	   u.kind AS node_kind,
	   u.worker_group,
	   u.hour,
	   count(DISTINCT u.lifetime_id) AS nodes,
	   round(sum(u.seconds), 3) AS node_seconds,
	   round(sum(u.seconds * u.num_cpus), 3) AS cpu_seconds,
	   round(sum(u.seconds * u.num_gpus), 3) AS gpu_seconds,
	   round(sum(u.seconds * u.memory_mb / 1024.0), 3) AS memory_gb_seconds,
	   round(sum(u.seconds * coalesce(u.disk_gb, 0) / 3600.0), 6) AS disk_gb_hours,
	   round(sum(u.seconds * u.cpu_units / 3600.0), 6) AS compute_unit_hours
FROM ray._node_hours u
WHERE u.seconds > 0
  AND (pg_has_role(current_user, 'ray_monitor', 'USAGE')
	   OR EXISTS (SELECT FROM ray.resource_group g
				  WHERE g.name = u.resource_group AND u.started_at >= g.created_at
					AND g.name IN (SELECT resource_group FROM ray._granted_groups)))
GROUP BY u.resource_group, u.kind, u.worker_group, u.hour
OFFSET 0) visible;
COMMENT ON VIEW ray.usage IS
'What the nodes of each resource group and worker group used, hour by hour: node, CPU, GPU and memory seconds, disk GB-hours and compute units.';

/*
 * Every run of a job in Ray: those that ended (ray.job_run_usage) and those
 * running now, until now.  Unfiltered: the views below show each role its
 * own.
 */
CREATE OR REPLACE VIEW ray._job_runs AS
SELECT u.job_id, u.attempt, u.owner, u.owner_oid, u.resource_group, u.worker_group, u.kind,
	   u.cpus, u.gpus, u.memory_bytes, u.started_at, u.ended_at
FROM ray.job_run_usage u
UNION ALL
SELECT j.job_id, j.attempts, j.owner, j.owner_oid, j.resource_group, j.worker_group, j.kind,
	   j.cpus_asked, j.gpus_asked, coalesce(j.entrypoint_memory, 0), j.state_changed_at, NULL
FROM ray.job j
WHERE j.state = 'RUNNING';
COMMENT ON VIEW ray._job_runs IS
'Every run of a job in Ray, ended or running now (for ray.job_usage and ray.usage_by_role).';

/*
 * Each job's run time in Ray (all its attempts) times what it asked for:
 * a role's own jobs (all for ray_admin), including those whose history
 * retention has purged.
 */
CREATE OR REPLACE VIEW ray.job_usage WITH (security_barrier = true) AS
SELECT * FROM (
SELECT r.job_id,
	   r.owner,
	   r.resource_group,
	   r.worker_group,
	   r.kind,
	   count(*) AS runs,
	   min(r.started_at) AS first_started_at,
	   CASE WHEN bool_and(r.ended_at IS NOT NULL) THEN max(r.ended_at) END AS last_ended_at,
	   round(sum(r.seconds), 3) AS run_seconds,
	   round(sum(r.seconds * r.cpus), 3) AS cpu_seconds,
	   round(sum(r.seconds * r.gpus), 3) AS gpu_seconds,
	   round(sum(r.seconds * r.memory_bytes / 1073741824.0), 3) AS memory_gb_seconds
FROM (SELECT x.*, extract(epoch FROM coalesce(x.ended_at, greatest(x.started_at, now())) - x.started_at) AS seconds
	  FROM ray._job_runs x) r
WHERE r.owner_oid = (SELECT o.oid FROM pg_roles o WHERE o.rolname = current_user)
   OR pg_has_role(current_user, 'ray_monitor', 'USAGE')
GROUP BY r.job_id, r.owner, r.resource_group, r.worker_group, r.kind
OFFSET 0) visible;
COMMENT ON VIEW ray.job_usage IS
'Each job''s run time in Ray times the CPUs, GPUs and memory it asked for: the role''s own jobs (all for ray_admin).';

/*
 * What each role's jobs used, day by day (in the session's time zone), per
 * resource group: a run that spans midnight counts on both days.  A role
 * sees its own rows (all for ray_admin).
 */
CREATE OR REPLACE VIEW ray.usage_by_role WITH (security_barrier = true) AS
SELECT * FROM (
SELECT r.owner AS role,
	   d.day::date AS day,
	   r.resource_group,
	   count(DISTINCT r.job_id) AS jobs,
	   round(sum(s.seconds), 3) AS run_seconds,
	   round(sum(s.seconds * r.cpus), 3) AS cpu_seconds,
	   round(sum(s.seconds * r.gpus), 3) AS gpu_seconds,
	   round(sum(s.seconds * r.memory_bytes / 1073741824.0), 3) AS memory_gb_seconds
FROM ray._job_runs r
CROSS JOIN LATERAL generate_series(date_trunc('day', r.started_at), coalesce(r.ended_at, greatest(r.started_at, now())),
								   interval '1 day') d(day)
CROSS JOIN LATERAL (
	SELECT extract(epoch FROM least(d.day + interval '1 day', coalesce(r.ended_at, greatest(r.started_at, now())))
						   - greatest(d.day, r.started_at)) AS seconds) s
WHERE (s.seconds > 0 OR d.day = date_trunc('day', r.started_at))
  AND (r.owner_oid = (SELECT o.oid FROM pg_roles o WHERE o.rolname = current_user)
	   OR pg_has_role(current_user, 'ray_monitor', 'USAGE'))
GROUP BY r.owner, d.day, r.resource_group
OFFSET 0) visible;
COMMENT ON VIEW ray.usage_by_role IS
'What each role''s jobs used day by day per resource group: jobs, run time and CPU, GPU and memory seconds (the role''s own rows; all for ray_admin).';
