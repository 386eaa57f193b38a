/*
 * sql/state_machine.sql
 *		The one way job and resource group states change.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* ------------------------------------------------------------------------
 * State machine: the one way states change, each change with its event.
 * ------------------------------------------------------------------------
 */

/*
 * Move a job to a new state and append the event in the same transaction.
 * Illegal transitions are internal errors: the callers (API functions and
 * the worker) decide what is legal for a user before they get here.
 */
CREATE OR REPLACE FUNCTION ray._job_transition(id bigint, to_state text, why text, actor name)
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
	previous_since timestamptz;
BEGIN
	SELECT * INTO job FROM ray.job WHERE job_id = id FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job % does not exist', id USING ERRCODE = 'undefined_object';
	END IF;
	previous := job.state;
	previous_since := job.state_changed_at;
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
	-- an attempt that stops running in Ray is metered (ray.job_usage)
	IF previous = 'RUNNING' THEN
		PERFORM ray._job_run_ended(job, previous_since);
	END IF;
	-- a working directory is uploaded for each attempt: once none can come, it goes
	IF terminal THEN
		DELETE FROM ray.job_package WHERE job_package.job_id = id;
	END IF;
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
CREATE OR REPLACE FUNCTION ray._group_transition(group_name text, to_state text, why text, actor name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	before text;
	gen bigint;
BEGIN
	SELECT state, generation INTO before, gen
	FROM ray.resource_group WHERE name = group_name FOR NO KEY UPDATE;
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
