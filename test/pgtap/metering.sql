-- pgTAP: usage metering without Ray.  Node lifetimes are recorded by the
-- functions that record a node's process (started, adopted, exited, gone),
-- job runs by the state machine; ray.usage cuts lifetimes at hours,
-- ray.job_usage and ray.usage_by_role meter runs, and each role sees only
-- what it may.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_ray;
SELECT plan(37);
SET LOCAL timezone = 'UTC';

CREATE ROLE tap_meter_ann IN ROLE ray_user;
CREATE ROLE tap_meter_ben IN ROLE ray_user;
CREATE ROLE tap_meter_admin IN ROLE ray_admin;

SELECT ray.create_resource_group('tap-m', 'small');
SELECT ray.add_worker_group('tap-m', 'cpu', 'CPU', 'm.xlarge', 1, 2, disk_gb => 50);
SELECT ray.add_worker_group('tap-m', 'gpu', 'GPU', 'gpu.small', 1, 1, gpu_distribution_unit => 0.5);
SELECT ray.grant_usage('tap-m', 'tap_meter_ann');
SELECT count(*) FROM ray._local_plan(0);
CREATE FUNCTION pg_temp.node(w text) RETURNS bigint LANGUAGE sql
AS $$ SELECT node_id FROM ray.node WHERE resource_group = 'tap-m' AND coalesce(worker_group, 'head') = w $$;
CREATE FUNCTION pg_temp.open_lives(w text) RETURNS integer LANGUAGE sql
AS $$ SELECT count(*)::integer FROM ray.node_lifetime WHERE node_id = pg_temp.node(w) AND ended_at IS NULL $$;

-- 1. Lifetimes follow the processes
SELECT ray._local_node_started(pg_temp.node('head'), 101, false);
SELECT ray._local_node_started(pg_temp.node('cpu'), 102, false);
SELECT ray._local_node_started(pg_temp.node('gpu'), 103, false);
SELECT results_eq($$SELECT kind, coalesce(worker_group, ''), spec, num_cpus, num_gpus, memory_mb, disk_gb, cpu_units
					FROM ray.node_lifetime WHERE resource_group = 'tap-m' ORDER BY lifetime_id$$,
				  $$SELECT 'head'::text, ''::text, 'small'::text, s.num_cpus::numeric, 0::numeric, s.memory_mb, NULL::integer, s.cpu_units
					FROM ray.node_spec s WHERE s.name = 'small'
					UNION ALL
					SELECT 'worker', 'cpu', 'm.xlarge', s.num_cpus, 0, s.memory_mb, 50, s.cpu_units
					FROM ray.node_spec s WHERE s.name = 'm.xlarge'
					UNION ALL
					SELECT 'worker', 'gpu', 'gpu.small', s.num_cpus, 0.5, s.memory_mb, 100, s.cpu_units
					FROM ray.node_spec s WHERE s.name = 'gpu.small'$$,
				  'a started node opens a lifetime with its spec''s size (a GPU worker with a unit: its share of a GPU)');
SELECT is((SELECT started_at FROM ray.node_lifetime WHERE node_id = pg_temp.node('head')),
		  (SELECT started_at FROM ray.node WHERE node_id = pg_temp.node('head')), 'from the start of its process');
CREATE TEMP TABLE first_life AS SELECT * FROM ray.node_lifetime WHERE node_id = pg_temp.node('cpu');
SELECT ray._local_node_started(pg_temp.node('cpu'), 102, true);
SELECT is(pg_temp.open_lives('cpu'), 1, 'a node adopted after a restart keeps its one open lifetime');
SELECT is((SELECT started_at FROM ray.node_lifetime WHERE node_id = pg_temp.node('cpu') AND ended_at IS NULL),
		  (SELECT started_at FROM first_life), 'counted from its real start, once');
SELECT ray._local_node_exited(pg_temp.node('cpu'), 'killed');
SELECT is(pg_temp.open_lives('cpu'), 0, 'a node that exits ends its lifetime');
SELECT ok((SELECT ended_at >= started_at AND ended_at <= clock_timestamp() FROM ray.node_lifetime
		   WHERE node_id = pg_temp.node('cpu')), 'when this worker saw it go');
SELECT ray._local_node_started(pg_temp.node('cpu'), 104, false);
SELECT is((SELECT count(*)::integer FROM ray.node_lifetime WHERE node_id = pg_temp.node('cpu')), 2,
		  'its restart is a new lifetime');
SELECT ray._stop_node(pg_temp.node('gpu'), 'test');
SELECT is(pg_temp.open_lives('gpu'), 1, 'a node asked to stop runs until its processes are gone');
SELECT ray._local_node_gone(pg_temp.node('gpu'));
SELECT is((SELECT count(*)::integer FROM ray.node_lifetime WHERE worker_group = 'gpu' AND ended_at IS NOT NULL), 1,
		  'and then its lifetime ends, though its slot is removed');
-- a lifetime left open by a node that no longer runs (a restored backup) ends when its slot starts again
DELETE FROM ray.node_lifetime WHERE node_id = pg_temp.node('cpu') AND lifetime_id <> (SELECT lifetime_id FROM first_life);
UPDATE ray.node_lifetime SET ended_at = NULL WHERE lifetime_id = (SELECT lifetime_id FROM first_life);
SELECT ray._local_node_started(pg_temp.node('cpu'), 105, false);
SELECT is(pg_temp.open_lives('cpu'), 1, 'a stale open lifetime ends when its slot starts a new process');

-- a life left open by a node of a restored backup (no slot runs it) ends in the worker's next round,
-- when its group's history last told of anything
INSERT INTO ray.node_lifetime (resource_group, kind, worker_group, node_id, spec, num_cpus, num_gpus, memory_mb,
							   disk_gb, cpu_units, started_at)
VALUES ('tap-m', 'worker', 'cpu', -99, 'x', 1, 0, 1024, 100, 1, now() - interval '1 day'),
	   ('tap-gone', 'worker', 'cpu', -98, 'x', 1, 0, 1024, 100, 1, now() - interval '3 days');
INSERT INTO ray.resource_group_event (resource_group, at, to_state, generation, actor)
VALUES ('tap-gone', now() - interval '2 days', 'READY', 1, 'restored');
SELECT ray._worker_reconcile();
SELECT results_eq($$SELECT node_id, ended_at IS NOT NULL FROM ray.node_lifetime
					WHERE resource_group = 'tap-m' AND (ended_at IS NULL OR node_id = -99) ORDER BY node_id$$,
				  format($$VALUES (-99::bigint, true), (%s, false), (%s, false)$$, pg_temp.node('head'), pg_temp.node('cpu')),
				  'a round ends a life no running slot has, and keeps those of running nodes');
SELECT is((SELECT ended_at FROM ray.node_lifetime WHERE node_id = -98), now() - interval '2 days',
		  'at the last time its group''s history tells of, not now');

-- 2. A node found dead that this worker never saw alive ended when Ray last saw it
SELECT is(ray._node_end_time(jsonb_populate_record(n,
			'{"started_at": "2026-01-01 09:00+00", "observed_at": "2026-01-01 10:05+00", "ray_state": "ALIVE"}')),
		  timestamptz '2026-01-01 10:05+00',
		  'a node that died while the worker was down ended when Ray last saw it alive')
FROM ray.node n WHERE n.node_id = pg_temp.node('head');
SELECT is(ray._node_end_time(jsonb_populate_record(n,
			'{"started_at": "2026-01-01 09:00+00", "observed_at": "2026-01-01 10:05+00", "ray_state": "DEAD"}')),
		  timestamptz '2026-01-01 09:00+00',
		  'or, never seen alive, at its start')
FROM ray.node n WHERE n.node_id = pg_temp.node('head');
SELECT ok(ray._node_end_time(n) >= now(), 'one this worker saw alive ended now')
FROM ray.node n WHERE n.node_id = pg_temp.node('head');

-- 3. ray.usage cuts lifetimes at hours
DELETE FROM ray.node_lifetime WHERE resource_group = 'tap-m';
INSERT INTO ray.node_lifetime (resource_group, kind, worker_group, node_id, spec, num_cpus, num_gpus, memory_mb,
							   disk_gb, cpu_units, started_at, ended_at)
VALUES ('tap-m', 'worker', 'cpu', -1, 'x', 4, 0, 8192, 100, 2, '2026-01-01 10:30+00', '2026-01-01 12:15+00'),
	   ('tap-m', 'worker', 'cpu', -2, 'x', 4, 0, 8192, 100, 2, '2026-01-01 11:00+00', '2026-01-01 11:00:10+00'),
	   ('tap-m', 'worker', 'gpu', -3, 'y', 8, 0.5, 16384, 30, 3, '2026-01-01 11:59:59+00', '2026-01-01 12:00:01+00'),
	   ('tap-m', 'head', NULL, -4, 'z', 2, 0, 4096, NULL, 1, '2026-01-01 10:00+00', '2026-01-01 13:00+00');
SELECT results_eq($$SELECT worker_group, hour, nodes, node_seconds, cpu_seconds, memory_gb_seconds, disk_gb_hours,
						   compute_unit_hours
					FROM ray.usage WHERE resource_group = 'tap-m' AND node_kind = 'worker' AND worker_group = 'cpu'
					ORDER BY hour$$,
				  $$VALUES ('cpu'::text, timestamptz '2026-01-01 10:00+00', 1::bigint, 1800.000::numeric, 7200.000::numeric,
							14400.000::numeric, 50.000000::numeric, 1.000000::numeric),
						   ('cpu', '2026-01-01 11:00+00', 2, 3610.000, 14440.000, 28880.000, 100.277778, 2.005556),
						   ('cpu', '2026-01-01 12:00+00', 1, 900.000, 3600.000, 7200.000, 25.000000, 0.500000)$$,
				  'each hour has the seconds of each node within it, times its CPUs, memory, disk and compute units');
SELECT results_eq($$SELECT hour, node_seconds, gpu_seconds FROM ray.usage
					WHERE resource_group = 'tap-m' AND worker_group = 'gpu' ORDER BY hour$$,
				  $$VALUES (timestamptz '2026-01-01 11:00+00', 1.000::numeric, 0.500::numeric),
						   ('2026-01-01 12:00+00', 1.000, 0.500)$$,
				  'a GPU worker with a unit counts its share of a GPU, on both sides of the hour');
SELECT is((SELECT sum(node_seconds) FROM ray.usage WHERE resource_group = 'tap-m' AND node_kind = 'head'),
		  10800.000::numeric, 'the head is metered too, hour by hour, ending at its end');
SELECT is((SELECT count(*)::integer FROM ray.usage WHERE resource_group = 'tap-m' AND node_kind = 'head'
		   AND hour = '2026-01-01 13:00+00'), 0, 'a lifetime that ends on the hour has no piece after it');
INSERT INTO ray.node_lifetime (resource_group, kind, worker_group, node_id, spec, num_cpus, num_gpus, memory_mb,
							   disk_gb, cpu_units, started_at)
VALUES ('tap-m', 'worker', 'cpu', -5, 'x', 1, 0, 1024, 100, 1, now() - interval '10 minutes');
SELECT ok((SELECT sum(node_seconds) FROM ray.usage WHERE resource_group = 'tap-m' AND hour > now() - interval '2 hours')
		  BETWEEN 600 AND 600 + extract(epoch FROM clock_timestamp() - now()) + 1,
		  'a node running now is counted until now');

-- 4. Who sees which usage
UPDATE ray.resource_group SET created_at = '2026-01-01 00:00+00' WHERE name = 'tap-m';
SET LOCAL ROLE tap_meter_ann;
SELECT ok((SELECT count(*) FROM ray.usage WHERE resource_group = 'tap-m') > 0, 'a grantee sees its group''s usage');
RESET ROLE;
SET LOCAL ROLE tap_meter_ben;
SELECT is((SELECT count(*)::integer FROM ray.usage), 0, 'a role not granted the group sees none of it');
RESET ROLE;
SET LOCAL ROLE tap_meter_admin;
SELECT ok((SELECT count(*) FROM ray.usage WHERE resource_group = 'tap-m') > 0, 'an admin sees every group''s');
RESET ROLE;
UPDATE ray.resource_group SET created_at = '2026-01-01 11:30+00' WHERE name = 'tap-m';
SET LOCAL ROLE tap_meter_ann;
SELECT results_eq($$SELECT worker_group, hour, nodes FROM ray.usage WHERE resource_group = 'tap-m'
					AND hour < '2026-01-02' ORDER BY hour, worker_group$$,
				  $$VALUES ('gpu'::text, timestamptz '2026-01-01 11:00+00', 1::bigint), ('gpu', '2026-01-01 12:00+00', 1)$$,
				  'a group made under an older one''s name shows only the nodes that started since its creation');
RESET ROLE;

-- 5. Job runs
SELECT ray.grant_usage('tap-m', 'tap_meter_ben');
SET LOCAL ROLE tap_meter_ann;
SELECT ray.submit_job('tap-m', 'python a.py', entrypoint_num_cpus => 2, max_attempts => 2, entrypoint_memory => 1073741824,
					  working_dir => '\x504b0506000000000000000000000000000000000000'::bytea) AS ann_job \gset
RESET ROLE;
SET LOCAL ROLE tap_meter_ben;
SELECT ray.submit_job('tap-m', 'python b.py', entrypoint_num_cpus => 1) AS ben_job \gset
RESET ROLE;
-- as ray._begin_attempt would: a new attempt
UPDATE ray.job SET attempts = 1 WHERE job_id IN (:ann_job, :ben_job);
SELECT ray._job_transition(:ann_job, 'SUBMITTING', 't', 't') IS NOT NULL,
	   ray._job_transition(:ann_job, 'RUNNING', 't', 't') IS NOT NULL,
	   ray._job_transition(:ben_job, 'SUBMITTING', 't', 't') IS NOT NULL,
	   ray._job_transition(:ben_job, 'RUNNING', 't', 't') IS NOT NULL;
SELECT is((SELECT count(*)::integer FROM ray.job_package WHERE job_id = :ann_job), 1,
		  'a running job keeps its working directory');
SELECT ok((SELECT run_seconds >= 0 AND last_ended_at IS NULL AND abs(cpu_seconds - run_seconds * 2) <= 0.002
		   FROM ray.job_usage WHERE job_id = :ann_job), 'a running job is metered until now');
SELECT ray._job_transition(:ann_job, 'QUEUED', 'lost', 't') IS NOT NULL;
UPDATE ray.job SET attempts = attempts + 1 WHERE job_id = :ann_job;
SELECT ray._job_transition(:ann_job, 'SUBMITTING', 't', 't') IS NOT NULL,
	   ray._job_transition(:ann_job, 'RUNNING', 't', 't') IS NOT NULL,
	   ray._job_transition(:ann_job, 'SUCCEEDED', 't', 't') IS NOT NULL;
UPDATE ray.job SET submitted_at = '2026-01-01 09:00+00' WHERE job_id = :ann_job;
SELECT ray._job_run_times(:ann_job, 2, 1767261600000, 1767261630500);
SELECT results_eq(format($$SELECT u.attempt, u.cpus, u.gpus, u.memory_bytes,
								  CASE WHEN u.attempt = 1 THEN abs(extract(epoch FROM u.started_at - j.started_at)) < 0.001
									   ELSE u.started_at = '2026-01-01 10:00+00' AND u.ended_at = '2026-01-01 10:00:30.5+00' END
						   FROM ray.job_run_usage u JOIN ray.job j USING (job_id)
						   WHERE u.job_id = %s ORDER BY u.attempt$$, :ann_job),
				  $$VALUES (1, 2::numeric, 0::numeric, 1073741824::bigint, true), (2, 2, 0, 1073741824, true)$$,
				  'each attempt that ran is recorded with what the job asked for; Ray''s times when it reports them');
SELECT is((SELECT count(*)::integer FROM ray.job_package WHERE job_id = :ann_job), 0,
		  'a finished job''s working directory goes: no attempt can need it');
SET LOCAL ROLE tap_meter_ann;
SELECT results_eq($$SELECT job_id, owner::text COLLATE "default", runs FROM ray.job_usage$$,
				  format($$VALUES (%s::bigint, 'tap_meter_ann'::text, 2::bigint)$$, :ann_job),
				  'a role sees its own jobs'' usage, every run of them, and no one else''s');
SELECT ok((SELECT abs(cpu_seconds - 2 * run_seconds) <= 0.002 AND abs(memory_gb_seconds - run_seconds) <= 0.001
				   AND last_ended_at IS NOT NULL AND run_seconds > 30
		   FROM ray.job_usage), 'run time times CPUs and memory asked');
RESET ROLE;
SET LOCAL ROLE tap_meter_admin;
SELECT is((SELECT count(*)::integer FROM ray.job_usage WHERE job_id IN (:ann_job, :ben_job)), 2, 'an admin sees every role''s');
RESET ROLE;

-- Ray's times only between the job's submission and now; a run never seen running is recorded from them
SELECT ray._job_run_times(:ann_job, 2, 1, 2);
SELECT ray._job_run_times(:ann_job, 2, 1767261600000, 9223372036854775807);
SELECT ray._job_run_times(:ann_job, 2, 1767261600000, 1767261500000);
SELECT is((SELECT ended_at FROM ray.job_run_usage WHERE job_id = :ann_job AND attempt = 2),
		  timestamptz '2026-01-01 10:00:30.5+00', 'times before the submission, past now or ending before they start are not taken');
UPDATE ray.job SET submitted_at = '2026-01-01 09:00+00' WHERE job_id = :ben_job;
SELECT ray._job_transition(:ben_job, 'QUEUED', 'failed before it was seen running', 't') IS NOT NULL;
DELETE FROM ray.job_run_usage WHERE job_id = :ben_job;
SELECT ray._job_run_times(:ben_job, 1, 1767261600000, 1767261660000);
SELECT results_eq(format($$SELECT attempt, owner::text COLLATE "default", started_at, ended_at FROM ray.job_run_usage WHERE job_id = %s$$, :ben_job),
				  $$VALUES (1, 'tap_meter_ben'::text, timestamptz '2026-01-01 10:00+00', timestamptz '2026-01-01 10:01+00')$$,
				  'a run Ray timed that pg_ray never saw running is recorded from Ray''s times');
-- usage rows are bound to their owner's role like jobs
ALTER ROLE tap_meter_ben RENAME TO tap_meter_ben2;
SELECT ray._sync_role_names();
SELECT is((SELECT owner::text FROM ray.job_run_usage WHERE job_id = :ben_job), 'tap_meter_ben2',
		  'a renamed role''s usage takes its new name');
ALTER ROLE tap_meter_ben2 RENAME TO tap_meter_ben;
SELECT ray._sync_role_names();

-- 6. By role and day
DELETE FROM ray.job_run_usage WHERE job_id = :ann_job AND attempt = 1;
UPDATE ray.job_run_usage SET started_at = '2026-01-01 23:00+00', ended_at = '2026-01-02 01:30+00'
WHERE job_id = :ann_job;
SET LOCAL ROLE tap_meter_ann;
SELECT results_eq($$SELECT role::text COLLATE "default", day, resource_group, jobs, run_seconds, cpu_seconds FROM ray.usage_by_role ORDER BY day$$,
				  $$VALUES ('tap_meter_ann'::text, date '2026-01-01', 'tap-m'::text, 1::bigint, 3600.000::numeric, 7200.000::numeric),
						   ('tap_meter_ann', '2026-01-02', 'tap-m', 1, 5400.000, 10800.000)$$,
				  'a run that spans midnight counts on both days, for its owner only');
RESET ROLE;
SET LOCAL ROLE tap_meter_ben;
SELECT is((SELECT array_agg(DISTINCT role::text) FROM ray.usage_by_role), ARRAY['tap_meter_ben'],
		  'another role sees its own days only');
RESET ROLE;
-- usage outlives the job's history
DELETE FROM ray.job WHERE job_id = :ann_job;
SET LOCAL ROLE tap_meter_ann;
SELECT is((SELECT count(*)::integer FROM ray.job_usage WHERE job_id = :ann_job), 1, 'a job''s usage outlives its row');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
