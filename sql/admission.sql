/*
 * sql/admission.sql
 *		Which queued job of a resource group starts next: capacity, the
 *		starting cap, quotas per role, priorities and fair share.
 *
 * A job waits in QUEUED, in PostgreSQL, until its group can run it; Ray is
 * handed only what it can start (docs/design.md, "Admission").  Each round
 * the worker takes the queue of each ready group in one order, the one
 * ray.queue shows, and starts jobs from its head while they fit.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * What a local group can hold at its largest: the CPUs and GPUs of its
 * worker groups at max_workers (its head runs no tasks).  NULL when pg_ray
 * does not know: an external group, or one without workers, whose drivers
 * run on the head; there the starting cap and quotas alone hold jobs back.
 */
CREATE OR REPLACE FUNCTION ray._group_capacity(group_name text, OUT cpus numeric, OUT gpus numeric)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT nullif(sum(w.max_workers * s.num_cpus), 0),
		   CASE WHEN sum(w.max_workers * s.num_cpus) > 0
				THEN coalesce(sum(w.max_workers * ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit)), 0) END
	FROM ray.resource_group g
	JOIN ray.worker_group w ON w.resource_group = g.name
	JOIN ray.node_spec s ON s.name = w.spec
	WHERE g.name = group_name AND g.provider = 'local'
$$;
COMMENT ON FUNCTION ray._group_capacity(text) IS
'The CPUs and GPUs a local group''s worker groups hold at max_workers; NULL where pg_ray does not know (external groups, groups without workers).';

/*
 * Whether a quota on role applies to member: member is the role, or
 * inherits its rights through memberships that someone other than the
 * granted role itself made.  In PostgreSQL 15 every role may grant
 * membership in itself; counting those would let a throttled user put its
 * own quota (and a share of 0.01) on whomever it grants itself to, and
 * watch their jobs in its counts.
 */
CREATE OR REPLACE FUNCTION ray._quota_applies(member oid, role oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE above(oid) AS (
		SELECT member
		UNION
		SELECT m.roleid
		FROM above a
		JOIN pg_roles r ON r.oid = a.oid AND r.rolinherit
		JOIN pg_auth_members m ON m.member = a.oid AND m.grantor <> m.roleid
	)
	SELECT member IS NOT NULL AND role IS NOT NULL AND EXISTS (SELECT FROM above WHERE above.oid = role)
$$;
COMMENT ON FUNCTION ray._quota_applies(oid, oid) IS
'Whether a quota on role applies to member: the role itself, or a member inheriting from it through memberships the role did not grant itself.';

/*
 * The queue of every group in the order its jobs start: higher priorities
 * first; within a priority, by fair share, then first in, first out.  Fair
 * share is weighted fair queueing on CPUs: each owner's next job gets the
 * key (CPUs its jobs ask for in Ray now + CPUs they used on average over
 * pg_ray.fair_share_window + CPUs its jobs ahead of this one ask for) /
 * its share, and the lowest key goes first.  Starting a job adds what it
 * asks to its owner's key just as the next job's key counted it, so the
 * order does not change as the worker starts jobs down it: the order is
 * the one the worker follows and the one ray.queue shows.  A job counts at
 * least one CPU: one that asks for none still has a driver, and takes its
 * turn like the others.  An
 * owner's share is that of its own quota row, else the largest of the
 * roles it is a member of, else 1.
 *
 * A view, not a function, so that ray.queue reads it with its owner's
 * rights and counts every role's jobs while showing each role its own.
 */
CREATE OR REPLACE VIEW ray._queue_order AS
WITH settings AS (
	SELECT current_setting('pg_ray.fair_share_window')::interval AS win,
		   extract(epoch FROM current_setting('pg_ray.fair_share_window')::interval) AS win_s
),
used AS (
	-- jobs in Ray or publishing now (job_active_idx), and those that ended within the window
	-- (job_finished_at_idx): never a scan of the whole history
	SELECT u.resource_group, u.owner_oid, sum(u.in_ray) AS cpus_in_ray, sum(u.cpu_seconds) / st.win_s AS cpus_recent
	FROM (SELECT j.resource_group, j.owner_oid,
				 CASE WHEN j.state IN ('SUBMITTING', 'PENDING', 'RUNNING') THEN greatest(j.cpus_asked, 1) ELSE 0 END
					 AS in_ray,
				 CASE WHEN j.started_at IS NOT NULL
					  THEN greatest(j.cpus_asked, 1) * greatest(0, extract(epoch FROM now() - greatest(j.started_at, now() - st.win)))
					  ELSE 0 END AS cpu_seconds
		  FROM ray.job j, settings st
		  WHERE j.state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED', 'QUEUED')
		  UNION ALL
		  SELECT j.resource_group, j.owner_oid, 0,
				 greatest(j.cpus_asked, 1) * greatest(0, extract(epoch FROM
					 least(j.finished_at, now()) - greatest(j.started_at, now() - st.win)))
		  FROM ray.job j, settings st
		  WHERE j.finished_at > now() - st.win AND j.started_at IS NOT NULL) u, settings st
	WHERE u.resource_group IN (SELECT q.resource_group FROM ray.job q WHERE q.state = 'QUEUED')
	GROUP BY u.resource_group, u.owner_oid, st.win_s
),
queued AS (
	SELECT j.job_id, j.resource_group, j.owner_oid, j.priority, j.cpus_asked, j.gpus_asked, j.worker_group,
		   coalesce(sum(greatest(j.cpus_asked, 1)) OVER (
				PARTITION BY j.resource_group, j.owner_oid ORDER BY j.priority DESC, j.job_id
				ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS cpus_ahead
	FROM ray.job j
	WHERE j.state = 'QUEUED'
),
keyed AS (
	SELECT q.*,
		   round((coalesce(u.cpus_in_ray, 0) + coalesce(u.cpus_recent, 0) + q.cpus_ahead)
				 / coalesce((SELECT s.share FROM ray.quota s
							 WHERE s.resource_group = q.resource_group AND s.role_oid = q.owner_oid),
							(SELECT max(s.share) FROM ray.quota s
							 WHERE s.resource_group = q.resource_group
							   AND ray._quota_applies(q.owner_oid, s.role_oid)),
							1), 6) AS fair_share_key
	FROM queued q
	LEFT JOIN used u ON u.resource_group = q.resource_group AND u.owner_oid IS NOT DISTINCT FROM q.owner_oid
)
SELECT k.job_id, k.resource_group, k.owner_oid, k.priority, k.cpus_asked, k.gpus_asked, k.fair_share_key,
	   row_number() OVER (PARTITION BY k.resource_group ORDER BY k.priority DESC, k.fair_share_key, k.job_id)
		   AS queue_position,
	   k.worker_group
FROM keyed k;
COMMENT ON VIEW ray._queue_order IS
'Every queued job with its place in its group''s queue: priority, then fair share between owners, then first in, first out. For the worker and ray.queue.';

/*
 * The first quota of a group that starting one more job of this owner,
 * asking for these CPUs and GPUs, would exceed; its words for ray.jobs, or
 * NULL.  A quota on a role counts the jobs in Ray of the role and of every
 * role that is a member of it (that inherits its rights).
 */
CREATE OR REPLACE FUNCTION ray._quota_exceeded(group_name text, role_oid oid, cpus numeric, gpus numeric)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE
			WHEN u.jobs + 1 > q.max_running_jobs
				THEN format('role quota of %I: %s of %s running jobs', q.role, u.jobs, q.max_running_jobs)
			WHEN u.cpus + _quota_exceeded.cpus > q.max_cpus
				THEN format('role quota of %I: %s of %s CPUs in use, the job asks for %s', q.role,
							u.cpus::float8, q.max_cpus::float8, _quota_exceeded.cpus::float8)
			ELSE format('role quota of %I: %s of %s GPUs in use, the job asks for %s', q.role,
						u.gpus::float8, q.max_gpus::float8, _quota_exceeded.gpus::float8) END
	FROM ray.quota q
	CROSS JOIN LATERAL (
		SELECT count(*) AS jobs, coalesce(sum(j.cpus_asked), 0) AS cpus, coalesce(sum(j.gpus_asked), 0) AS gpus
		FROM ray.job j
		WHERE j.resource_group = q.resource_group AND j.state IN ('SUBMITTING', 'PENDING', 'RUNNING')
		  AND ray._quota_applies(j.owner_oid, q.role_oid)) u
	WHERE q.resource_group = group_name
	  AND ray._quota_applies(_quota_exceeded.role_oid, q.role_oid)
	  AND (u.jobs + 1 > q.max_running_jobs OR u.cpus + _quota_exceeded.cpus > q.max_cpus OR u.gpus + _quota_exceeded.gpus > q.max_gpus)
	ORDER BY q.role
	LIMIT 1
$$;
COMMENT ON FUNCTION ray._quota_exceeded(text, oid, numeric, numeric) IS
'Why one more job of a role asking for these CPUs and GPUs would exceed a quota on a group, or NULL if none would be.';

/*
 * The custom resource each worker node of a local group has 1000 of, named
 * after its worker group: what a job or task asks a sliver of to run there,
 * and what tells the autoscaler which worker group a demand is for.
 */
CREATE OR REPLACE FUNCTION ray._worker_group_resource(worker_group text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT jsonb_build_object('pgray-worker-group:' || worker_group, 0.001) $$;
COMMENT ON FUNCTION ray._worker_group_resource(text) IS
'What a job asks of Ray to run on a worker group: a thousandth of the group''s own resource (NULL for none).';

/* A job's worker group, if it names one: one of its resource group's. */
CREATE OR REPLACE FUNCTION ray._check_job_worker_group(group_name text, worker_group text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF worker_group IS NOT NULL AND NOT EXISTS (
		SELECT FROM ray.worker_group w WHERE w.resource_group = group_name AND w.name = worker_group) THEN
		RAISE EXCEPTION 'worker group "%" does not exist in resource group "%"', worker_group, group_name
			USING ERRCODE = 'undefined_object',
				  DETAIL = coalesce((SELECT 'Its worker groups: ' || string_agg(w.name, ', ' ORDER BY w.name) || '.'
									 FROM ray.worker_group w WHERE w.resource_group = group_name),
									'It has no worker groups.'),
				  HINT = 'Leave worker_group out to let Ray place the job on any node of the group.';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_job_worker_group(text, text) IS
'Raise an error unless a job''s worker group, if it names one, is one of its resource group''s.';

/*
 * A job's priority: a whole number from -1000 to 1000, higher first.  A
 * priority above 0 puts a role's jobs ahead of other roles', so it is an
 * admin's to allow: a role may ask up to the largest max_priority of the
 * quotas on the group of the roles it is a member of (0 without one); an
 * admin, anything.
 */
CREATE OR REPLACE FUNCTION ray._check_priority(priority integer, group_name text, submitter oid)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	allowed integer;
BEGIN
	IF priority IS NULL OR priority NOT BETWEEN -1000 AND 1000 THEN
		RAISE EXCEPTION 'priority must be from -1000 to 1000, not %', coalesce(priority::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Higher priorities start first within a resource group; the default is 0.';
	END IF;
	IF priority <= 0 OR ray._is_admin(submitter) THEN
		RETURN;
	END IF;
	SELECT coalesce(max(q.max_priority), 0) INTO allowed
	FROM ray.quota q
	WHERE q.resource_group = group_name AND ray._quota_applies(submitter, q.role_oid);
	IF priority > allowed THEN
		RAISE EXCEPTION 'priority % is above what the role may ask for on resource group "%"', priority, group_name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Its quotas allow priorities up to %s.', allowed),
				  HINT = 'A ray_admin can allow more with ray.set_quota(..., max_priority => N).';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_priority(integer, text, oid) IS
'Raise an error unless a job''s priority is from -1000 to 1000 and, above 0, allowed to its owner by a quota.';

/*
 * Refuse a new job of the caller's when a quota's max_queued_jobs is
 * reached.  The submissions a quota bounds are counted one at a time,
 * behind a lock on its row (which no user may lock), so that two sessions
 * cannot both take the last place; and only in READ
 * COMMITTED, where the count sees what the session before committed.
 */
CREATE OR REPLACE FUNCTION ray._check_queued_quota(group_name text, submitter oid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $$
DECLARE
	q record;
BEGIN
	IF NOT EXISTS (SELECT FROM ray.quota qt WHERE qt.resource_group = group_name AND qt.max_queued_jobs IS NOT NULL
				   AND ray._quota_applies(submitter, qt.role_oid)) THEN
		RETURN;
	END IF;
	IF current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'a job cannot be queued under a limit of queued jobs in a % transaction',
			upper(current_setting('transaction_isolation'))
			USING ERRCODE = 'active_sql_transaction',
				  DETAIL = format('A quota on resource group "%s" limits the queued jobs of the role; such a transaction would not see the jobs other sessions queued.', group_name),
				  HINT = 'Submit in a READ COMMITTED transaction, or outside a transaction block.';
	END IF;
	-- only the quotas that bound the submitter: a submission left open by one team holds up no
	-- other team's (in one order, so two submitters of overlapping quotas never deadlock)
	PERFORM FROM ray.quota qt WHERE qt.resource_group = group_name AND qt.max_queued_jobs IS NOT NULL
	  AND ray._quota_applies(submitter, qt.role_oid)
	ORDER BY qt.role FOR UPDATE;
	SELECT qt.role, qt.max_queued_jobs, n.queued INTO q
	FROM ray.quota qt
	CROSS JOIN LATERAL (
		SELECT count(*) AS queued FROM ray.job j
		WHERE j.resource_group = qt.resource_group AND j.state = 'QUEUED'
		  AND ray._quota_applies(j.owner_oid, qt.role_oid)) n
	WHERE qt.resource_group = group_name AND qt.max_queued_jobs IS NOT NULL
	  AND ray._quota_applies(submitter, qt.role_oid) AND n.queued >= qt.max_queued_jobs
	ORDER BY qt.role
	LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'role quota of "%" on resource group "%" allows no more queued jobs', q.role, group_name
			USING ERRCODE = 'configuration_limit_exceeded',
				  DETAIL = format('%s jobs of the role and its members are queued; its quota allows %s.',
								  q.queued, q.max_queued_jobs),
				  HINT = 'Wait for queued jobs to start, stop some with ray.stop_job, or ask a ray_admin to raise the quota with ray.set_quota.';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_queued_quota(text, oid) IS
'Raise an error when a role''s quota on a group allows no more queued jobs of it.';

/*
 * Why a job for one worker group would not fit it now, or NULL: the CPUs
 * and GPUs of the worker group at max_workers, less what the jobs in Ray
 * that asked for it ask for.
 */
CREATE OR REPLACE FUNCTION ray._worker_group_full(group_name text, worker_group text, cpus numeric, gpus numeric)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT format('waiting for room in worker group "%s" of resource group "%s" (%s of %s CPUs and %s of %s GPUs asked for by its jobs in Ray)',
				  w.name, w.resource_group, u.cpus::float8, (w.max_workers * s.num_cpus)::float8,
				  u.gpus::float8, (w.max_workers * ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit))::float8)
	FROM ray.worker_group w
	JOIN ray.node_spec s ON s.name = w.spec
	CROSS JOIN LATERAL (
		SELECT coalesce(sum(j.cpus_asked), 0) AS cpus, coalesce(sum(j.gpus_asked), 0) AS gpus
		FROM ray.job j
		WHERE j.resource_group = w.resource_group AND j.worker_group = w.name
		  AND j.state IN ('SUBMITTING', 'PENDING', 'RUNNING')) u
	WHERE w.resource_group = group_name AND w.name = _worker_group_full.worker_group
	  AND ((_worker_group_full.cpus > 0 AND u.cpus + _worker_group_full.cpus > w.max_workers * s.num_cpus)
		   OR (_worker_group_full.gpus > 0
			   AND u.gpus + _worker_group_full.gpus
				  > w.max_workers * ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit)))
$$;
COMMENT ON FUNCTION ray._worker_group_full(text, text, numeric, numeric) IS
'Why a job for one worker group does not fit it now (its capacity at max_workers less its jobs in Ray), or NULL.';

/*
 * Start what fits: for each ready group, down its queue in ray.queue's
 * order, take jobs into SUBMITTING (ray._begin_attempt) while fewer than
 * max_starting are starting (SUBMITTING, or PENDING for at most 30 s),
 * and while what each asks for fits what the group holds at its largest,
 * less what its jobs in Ray ask for.  A job
 * over its role's quota is passed over; one that does not fit holds back
 * those behind it that ask for the same kind of resource, so that a large
 * job is not starved by small ones.  Every job that waits says why in its
 * message.  Only the first 1000 of a group's queue are looked at in a
 * round, so that what one user queues cannot make every round long.
 * Returns the number of jobs started.
 */
CREATE OR REPLACE FUNCTION ray._admit_jobs(max_starting integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	g record;
	q record;
	started integer := 0;
	starting integer;
	cpus_used numeric;
	gpus_used numeric;
	cpus_held boolean;
	gpus_held boolean;
	why text;
	waiting_ids bigint[];
	waiting_reasons text[];
	over_quota jsonb;
	quota_key text;
BEGIN
	FOR g IN
		SELECT r.name, r.state, r.delete_requested_at, c.cpus, c.gpus
		FROM ray.resource_group r CROSS JOIN LATERAL ray._group_capacity(r.name) c
		WHERE EXISTS (SELECT FROM ray.job j WHERE j.resource_group = r.name AND j.state = 'QUEUED')
		ORDER BY r.name
	LOOP
		-- a run PENDING in Ray for longer than 30 s waits for resources, not for its start: it no
		-- longer counts, or a few jobs that ask for what the group lacks would hold up every start
		SELECT count(*) FILTER (WHERE j.state = 'SUBMITTING'
									OR (j.state = 'PENDING' AND j.state_changed_at > now() - interval '30 seconds')),
			   coalesce(sum(j.cpus_asked), 0), coalesce(sum(j.gpus_asked), 0)
		INTO starting, cpus_used, gpus_used
		FROM ray.job j
		WHERE j.resource_group = g.name AND j.state IN ('SUBMITTING', 'PENDING', 'RUNNING');
		cpus_held := false;
		gpus_held := false;
		over_quota := '{}';
		waiting_ids := '{}';
		waiting_reasons := '{}';
		-- the head of the queue: what could start this round, whatever a user queued behind it
		FOR q IN SELECT o.* FROM ray._queue_order o WHERE o.resource_group = g.name AND o.queue_position <= 1000
				 ORDER BY o.queue_position LOOP
			why := NULL;
			IF g.delete_requested_at IS NOT NULL OR g.state <> 'READY' THEN
				why := format('waiting for resource group "%s" to become ready (it is %s)', g.name, g.state);
			ELSIF starting >= max_starting THEN
				why := format('waiting for a start: resource group "%s" has %s jobs starting in Ray, as many as pg_ray.max_starting_jobs allows',
							  g.name, max_starting);
			ELSIF g.cpus IS NOT NULL AND (q.cpus_asked > g.cpus OR q.gpus_asked > g.gpus) THEN
				-- it waits for the group to grow, and holds nobody back
				why := format('waiting for resource group "%s" to grow: the job asks for %s CPUs and %s GPUs, its worker groups hold %s and %s at most',
							  g.name, q.cpus_asked::float8, q.gpus_asked::float8, g.cpus::float8, g.gpus::float8);
			ELSIF g.cpus IS NOT NULL
				AND ((q.cpus_asked > 0 AND (cpus_held OR cpus_used + q.cpus_asked > g.cpus))
					 OR (q.gpus_asked > 0 AND (gpus_held OR gpus_used + q.gpus_asked > g.gpus))) THEN
				why := format('waiting for room: resource group "%s" at capacity (%s of %s CPUs and %s of %s GPUs asked for by jobs in Ray)',
							  g.name, cpus_used::float8, g.cpus::float8, gpus_used::float8, g.gpus::float8);
				cpus_held := cpus_held OR q.cpus_asked > 0;
				gpus_held := gpus_held OR q.gpus_asked > 0;
			ELSIF q.worker_group IS NOT NULL AND g.cpus IS NOT NULL THEN
				-- a job for one worker group also fits that group's room, and holds nobody back
				why := ray._worker_group_full(g.name, q.worker_group, q.cpus_asked, q.gpus_asked);
			END IF;
			IF why IS NULL THEN
				-- starts only add to what quotas count: a verdict of "over" holds for the round
				-- (a count of jobs over for the owner whatever the job asks; CPUs, GPUs for what it asks)
				quota_key := format('%s/%s/%s', q.owner_oid, q.cpus_asked, q.gpus_asked);
				why := coalesce(over_quota ->> q.owner_oid::text, over_quota ->> quota_key);
				IF why IS NULL THEN
					why := ray._quota_exceeded(g.name, q.owner_oid, q.cpus_asked, q.gpus_asked);
					IF why IS NOT NULL THEN
						why := 'waiting for the ' || why;
						over_quota := over_quota || jsonb_build_object(
							CASE WHEN why LIKE '% running jobs' THEN q.owner_oid::text ELSE quota_key END, why);
					END IF;
				END IF;
			END IF;

			IF why IS NULL THEN
				-- a row a user's transaction holds (ray.stop_job not yet committed) waits a round
				PERFORM FROM ray.job j WHERE j.job_id = q.job_id AND j.state = 'QUEUED'
				FOR UPDATE SKIP LOCKED;
				IF FOUND THEN
					PERFORM ray._begin_attempt(q.job_id);
					started := started + 1;
					starting := starting + 1;
					cpus_used := cpus_used + q.cpus_asked;
					gpus_used := gpus_used + q.gpus_asked;
				END IF;
			ELSE
				waiting_ids := waiting_ids || q.job_id;
				waiting_reasons := waiting_reasons || why;
			END IF;
		END LOOP;

		-- what each waits for, where it changed; a row a user's transaction holds gets it next round
		UPDATE ray.job j SET message = w.why
		FROM unnest(waiting_ids, waiting_reasons) AS w(job_id, why)
		WHERE j.job_id = w.job_id AND j.message IS DISTINCT FROM w.why
		  AND j.job_id IN (SELECT l.job_id FROM ray.job l
						   WHERE l.job_id = ANY (waiting_ids) AND l.state = 'QUEUED'
						   FOR NO KEY UPDATE SKIP LOCKED);
	END LOOP;
	RETURN started;
END
$$;
COMMENT ON FUNCTION ray._admit_jobs(integer) IS
'Take the queued jobs that fit into SUBMITTING, group by group in ray.queue''s order, and say why the others wait.';

/* ------------------------------------------------------------------------
 * Quotas, for admins
 * ------------------------------------------------------------------------
 */

CREATE OR REPLACE FUNCTION ray._set_quota_impl(
	resource_group text,
	role name,
	max_running_jobs integer DEFAULT NULL,
	max_cpus numeric DEFAULT NULL,
	max_gpus numeric DEFAULT NULL,
	max_queued_jobs integer DEFAULT NULL,
	share numeric DEFAULT 1,
	max_priority integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_set_quota_impl.resource_group, 'none');
	limit_name text;
	limit_value numeric;
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF role = 'public' OR NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = role) THEN
		RAISE EXCEPTION 'role "%" does not exist', role
			USING ERRCODE = 'undefined_object',
				  HINT = 'Name an existing role; a quota on a role bounds it and its members together.';
	END IF;
	FOR limit_name, limit_value IN
		VALUES ('max_running_jobs', _set_quota_impl.max_running_jobs::numeric),
			   ('max_cpus', _set_quota_impl.max_cpus),
			   ('max_gpus', _set_quota_impl.max_gpus),
			   ('max_queued_jobs', _set_quota_impl.max_queued_jobs::numeric)
	LOOP
		IF limit_value < 0 OR limit_value = 'NaN' OR limit_value = 'Infinity' THEN
			RAISE EXCEPTION '% must be a number of 0 or more, not %', limit_name, limit_value
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give NULL for no limit.';
		END IF;
	END LOOP;
	IF max_priority NOT BETWEEN -1000 AND 1000 THEN
		RAISE EXCEPTION 'max_priority must be from -1000 to 1000, not %', max_priority
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give NULL to allow priorities up to 0, the default.';
	END IF;
	IF share IS NULL OR NOT (share > 0 AND share <= 1000) OR share = 'NaN' THEN
		RAISE EXCEPTION 'share must be more than 0 and at most 1000, not %', coalesce(share::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A role of share 2 gets twice the CPUs of a role of share 1 when both have jobs waiting.';
	END IF;
	-- a quota that bears the name of a role renamed since is that role's: it takes its name now
	PERFORM ray._sync_role_name_column('ray.quota', ARRAY['resource_group'], 'role', 'role_oid');
	INSERT INTO ray.quota AS q (resource_group, role, max_running_jobs, max_cpus, max_gpus,
								max_queued_jobs, max_priority, share, set_by, role_oid)
	VALUES (rg.name, _set_quota_impl.role, _set_quota_impl.max_running_jobs, _set_quota_impl.max_cpus,
			_set_quota_impl.max_gpus, _set_quota_impl.max_queued_jobs, _set_quota_impl.max_priority,
			_set_quota_impl.share, ray._caller(), ray._role_oid(_set_quota_impl.role))
	ON CONFLICT ON CONSTRAINT quota_pkey DO UPDATE
		SET max_running_jobs = excluded.max_running_jobs, max_cpus = excluded.max_cpus,
			max_gpus = excluded.max_gpus, max_queued_jobs = excluded.max_queued_jobs,
			max_priority = excluded.max_priority,
			share = excluded.share, set_by = excluded.set_by, set_at = now(), role_oid = excluded.role_oid;
END
$$;
COMMENT ON FUNCTION ray._set_quota_impl(text, name, integer, numeric, numeric, integer, numeric, integer) IS
'The work of ray.set_quota, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.set_quota(
	resource_group text,
	role name,
	max_running_jobs integer DEFAULT NULL,
	max_cpus numeric DEFAULT NULL,
	max_gpus numeric DEFAULT NULL,
	max_queued_jobs integer DEFAULT NULL,
	share numeric DEFAULT 1,
	max_priority integer DEFAULT NULL)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.set_quota(text, name, integer, numeric, numeric, integer, numeric, integer) IS
'Set the quota of a role (and its members together) on a resource group: jobs in Ray, CPUs, GPUs, queued jobs (NULL: no limit), the highest priority its jobs may ask (NULL: 0), and its share in fair share. Replaces the role''s earlier quota there.';

CREATE OR REPLACE FUNCTION ray._drop_quota_impl(resource_group text, role name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_drop_quota_impl.resource_group, 'none');
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	DELETE FROM ray.quota q
	WHERE q.resource_group = rg.name
	  AND (q.role_oid = ray._role_oid(_drop_quota_impl.role)
		   -- a quota of a dropped role of that name
		   OR (q.role = _drop_quota_impl.role AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = q.role_oid)));
	IF NOT FOUND THEN
		RAISE EXCEPTION 'role "%" has no quota on resource group "%"', role, rg.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'See the quotas with SELECT * FROM ray.quotas.';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._drop_quota_impl(text, name) IS
'The work of ray.drop_quota, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.drop_quota(resource_group text, role name)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.drop_quota(text, name) IS
'Remove the quota of a role on a resource group: its jobs wait for capacity alone, and it gets a share of 1.';
