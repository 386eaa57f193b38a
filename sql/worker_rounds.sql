/*
 * sql/worker_rounds.sql
 *		What the background worker runs in each round.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

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
CREATE OR REPLACE FUNCTION ray._worker_recover()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	id bigint;
	n integer := 0;
BEGIN
	PERFORM ray._drop_stray_run_roles();
	-- a job a user's open transaction holds (its stop_job) is left to the rounds, which
	-- skip it too: no user holds the worker up for the others
	FOR id IN SELECT job_id FROM ray.job WHERE state = 'SUBMITTING' ORDER BY job_id
			  FOR NO KEY UPDATE SKIP LOCKED LOOP
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
CREATE OR REPLACE FUNCTION ray._worker_reconcile()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	id bigint;
	roles text;
BEGIN
	-- Owners' and grantees' names, when roles were renamed or dropped (run roles come and go
	-- with batch runs and own nothing); the roles last synced are kept in this session
	roles := (SELECT md5(string_agg(r.oid || ' ' || r.rolname, ',' ORDER BY r.oid)) FROM pg_roles r
			  WHERE NOT EXISTS (SELECT FROM pg_auth_members m
								WHERE m.member = r.oid AND m.roleid = 'ray_run'::regrole));
	IF roles IS DISTINCT FROM current_setting('pg_ray_worker.roles_synced', true) AND ray._sync_role_names() THEN
		PERFORM set_config('pg_ray_worker.roles_synced', roles, false);
	END IF;

	-- A node's life is open exactly while its slot has a process.  One open without is a
	-- restored backup's (the old server's node, which this database does not run): it ends
	-- when its group's history last tells of anything, not now (the time between the dump and
	-- the restore was not this database's).
	UPDATE ray.node_lifetime l
	SET ended_at = least(now(), greatest(l.started_at,
		(SELECT max(e.at) FROM ray.resource_group_event e WHERE e.resource_group = l.resource_group)))
	WHERE l.ended_at IS NULL
	  AND NOT EXISTS (SELECT FROM ray.node n WHERE n.node_id = l.node_id AND n.pid IS NOT NULL);

	-- Dropped groups: DELETING, then gone once none of their jobs is unfinished.
	-- One a transaction still holds (a submission that failed on it, left
	-- open) waits for a later round rather than hold this one up.
	FOR rg IN SELECT * FROM ray.resource_group WHERE delete_requested_at IS NOT NULL
			  ORDER BY name FOR UPDATE SKIP LOCKED LOOP
		IF rg.state <> 'DELETING' THEN
			PERFORM ray._group_transition(rg.name, 'DELETING', 'dropping', 'pg_ray worker');
		END IF;
		-- a local group's nodes are stopped now, which ends its runs at once
		IF rg.provider = 'local' THEN
			-- (a job a user's open transaction holds waits for a later round)
			FOR id IN SELECT job_id FROM ray.job WHERE resource_group = rg.name
					  AND state IN ('SUBMITTING', 'PENDING', 'RUNNING') ORDER BY job_id
					  FOR NO KEY UPDATE SKIP LOCKED LOOP
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
END
$$;
COMMENT ON FUNCTION ray._worker_reconcile() IS
'One round of the background worker: keep role names in step and remove dropped groups once their jobs are finished and their nodes gone (queued jobs say what they wait for in ray._admit_jobs).';
