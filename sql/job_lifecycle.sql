/*
 * sql/job_lifecycle.sql
 *		The job lifecycle against Ray: what the worker's HTTP answers mean.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* ------------------------------------------------------------------------
 * The job lifecycle against Ray (called by the background worker)
 *
 * The worker does the HTTP; these functions decide what the answers mean,
 * each in the transaction that records it.  Every one of them takes the
 * attempt it acts for and does nothing if the job has moved on since, so a
 * late or repeated answer can never undo a newer state.
 * ------------------------------------------------------------------------
 */

/*
 * Whether Ray failed a run for reasons of its own machinery rather than
 * the user's code.  JOB_ENTRYPOINT_COMMAND_ERROR, ..._START_ERROR,
 * RUNTIME_ENV_SETUP_FAILURE and JOB_SUPERVISOR_ACTOR_START_FAILURE (an
 * invalid runtime_env, for one) are the user's: the command or its setup;
 * but a runtime env whose setup timed out was not wrong, only late (Ray's
 * own words at the start of the message, which user text cannot precede).
 */
CREATE OR REPLACE FUNCTION ray._is_infrastructure_failure(error_type text, message text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(error_type IN ('JOB_SUPERVISOR_ACTOR_DIED', 'JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE',
								   'JOB_SUPERVISOR_ACTOR_START_TIMEOUT',
								   'JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE')
					OR ray._is_start_failure(error_type, message), false)
$$;
COMMENT ON FUNCTION ray._is_infrastructure_failure(text, text) IS
'True for what Ray reports of a run lost to the infrastructure (its supervisor could not start or died, its runtime env setup timed out), not failed by the user''s code.';

/*
 * Whether Ray says it could not start a run: its supervisor found no room
 * or no time to start, or its runtime env setup timed out.  The driver never
 * began, so it was not the user's attempt.  A supervisor that died is not
 * among them: the user's own driver can kill it.
 */
CREATE OR REPLACE FUNCTION ray._is_start_failure(error_type text, message text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(error_type IN ('JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE', 'JOB_SUPERVISOR_ACTOR_START_TIMEOUT')
					OR (error_type = 'RUNTIME_ENV_SETUP_FAILURE'
						AND message ~ '^runtime_env setup failed: Failed to set up runtime environment\.\s+Failed to install runtime_env within the timeout of [0-9]+ seconds\.'),
					false)
$$;
COMMENT ON FUNCTION ray._is_start_failure(text, text) IS
'True when Ray reports that it could not start a run (no room or time for its supervisor, runtime env setup timed out): the driver never began.';

/*
 * Requeue a job whose run was lost, as a new attempt, or fail it when it has
 * used its attempts.  A run that never started (what_happened 'not started':
 * Ray could not start it, or its cluster lost it while it was SUBMITTING or
 * PENDING) was not the user's attempt: it is requeued without spending one,
 * up to pg_ray.max_ray_requeues times (ray_requeues counts them), so that a
 * busy Ray does not fail the jobs it has no room for; past that it is lost
 * like any other.  The attempts a job has made are attempts - ray_requeues.
 */
CREATE OR REPLACE FUNCTION ray._requeue_or_fail(id bigint, why text, what_happened text DEFAULT 'lost')
RETURNS ray.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job;
	made integer;
BEGIN
	SELECT * INTO job FROM ray.job WHERE job_id = id FOR NO KEY UPDATE;
	made := job.attempts - job.ray_requeues;
	IF job.stop_requested_at IS NOT NULL THEN
		RETURN ray._job_transition(id, 'STOPPED', format('stopped by %s (%s)', job.stopped_by, why),
								   'pg_ray worker');
	END IF;
	IF what_happened = 'not started' THEN
		IF job.ray_requeues < current_setting('pg_ray.max_ray_requeues')::integer THEN
			UPDATE ray.job SET ray_requeues = ray_requeues + 1 WHERE job_id = id;
			RETURN ray._job_transition(id, 'QUEUED',
				format('Ray could not start attempt %s of %s: %s; requeued without spending an attempt (%s of pg_ray.max_ray_requeues = %s)',
					   made, job.max_attempts, why, job.ray_requeues + 1, current_setting('pg_ray.max_ray_requeues')),
				'pg_ray worker');
		END IF;
		what_happened := 'lost';
	END IF;
	IF made < job.max_attempts THEN
		RETURN ray._job_transition(id, 'QUEUED',
			format('attempt %s of %s %s: %s; requeued', made, job.max_attempts, what_happened, why),
			'pg_ray worker');
	END IF;
	RETURN ray._job_transition(id, 'FAILED',
		format('attempt %s of %s %s: %s; no attempts left', made, job.max_attempts, what_happened, why),
		'pg_ray worker');
END
$$;
COMMENT ON FUNCTION ray._requeue_or_fail(bigint, text, text) IS
'A run was lost to the infrastructure: queue the job again (without spending an attempt if it never started), or fail it if it has no attempts left.';

/*
 * The job row of an attempt still in one of the given states, locked; or
 * nothing.  A row a user's transaction holds (ray.stop_job not yet
 * committed) is not waited for: the error takes back this answer alone,
 * and the next one applies.
 */
CREATE OR REPLACE FUNCTION ray._current_attempt(id bigint, attempt integer, states text[])
RETURNS ray.job
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT * FROM ray.job
	WHERE job_id = id AND attempts = attempt AND state = ANY (states)
	FOR NO KEY UPDATE NOWAIT
$$;
COMMENT ON FUNCTION ray._current_attempt(bigint, integer, text[]) IS
'The job if it is still at that attempt and in one of those states (locked), else NULL: the guard against late answers.';

/*
 * Take one queued job into SUBMITTING as a new attempt.  The attempt and
 * its submission id are committed before anything is sent, so a crash
 * after this point is resumed with the same id, never a second one.
 */
CREATE OR REPLACE FUNCTION ray._begin_attempt(id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	install text := (SELECT i.id FROM ray.installation i);
	sid text;
	failure text;
BEGIN
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
END
$$;
COMMENT ON FUNCTION ray._begin_attempt(bigint) IS
'Move one queued job to SUBMITTING as a new attempt with its fixed submission id.';

/*
 * The round's admission (sql/admission.sql): queued jobs of ready groups
 * that fit go to SUBMITTING, at most max_jobs of a group starting at once
 * (pg_ray.max_starting_jobs when NULL).
 */
CREATE OR REPLACE FUNCTION ray._begin_attempts(max_jobs integer DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._admit_jobs(coalesce(max_jobs, current_setting('pg_ray.max_starting_jobs')::integer))
$$;
COMMENT ON FUNCTION ray._begin_attempts(integer) IS
'Start the queued jobs that fit (ray._admit_jobs), at most max_jobs of a group starting at once (default pg_ray.max_starting_jobs).';

/*
 * What the worker has to do with Ray now, one row per thing.  The worker
 * skips what it already has in flight and decides when groups are polled.
 */
CREATE OR REPLACE FUNCTION ray._worker_work()
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
CREATE OR REPLACE FUNCTION ray._group_connection(group_name text,
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


/* Give up on a job's current run: remember it, then requeue or fail the job. */
CREATE OR REPLACE FUNCTION ray._forget_run(id bigint, why text)
RETURNS ray.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO ray.lost_run (submission_id, resource_group, job_id, attempt)
	SELECT ray_submission_id, resource_group, job_id, attempts
	FROM ray.job WHERE job_id = id AND ray_submission_id IS NOT NULL
	ON CONFLICT DO NOTHING;
	-- a run still SUBMITTING or PENDING had not begun: it was not the user's attempt
	RETURN ray._requeue_or_fail(id, why, CASE WHEN (SELECT state FROM ray.job WHERE job_id = id)
												   IN ('SUBMITTING', 'PENDING')
											  THEN 'not started' ELSE 'lost' END);
END
$$;
COMMENT ON FUNCTION ray._forget_run(bigint, text) IS
'Give up on a job''s current run (remembered in ray.lost_run, to be stopped if it reappears) and requeue or fail the job.';

/* Give up on every run a group may have in Ray: its cluster lost them. */
CREATE OR REPLACE FUNCTION ray._forget_group_runs(group_name text, why text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	id bigint;
BEGIN
	-- a job a user's open transaction holds (its stop_job) is skipped rather than waited
	-- for: following its run, a later round finds it gone (ray._apply_run_missing)
	FOR id IN SELECT job_id FROM ray.job
			  WHERE resource_group = group_name AND state IN ('SUBMITTING', 'PENDING', 'RUNNING')
			  ORDER BY job_id FOR NO KEY UPDATE SKIP LOCKED LOOP
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
CREATE OR REPLACE FUNCTION ray._apply_group_check(group_name text, version text, error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
BEGIN
	-- not waited for (an admin's open change): the answer is set aside and asked for again
	SELECT * INTO rg FROM ray.resource_group WHERE name = group_name FOR NO KEY UPDATE NOWAIT;
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
		UPDATE ray.resource_group SET
			ray_version = coalesce(version, ray_version),
			observed_generation = generation,
			dashboard_url = coalesce(endpoint, dashboard_url),
			-- as registered: a guess (the dashboard's host, Ray's default port) may be another's
			client_address = options ->> 'client_address',
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
CREATE OR REPLACE FUNCTION ray._submission_body(id bigint, attempt integer)
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
CREATE OR REPLACE FUNCTION ray._apply_submitted(id bigint, attempt integer, error text)
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
CREATE OR REPLACE FUNCTION ray._apply_submission_trouble(id bigint, attempt integer, error text)
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
CREATE OR REPLACE FUNCTION ray._apply_job_info(id bigint, attempt integer, reported_status text,
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
	-- a batch runner that lost its database (the server crashed or restarted under it) or a Ray
	-- node under a task exits 75; one killed by a signal (the OOM killer, a node going down)
	-- never gave its verdict (it exits 0, 1 or 75): either attempt was lost to the infrastructure
	runner_lost boolean := job.kind = 'batch_inference' AND (exit_code = 75 OR exit_code < 0 OR exit_code > 128);
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
	IF reported_status = 'FAILED' AND job.stop_requested_at IS NULL
		AND (ray._is_infrastructure_failure(ray_error_type, ray_message) OR runner_lost
			 OR (job.retry_on_failure AND job.attempts - job.ray_requeues < job.max_attempts)) THEN
		PERFORM ray._requeue_or_fail(id, format('Ray reported %s: %s',
			coalesce(ray_error_type, 'a failure'), why),
			-- a supervisor that died before the run was seen running never ran the driver,
			-- which alone could have killed it: Ray lost a start (a node that died unseen)
			CASE WHEN ray._is_start_failure(ray_error_type, ray_message)
					  OR (ray_error_type = 'JOB_SUPERVISOR_ACTOR_DIED' AND job.state IN ('SUBMITTING', 'PENDING'))
				 THEN 'not started'
				 WHEN ray._is_infrastructure_failure(ray_error_type, ray_message) OR runner_lost THEN 'lost'
				 ELSE 'failed' END);
		PERFORM ray._job_run_times(id, attempt, start_ms, end_ms);
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
	-- the run as Ray timed it, for its usage
	PERFORM ray._job_run_times(id, attempt, start_ms, end_ms);
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
CREATE OR REPLACE FUNCTION ray._apply_run_missing(id bigint, attempt integer, why text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['PENDING', 'RUNNING']);
BEGIN
	IF job.job_id IS NOT NULL THEN
		PERFORM ray._requeue_or_fail(id, why, CASE WHEN job.state = 'PENDING' THEN 'not started' ELSE 'lost' END);
	END IF;
END
$$;
COMMENT ON FUNCTION ray._apply_run_missing(bigint, integer, text) IS
'A submitted run is gone from Ray: requeue the job as a new attempt, or fail it.';

/* Ray took a stop request for a run. */
CREATE OR REPLACE FUNCTION ray._apply_stop_sent(id bigint, attempt integer, stopped boolean)
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
CREATE OR REPLACE FUNCTION ray._lost_run_settled(lost_submission_id text, not_found boolean)
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
CREATE OR REPLACE FUNCTION ray._save_job_log(id bigint, attempt integer, log_text text,
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
