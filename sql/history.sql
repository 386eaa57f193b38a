/*
 * sql/history.sql
 *		History retention: finished jobs and resource group events older
 *		than pg_ray.history_retention go, in small batches.
 *
 * A finished job goes whole: its row with its events, logs and batch plan
 * (their foreign keys cascade).  What it used stays in ray.job_run_usage,
 * and what the nodes used in ray.node_lifetime: usage is kept until an
 * admin deletes it.  A working directory goes sooner, when its job
 * finishes (ray._job_transition), as no attempt can need it any more.
 * Lost runs settle by themselves (ray._lost_run_settled) and go with their
 * group.  docs/operations.md, "Retention", says why and how.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * One batch of the purge: at most batch_size finished jobs that finished
 * before the cutoff, and at most batch_size resource group events from
 * before it, oldest first.  A job that a transaction holds (a user's open
 * stop_job on it) is skipped, not waited for: it goes in a later purge.
 * Events go in the order they were made, so that a group's creation event
 * goes only after every earlier event of that name (ray.resource_group_events
 * shows a group's history from its creation on, or all of it once its
 * creation event is gone).
 */
CREATE OR REPLACE FUNCTION ray._purge_history_batch(cutoff timestamptz, batch_size integer,
													 OUT jobs integer, OUT resource_group_events integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF cutoff IS NULL OR batch_size IS NULL THEN
		RAISE EXCEPTION 'cutoff and batch_size must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF batch_size < 1 OR batch_size > 100000 THEN
		RAISE EXCEPTION 'batch_size must be between 1 and 100000'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = format('It was %s.', batch_size);
	END IF;
	WITH gone AS (
		DELETE FROM ray.job WHERE job_id IN (
			SELECT j.job_id FROM ray.job j
			WHERE j.finished_at < cutoff
			ORDER BY j.finished_at LIMIT batch_size
			FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*) INTO jobs FROM gone;
	WITH gone AS (
		DELETE FROM ray.resource_group_event WHERE event_id IN (
			SELECT e.event_id FROM ray.resource_group_event e
			WHERE e.at < cutoff
			ORDER BY e.event_id LIMIT batch_size)
		RETURNING 1)
	SELECT count(*) INTO resource_group_events FROM gone;
END
$$;
COMMENT ON FUNCTION ray._purge_history_batch(timestamptz, integer) IS
'One batch of ray.purge_history: finished jobs (with their events and logs) and resource group events from before the cutoff.';

/*
 * Purge the history older than older_than (pg_ray.history_retention when
 * NULL), a batch at a time, committing after each: it holds no lock for
 * long and submissions go on meanwhile.  A procedure, as only a procedure
 * may commit; CALL it outside a transaction block.  It runs as its caller
 * (a procedure that commits may not SET its search_path), so every name in
 * it is schema-qualified; that it is an admin's to call is the grant of it
 * and of ray._purge_history_batch.
 */
CREATE OR REPLACE PROCEDURE ray.purge_history(older_than interval DEFAULT NULL,
											  INOUT jobs bigint DEFAULT NULL,
											  INOUT resource_group_events bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
	keep interval := coalesce(older_than,
						  pg_catalog.current_setting('pg_ray.history_retention')::pg_catalog.interval);
	cutoff timestamptz;
	batch record;
BEGIN
	IF keep OPERATOR(pg_catalog.<) '0'::pg_catalog.interval THEN
		RAISE EXCEPTION 'older_than must not be negative'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('It was %s.', keep);
	END IF;
	cutoff := pg_catalog.now() OPERATOR(pg_catalog.-) keep;
	jobs := 0;
	resource_group_events := 0;
	LOOP
		SELECT * INTO batch FROM ray._purge_history_batch(cutoff, 1000);
		jobs := jobs OPERATOR(pg_catalog.+) batch.jobs;
		resource_group_events := resource_group_events OPERATOR(pg_catalog.+) batch.resource_group_events;
		EXIT WHEN batch.jobs OPERATOR(pg_catalog.=) 0
			  AND batch.resource_group_events OPERATOR(pg_catalog.=) 0;
		COMMIT;
	END LOOP;
END
$$;
COMMENT ON PROCEDURE ray.purge_history(interval, bigint, bigint) IS
'Delete finished jobs (with their events and logs) and resource group events older than older_than (default pg_ray.history_retention), in batches, committing after each.';
