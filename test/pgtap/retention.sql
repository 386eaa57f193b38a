-- pgTAP: history retention.  ray._purge_history_batch deletes finished jobs
-- (with their events, logs and batch plans) and resource group events from
-- before a cutoff, oldest first, a batch at a time, and never a job that
-- is not final; usage outlives it; ray.purge_history is an admin's, and its
-- arguments are checked.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_ray;
SELECT plan(22);

CREATE ROLE tap_keep_ann IN ROLE ray_user;
CREATE ROLE tap_keep_admin IN ROLE ray_admin;
SELECT ray.create_resource_group('tap-r');
SELECT ray.grant_usage('tap-r', 'tap_keep_ann');

-- jobs of ann: three that finished 40, 39 and 38 days ago, one 10 days ago, one still queued
-- that was submitted 40 days ago, and one running since then
SET LOCAL ROLE tap_keep_ann;
SELECT count(ray.submit_job('tap-r', 'echo ' || i)) FROM generate_series(1, 6) i;
RESET ROLE;
CREATE TEMP TABLE j AS
SELECT job_id, row_number() OVER (ORDER BY job_id) AS n FROM ray.job WHERE resource_group = 'tap-r';
UPDATE ray.job SET attempts = 1 WHERE resource_group = 'tap-r';
SELECT count(ray._job_transition(job_id, 'SUBMITTING', 't', 't')) FROM j WHERE n <> 5;
SELECT count(ray._job_transition(job_id, 'RUNNING', 't', 't')) FROM j WHERE n <> 5;
SELECT count(ray._job_transition(job_id, 'SUCCEEDED', 't', 't')) FROM j WHERE n <= 4;
UPDATE ray.job SET finished_at = now() - make_interval(days => 41 - n::integer), submitted_at = now() - interval '41 days'
FROM j WHERE j.job_id = ray.job.job_id AND n <= 3;
UPDATE ray.job SET finished_at = now() - interval '10 days' FROM j WHERE j.job_id = ray.job.job_id AND n = 4;
UPDATE ray.job SET submitted_at = now() - interval '40 days' FROM j WHERE j.job_id = ray.job.job_id AND n >= 5;
INSERT INTO ray.job_log (job_id, attempt, log) SELECT job_id, 1, 'log ' || n FROM j WHERE n <= 4;
CREATE FUNCTION pg_temp.left_jobs() RETURNS bigint[] LANGUAGE sql
AS $$ SELECT array_agg(n ORDER BY n) FROM j WHERE EXISTS (SELECT FROM ray.job x WHERE x.job_id = j.job_id) $$;

-- group events: an old group of the same name, dropped, and this one's creation, all 40 days ago
UPDATE ray.resource_group_event SET at = now() - interval '40 days' WHERE resource_group = 'tap-r';
INSERT INTO ray.resource_group_event (resource_group, at, from_state, to_state, generation, actor, message)
VALUES ('tap-r', now() - interval '5 days', 'CREATING', 'READY', 1, 't', 'recent');

-- 1. Arguments
SELECT throws_ok($$SELECT * FROM ray._purge_history_batch(NULL, 10)$$, '22004',
				 'cutoff and batch_size must not be null', 'a null cutoff is an error');
SELECT throws_ok($$SELECT * FROM ray._purge_history_batch(now(), 0)$$, '22023',
				 'batch_size must be between 1 and 100000', 'a batch of nothing is an error');
SELECT throws_ok($$CALL ray.purge_history('-1 day')$$, '22023',
				 'older_than must not be negative', 'a negative age is an error');
SET LOCAL ROLE tap_keep_ann;
SELECT throws_ok($$CALL ray.purge_history()$$, '42501', NULL, 'a ray_user may not purge');
SELECT throws_ok($$SELECT * FROM ray._purge_history_batch(now(), 10)$$, '42501', NULL,
				 'nor run a batch of it');
RESET ROLE;

-- 2. Batches, oldest first
SELECT results_eq($$SELECT jobs, resource_group_events FROM ray._purge_history_batch(now() - interval '30 days', 2)$$,
				  $$VALUES (2, 1)$$, 'a batch takes at most batch_size jobs');
SELECT is(pg_temp.left_jobs(), ARRAY[3, 4, 5, 6]::bigint[], 'the two that finished first');
SELECT is((SELECT count(*)::integer FROM ray.job_event e JOIN j USING (job_id) WHERE n <= 2), 0,
		  'their events go with them');
SELECT is((SELECT count(*)::integer FROM ray.job_log l JOIN j USING (job_id) WHERE n <= 2), 0, 'and their logs');
SELECT results_eq($$SELECT jobs, resource_group_events FROM ray._purge_history_batch(now() - interval '30 days', 2)$$,
				  $$VALUES (1, 0)$$, 'the next batch takes what is left');
SELECT results_eq($$SELECT jobs, resource_group_events FROM ray._purge_history_batch(now() - interval '30 days', 2)$$,
				  $$VALUES (0, 0)$$, 'and then there is nothing left');
SELECT is(pg_temp.left_jobs(), ARRAY[4, 5, 6]::bigint[],
		  'a job finished within the retention stays, and so do jobs not final however old');
SELECT is((SELECT count(*)::integer FROM ray.job_event e JOIN j USING (job_id) WHERE n = 4), 4,
		  'with its events');
SELECT is((SELECT count(*)::integer FROM ray.job_run_usage u JOIN j USING (job_id)), 4,
		  'the purged jobs'' usage stays');

-- 3. Group events
SELECT is((SELECT array_agg(message ORDER BY event_id) FROM ray.resource_group_event WHERE resource_group = 'tap-r'),
		  ARRAY['recent'], 'group events older than the retention go, the creation event with them');
SET LOCAL ROLE tap_keep_ann;
SELECT is((SELECT array_agg(message) FROM ray.resource_group_events WHERE resource_group = 'tap-r'),
		  ARRAY['recent'], 'a grantee still sees the history that is left of its group');
RESET ROLE;
INSERT INTO ray.resource_group_event (resource_group, at, from_state, to_state, generation, actor, message)
VALUES ('tap-r', now() - interval '50 days', 'READY', 'READY', 1, 't', 'late but old'),
	   ('tap-r', now() - interval '50 days', 'READY', 'READY', 1, 't', 'late but old'),
	   ('tap-r', now() - interval '50 days', 'READY', 'READY', 1, 't', 'late but old');
SELECT results_eq($$SELECT jobs, resource_group_events FROM ray._purge_history_batch(now() - interval '30 days', 2)$$,
				  $$VALUES (0, 2)$$, 'events go a batch at a time too');

-- 4. The whole purge, as a procedure (nothing to commit here: what is left was purged above)
SELECT ray._job_transition(job_id, 'STOPPED', 't', 't') IS NOT NULL FROM j WHERE n = 5;
UPDATE ray.job SET finished_at = now() - interval '2 days' FROM j WHERE j.job_id = ray.job.job_id AND n = 5;
SELECT results_eq($$SELECT jobs, resource_group_events FROM ray._purge_history_batch(now() - interval '1 day', 10)$$,
				  $$VALUES (2, 2)$$, 'a shorter age takes more');
SELECT is(pg_temp.left_jobs(), ARRAY[6]::bigint[], 'the running job is never purged');
SET LOCAL ROLE tap_keep_admin;
SELECT lives_ok($$CALL ray.purge_history()$$, 'an admin may purge');
RESET ROLE;
SELECT is(current_setting('pg_ray.history_retention')::interval, interval '30 days',
		  'the history is kept a month by default');
SELECT is(current_setting('pg_ray.purge_interval')::interval, interval '1 hour',
		  'and purged every hour');

SELECT * FROM finish();
ROLLBACK;
