-- pgTAP: admission.  Jobs wait in QUEUED until their group can run them:
-- a cap on jobs starting at once, the group's capacity at its largest,
-- quotas per role, priorities and fair share decide which start, in the
-- order ray.queue shows, and each waiting job says why.  A run Ray could
-- not start is requeued without spending an attempt.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_ray;
SELECT plan(69);

CREATE ROLE tap_team IN ROLE ray_user;
CREATE ROLE tap_ann IN ROLE tap_team;
CREATE ROLE tap_ben IN ROLE tap_team;
CREATE ROLE tap_cid IN ROLE ray_user;
CREATE ROLE tap_flood IN ROLE ray_user;

-- as if the worker had found them ready
CREATE FUNCTION pg_temp.ready(g text) RETURNS void LANGUAGE sql
AS $$ UPDATE ray.resource_group SET state = 'READY' WHERE name = g $$;
CREATE FUNCTION pg_temp.in_state(g text, s text) RETURNS integer LANGUAGE sql
AS $$ SELECT count(*)::integer FROM ray.job WHERE resource_group = g AND state = s $$;
-- as if Ray had started (or finished) runs
CREATE FUNCTION pg_temp.move(g text, from_state text, to_state text, n integer DEFAULT 1000) RETURNS void LANGUAGE sql
AS $$ SELECT count(ray._job_transition(job_id, to_state, 'test', 'test'))
	  FROM (SELECT job_id FROM ray.job WHERE resource_group = g AND state = from_state ORDER BY job_id LIMIT n) j $$;

-- 1. The starting cap: a group without worker groups (its capacity unknown)
SELECT ray.create_resource_group('tap-burst');
SELECT ray.create_resource_group('tap-other');
SELECT pg_temp.ready('tap-burst'), pg_temp.ready('tap-other');
SELECT count(ray.submit_job('tap-burst', 'true')) FROM generate_series(1, 30);
SELECT count(ray.submit_job('tap-other', 'true')) FROM generate_series(1, 3);
SELECT is(ray._begin_attempts(4), 7, 'four of the burst begin, and the other group''s three');
SELECT is(pg_temp.in_state('tap-burst', 'SUBMITTING'), 4, 'a burst of 30 jobs: 4 begin');
SELECT is((SELECT max(job_id) FILTER (WHERE state = 'SUBMITTING') < min(job_id) FILTER (WHERE state = 'QUEUED')
		   FROM ray.job WHERE resource_group = 'tap-burst'), true, 'the first 4, in order');
SELECT pg_temp.move('tap-burst', 'SUBMITTING', 'PENDING');
SELECT is(ray._begin_attempts(4), 0, 'PENDING is still starting: none begins');
SELECT alike((SELECT message FROM ray.jobs WHERE resource_group = 'tap-burst' AND queue_position = 1),
			'waiting for a start: resource group "tap-burst" has 4 jobs starting in Ray%', 'the next job says why it waits');
SELECT pg_temp.move('tap-burst', 'PENDING', 'RUNNING', 3);
SELECT is(ray._begin_attempts(4), 3, 'as Ray starts 3 drivers, 3 more begin');
SELECT is((SELECT array_agg(queue_position ORDER BY job_id) FROM ray.queue WHERE resource_group = 'tap-burst'),
		  (SELECT array_agg(g::bigint) FROM generate_series(1, 23) g), 'ray.queue: the rest in order');
UPDATE ray.job SET state_changed_at = now() - interval '31 seconds' WHERE resource_group = 'tap-burst' AND state = 'PENDING';
SELECT is(ray._begin_attempts(4), 1, 'a run PENDING for over 30 s waits for resources, not its start: one more begins');
DELETE FROM ray.job WHERE resource_group IN ('tap-burst', 'tap-other');

-- 2. Capacity: CPUs of the worker groups at max_workers (small: 1 CPU, gpu.small: 4 CPUs and 1 GPU)
SELECT ray.create_resource_group('tap-cap');
SELECT ray.add_worker_group('tap-cap', 'cpu', 'CPU', 'small', 1, 2);
SELECT ray.add_worker_group('tap-cap', 'gpu', 'GPU', 'gpu.small', 1, 1);
SELECT pg_temp.ready('tap-cap');
SELECT is((SELECT row(cpus, gpus)::text FROM ray._group_capacity('tap-cap')), '(6,1)', 'capacity: 2 x 1 + 1 x 4 CPUs, 1 GPU');
SELECT set_config('tap.big', ray.submit_job('tap-cap', 'big', entrypoint_num_cpus => 4)::text, true);
SELECT set_config('tap.gpu', ray.submit_job('tap-cap', 'gpu', entrypoint_num_gpus => 1, entrypoint_num_cpus => 1)::text, true);
SELECT set_config('tap.small', ray.submit_job('tap-cap', 'small')::text, true);
SELECT set_config('tap.gpu2', ray.submit_job('tap-cap', 'gpu2', entrypoint_num_gpus => 1, entrypoint_num_cpus => 0)::text, true);
SELECT set_config('tap.zero', ray.submit_job('tap-cap', 'zero', entrypoint_num_cpus => 0)::text, true);
SELECT is((SELECT cpus_asked FROM ray.jobs WHERE job_id = current_setting('tap.small')::bigint), 1::numeric,
		  'a job that names no CPUs asks for one');
SELECT is(ray._begin_attempts(10), 4, 'big (4), gpu (1 + 1 GPU) and small (1) fill the 6 CPUs; zero fits anyway');
SELECT is((SELECT state FROM ray.job WHERE job_id = current_setting('tap.gpu2')::bigint), 'QUEUED',
		  'a second GPU job waits for the one GPU');
SELECT alike((SELECT message FROM ray.job WHERE job_id = current_setting('tap.gpu2')::bigint),
			'waiting for room: resource group "tap-cap" at capacity (6 of 6 CPUs and 1 of 1 GPUs%', 'and says so');
SELECT is((SELECT state FROM ray.job WHERE job_id = current_setting('tap.zero')::bigint), 'SUBMITTING',
		  'a job that asks for no CPUs and no GPUs is not held back');
SELECT pg_temp.move('tap-cap', 'SUBMITTING', 'RUNNING');
SELECT ray._job_transition(current_setting('tap.big')::bigint, 'SUCCEEDED', 'test', 'test');
SELECT set_config('tap.huge', ray.submit_job('tap-cap', 'huge', entrypoint_num_cpus => 4, priority => 10)::text, true);
DELETE FROM ray.worker_group WHERE resource_group = 'tap-cap' AND name = 'gpu';
SELECT is(ray._begin_attempts(10), 0, 'the group shrank: nothing fits');
SELECT alike((SELECT message FROM ray.job WHERE job_id = current_setting('tap.huge')::bigint),
			'waiting for resource group "tap-cap" to grow: the job asks for 4 CPUs and 0 GPUs, its worker groups hold 2 and 0 at most',
			'a job larger than the group waits for it to grow');
DELETE FROM ray.job WHERE resource_group = 'tap-cap';

-- 3. Priorities: higher first within a group, then first in, first out
SELECT ray.create_resource_group('tap-prio');
SELECT pg_temp.ready('tap-prio');
SELECT count(ray.submit_job('tap-prio', 'p', priority => p)) FROM unnest(ARRAY[0, 5, -3, 5, 100]) p;
SELECT is((SELECT array_agg(priority ORDER BY queue_position) FROM ray.queue WHERE resource_group = 'tap-prio'),
		  ARRAY[100, 5, 5, 0, -3], 'ray.queue orders by priority');
SELECT ray._begin_attempts(2);
SELECT is((SELECT array_agg(priority ORDER BY job_id) FROM ray.job WHERE resource_group = 'tap-prio' AND state = 'SUBMITTING'),
		  ARRAY[5, 100], 'the two highest start first');
SELECT throws_ok($$SELECT ray.submit_job('tap-prio', 'p', priority => 1001)$$, '22023',
				 'priority must be from -1000 to 1000, not 1001', 'a priority out of range is refused');
SELECT throws_ok($$SELECT ray.submit_job('tap-prio', 'p', priority => NULL)$$, '22023',
				 'priority must be from -1000 to 1000, not NULL', 'so is none');
-- a priority above 0 is an admin's to allow
SELECT ray.grant_usage('tap-prio', 'public');
SET LOCAL ROLE tap_ann;
SELECT lives_ok($$SELECT ray.submit_job('tap-prio', 'p', priority => -5)$$, 'a user may lower the priority of its jobs');
SELECT throws_ok($$SELECT ray.submit_job('tap-prio', 'p', priority => 1)$$, '42501',
				 'priority 1 is above what the role may ask for on resource group "tap-prio"', 'but not raise it by itself');
RESET ROLE;
SELECT ray.set_quota('tap-prio', 'tap_team', max_priority => 5);
SET LOCAL ROLE tap_ann;
SELECT lives_ok($$SELECT ray.submit_job('tap-prio', 'p', priority => 5)$$, 'a quota of its role allows up to 5');
SELECT throws_ok($$SELECT ray.submit_job('tap-prio', 'p', priority => 6)$$, '42501', NULL, 'and no more');
RESET ROLE;
SELECT throws_ok($$SELECT ray.set_quota('tap-prio', 'tap_team', max_priority => 1001)$$, '22023',
				 'max_priority must be from -1000 to 1000, not 1001', 'a max_priority out of range');
DELETE FROM ray.quota WHERE resource_group = 'tap-prio';
DELETE FROM ray.job WHERE resource_group = 'tap-prio';

-- 4. Fair share: a role's late jobs start before the tail of another's flood
SELECT ray.create_resource_group('tap-fair');
SELECT ray.grant_usage('tap-fair', 'public');
SELECT pg_temp.ready('tap-fair');
SET LOCAL ROLE tap_flood;
SELECT count(ray.submit_job('tap-fair', 'flood')) FROM generate_series(1, 30);
RESET ROLE;
SELECT ray._begin_attempts(2);
SELECT pg_temp.move('tap-fair', 'SUBMITTING', 'RUNNING');
SET LOCAL ROLE tap_cid;
SELECT count(ray.submit_job('tap-fair', 'late')) FROM generate_series(1, 3);
SELECT is((SELECT array_agg(queue_position ORDER BY job_id) FROM ray.queue), ARRAY[1, 2, 4]::bigint[],
		  'a role sees only its own place in the queue: after none of the flood, then between the flood''s jobs');
RESET ROLE;
SELECT ray._begin_attempts(2);
SELECT is((SELECT array_agg(owner::text ORDER BY job_id) FROM ray.job WHERE resource_group = 'tap-fair' AND state = 'SUBMITTING'),
		  ARRAY['tap_cid', 'tap_cid'], 'the late role starts first: the flood has 2 CPUs in Ray');
SELECT ray.set_quota('tap-fair', 'tap_flood', share => 10);
SELECT is((SELECT owner::text FROM ray.queue WHERE resource_group = 'tap-fair' AND queue_position = 1), 'tap_flood',
		  'a larger share puts the flood ahead');
DELETE FROM ray.quota WHERE resource_group = 'tap-fair';
DELETE FROM ray.job WHERE resource_group = 'tap-fair';

-- 5. Quotas: a team role bounds its members together
SELECT ray.create_resource_group('tap-quota');
SELECT ray.add_worker_group('tap-quota', 'cpu', 'CPU', 'm.2xlarge', 1, 2);
SELECT ray.grant_usage('tap-quota', 'public');
SELECT pg_temp.ready('tap-quota');
SELECT ray.set_quota('tap-quota', 'tap_team', max_running_jobs => 2, max_cpus => 3, max_queued_jobs => 4);
SET LOCAL ROLE tap_ann;
SELECT count(ray.submit_job('tap-quota', 'ann')) FROM generate_series(1, 2);
RESET ROLE;
SET LOCAL ROLE tap_ben;
SELECT count(ray.submit_job('tap-quota', 'ben')) FROM generate_series(1, 2);
SELECT throws_ok($$SELECT ray.submit_job('tap-quota', 'ben')$$, '53400',
				 'role quota of "tap_team" on resource group "tap-quota" allows no more queued jobs',
				 'over the queued limit a submission fails at once');
SELECT is((SELECT max_queued_jobs || ' ' || queued_jobs FROM ray.quotas), '4 4', 'members see their role''s quota and use');
RESET ROLE;
SELECT set_config('tap.cid', ray.submit_job('tap-quota', 'cid')::text, true) FROM (SELECT 1) x
WHERE set_config('role', 'tap_cid', true) IS NOT NULL;
RESET ROLE;
SELECT is(ray._begin_attempts(10), 3, 'two of the team and the outsider start');
SELECT is((SELECT count(*)::integer FROM ray.job WHERE resource_group = 'tap-quota' AND owner IN ('tap_ann', 'tap_ben')
		   AND state = 'SUBMITTING'), 2, 'the team has 2 jobs in Ray: its quota');
SELECT is((SELECT message FROM ray.jobs WHERE resource_group = 'tap-quota' AND queue_position = 1),
		  'waiting for the role quota of tap_team: 2 of 2 running jobs', 'the next says why it waits');
SELECT ray.set_quota('tap-quota', 'tap_team', max_running_jobs => 5, max_cpus => 3);
SELECT is(ray._begin_attempts(10), 1, 'raised: one more fits the team''s 3 CPUs');
SELECT is((SELECT message FROM ray.jobs WHERE resource_group = 'tap-quota' AND queue_position = 1),
		  'waiting for the role quota of tap_team: 3 of 3 CPUs in use, the job asks for 1', 'CPUs are counted too');
SELECT ray.drop_quota('tap-quota', 'tap_team');
SELECT is(ray._begin_attempts(10), 1, 'dropped: the last one starts');

-- bad quota arguments
SELECT throws_ok($$SELECT ray.set_quota('tap-quota', 'tap_nobody', max_running_jobs => 1)$$, '42704',
				 'role "tap_nobody" does not exist', 'a quota for no role');
SELECT throws_ok($$SELECT ray.set_quota('tap-quota', 'public', max_running_jobs => 1)$$, '42704',
				 'role "public" does not exist', 'public is no role to bound');
SELECT throws_ok($$SELECT ray.set_quota('tap-nowhere', 'tap_team', max_running_jobs => 1)$$, '42704', NULL,
				 'a quota on no group');
SELECT throws_ok($$SELECT ray.set_quota('tap-quota', 'tap_team', max_cpus => -1)$$, '22023',
				 'max_cpus must be a number of 0 or more, not -1', 'a negative limit');
SELECT throws_ok($$SELECT ray.set_quota('tap-quota', 'tap_team', max_gpus => 'NaN')$$, '22023',
				 'max_gpus must be a number of 0 or more, not NaN', 'a limit that is no number');
SELECT throws_ok($$SELECT ray.set_quota('tap-quota', 'tap_team', share => 0)$$, '22023',
				 'share must be more than 0 and at most 1000, not 0', 'a share of nothing');
SELECT throws_ok($$SELECT ray.set_quota('tap-quota', NULL, max_running_jobs => 1)$$, '22004',
				 'role must not be null', 'no role');
SELECT throws_ok($$SELECT ray.drop_quota('tap-quota', 'tap_team')$$, '42704',
				 'role "tap_team" has no quota on resource group "tap-quota"', 'dropping a quota that is not there');
SET LOCAL ROLE tap_ann;
SELECT throws_ok($$SELECT ray.set_quota('tap-quota', 'tap_ann', max_running_jobs => 100)$$, '42501', NULL,
				 'a user cannot set a quota');
RESET ROLE;

-- 6. A run Ray could not start is requeued without spending an attempt, a bounded number of times
SELECT ray.create_resource_group('tap-overload');
SELECT pg_temp.ready('tap-overload');
SELECT set_config('tap.over', ray.submit_job('tap-overload', 'true')::text, true);
SELECT set_config('tap.user', ray.submit_job('tap-overload', 'false')::text, true);
SELECT ray._begin_attempts(4);
SELECT ray._apply_job_info(current_setting('tap.over')::bigint, 1, 'FAILED',
						   'Job supervisor actor failed to start within 900.0 seconds.',
						   'JOB_SUPERVISOR_ACTOR_START_TIMEOUT', NULL, 1, 2, NULL);
SELECT is((SELECT state || ' ' || attempts || ' ' || ray_requeues FROM ray.job WHERE job_id = current_setting('tap.over')::bigint),
		  'QUEUED 1 1', 'Ray''s supervisor timeout: queued again, the attempt not spent');
SELECT alike((SELECT message FROM ray.job_events WHERE job_id = current_setting('tap.over')::bigint ORDER BY event_id DESC LIMIT 1),
			'Ray could not start attempt 1 of 1: Ray reported JOB_SUPERVISOR_ACTOR_START_TIMEOUT%requeued without spending an attempt (1 of pg_ray.max_ray_requeues = 10)',
			'the event says so and counts it');
SELECT ray._begin_attempts(4);
SELECT is((SELECT ray_submission_id FROM ray.job WHERE job_id = current_setting('tap.over')::bigint),
		  format('pgray-%s-%s-2', (SELECT id FROM ray.installation), current_setting('tap.over')),
		  'the next run has a submission id of its own');
-- as if it had been requeued so nine times more
UPDATE ray.job SET ray_requeues = 10, attempts = 11 WHERE job_id = current_setting('tap.over')::bigint;
SELECT ray._apply_job_info(current_setting('tap.over')::bigint, 11, 'FAILED',
						   E'runtime_env setup failed: Failed to set up runtime environment.\nFailed to install runtime_env within the timeout of 600 seconds. Consider increasing the timeout',
						   'RUNTIME_ENV_SETUP_FAILURE', NULL, 1, 2, NULL);
SELECT is((SELECT state FROM ray.job WHERE job_id = current_setting('tap.over')::bigint), 'FAILED',
		  'past pg_ray.max_ray_requeues the lost run spends the attempt');
SELECT ray._apply_job_info(current_setting('tap.user')::bigint, 1, 'FAILED', 'exit 1',
						   'JOB_ENTRYPOINT_COMMAND_ERROR', 1, 1, 2, NULL);
SELECT is((SELECT state || ' ' || ray_requeues FROM ray.job WHERE job_id = current_setting('tap.user')::bigint),
		  'FAILED 0', 'a failure of the user''s code still fails');
SELECT set_config('tap.died', ray.submit_job('tap-overload', 'true', max_attempts => 2)::text, true);
SELECT set_config('tap.died_pending', ray.submit_job('tap-overload', 'true', max_attempts => 2)::text, true);
SELECT set_config('tap.env', ray.submit_job('tap-overload', 'true')::text, true);
SELECT ray._begin_attempts(4);
SELECT ray._job_transition(current_setting('tap.died')::bigint, s, 'test', 'test')
FROM unnest(ARRAY['PENDING', 'RUNNING']) s;
SELECT ray._apply_job_info(current_setting('tap.died')::bigint, 1, 'FAILED', 'Job supervisor actor died',
						   'JOB_SUPERVISOR_ACTOR_DIED', NULL, 1, 2, NULL);
SELECT is((SELECT state || ' ' || ray_requeues FROM ray.job WHERE job_id = current_setting('tap.died')::bigint),
		  'QUEUED 0', 'a supervisor that died while its run was running (the driver can kill it) is lost and spends the attempt');
SELECT ray._job_transition(current_setting('tap.died_pending')::bigint, 'PENDING', 'test', 'test');
SELECT ray._apply_job_info(current_setting('tap.died_pending')::bigint, 1, 'FAILED',
						   'Job supervisor actor died: the actor''s node was terminated unexpectedly',
						   'JOB_SUPERVISOR_ACTOR_DIED', NULL, 1, 2, NULL);
SELECT is((SELECT state || ' ' || ray_requeues FROM ray.job WHERE job_id = current_setting('tap.died_pending')::bigint),
		  'QUEUED 1', 'one that died before its run was seen running never ran the driver: requeued without spending an attempt');
SELECT ray._apply_job_info(current_setting('tap.env')::bigint, 1, 'FAILED',
						   'runtime_env setup failed: No matching distribution found for timedout; timed out',
						   'RUNTIME_ENV_SETUP_FAILURE', NULL, 1, 2, NULL);
SELECT is((SELECT state || ' ' || ray_requeues FROM ray.job WHERE job_id = current_setting('tap.env')::bigint),
		  'FAILED 0', 'a runtime_env the user got wrong is the user''s, whatever words it brings');
DELETE FROM ray.job WHERE resource_group = 'tap-overload';

-- 8. What a hostile user might try
SELECT throws_ok($$SELECT ray.submit_job('tap-quota', 'x', entrypoint_resources => '{"pgray-worker-group:cpu": 1000}')$$,
				 '22023', 'entrypoint_resources must not name pg_ray''s own resources', 'pg_ray''s resources are its own');
SELECT ray.set_quota('tap-quota', 'tap_cid', max_running_jobs => 0, max_queued_jobs => 0, share => 0.01);
-- as tap_cid logged in would make it in PostgreSQL 15 (a role may grant itself in its own session)
GRANT tap_cid TO tap_ann GRANTED BY tap_cid;
SELECT is(ray._quota_applies('tap_ann'::regrole, 'tap_cid'::regrole), false,
		  'a quota does not follow a membership its role granted itself');
SET LOCAL ROLE tap_ann;
SELECT lives_ok($$SELECT ray.submit_job('tap-quota', 'ann')$$, 'so the victim is not held by it');
SELECT is((SELECT count(*)::integer FROM ray.quotas WHERE role = 'tap_cid'), 0, 'nor does it see that quota''s counts');
RESET ROLE;
DELETE FROM ray.job WHERE resource_group = 'tap-quota';


-- 7. Placement: a job asks for a worker group; each demand grows exactly one worker group
SELECT ray.create_resource_group('tap-place');
SELECT ray.add_worker_group('tap-place', 'small', 'CPU', 'small', 1, 3);
SELECT ray.add_worker_group('tap-place', 'big', 'CPU', 'm.xlarge', 1, 1);
SELECT ray.add_worker_group('tap-place', 'gpu', 'GPU', 'gpu.small', 1, 2);
SELECT pg_temp.ready('tap-place');
SELECT throws_ok($$SELECT ray.submit_job('tap-place', 'x', worker_group => 'huge')$$, '42704',
				 'worker group "huge" does not exist in resource group "tap-place"', 'a worker group the group lacks');
SELECT throws_ok($$SELECT ray.submit_job('tap-place', 'x', worker_group => 'small', entrypoint_num_cpus => 4)$$, '22023',
				 'no worker node of resource group "tap-place" can hold the entrypoint',
				 'the fit check looks at the worker group asked for alone');
SELECT throws_ok($$SELECT ray.submit_job('tap-place', 'x', worker_group => 'big', entrypoint_num_gpus => 1)$$, '22023',
				 'resource group "tap-place" has no GPU workers in worker group "big"', 'GPUs of a CPU worker group');
SELECT set_config('tap.pinned', ray.submit_job('tap-place', 'x', worker_group => 'big', entrypoint_num_cpus => 3)::text, true);
SELECT is((SELECT entrypoint_resources || jsonb_build_object('wg', worker_group) FROM ray.job
		   WHERE job_id = current_setting('tap.pinned')::bigint),
		  '{"pgray-worker-group:big": 0.001, "wg": "big"}'::jsonb, 'Ray is asked for a sliver of the group''s own resource');
SELECT set_config('tap.pinned2', ray.submit_job('tap-place', 'x', worker_group => 'big', entrypoint_num_cpus => 2)::text, true);
SELECT set_config('tap.free', ray.submit_job('tap-place', 'x', entrypoint_num_cpus => 2)::text, true);
SELECT is(ray._begin_attempts(10), 2, 'the second job for "big" waits for it; a job for any node does not');
SELECT is((SELECT message FROM ray.job WHERE job_id = current_setting('tap.pinned2')::bigint),
		  'waiting for room in worker group "big" of resource group "tap-place" (3 of 4 CPUs and 0 of 0 GPUs asked for by its jobs in Ray)',
		  'and says so');
DELETE FROM ray.job WHERE resource_group = 'tap-place';
SELECT ray._local_reconcile_nodes();
SELECT ok((SELECT argv @> ARRAY['--resources={"pgray-worker-group:big": 1000}', '--labels=pgray-node=' || n.node_id || ',pgray-worker-group=big']
		   FROM ray.node n, ray._local_node_command(n.node_id, 0)
		   WHERE n.resource_group = 'tap-place' AND n.worker_group = 'big'),
		  'a worker node carries its worker group as a resource and a label');
UPDATE ray.node SET pid = 1, started_at = now(), ray_state = 'ALIVE', ray_node_id = 'ab' || node_id
WHERE resource_group = 'tap-place';
CREATE FUNCTION pg_temp.demand(bundle text) RETURNS void LANGUAGE sql
AS $$ UPDATE ray.worker_group SET last_scaled_at = NULL WHERE resource_group = 'tap-place';
	  SELECT ray._apply_cluster_status('tap-place', format('{"data": {"clusterStatus": {"loadMetricsReport": {
		"resourceDemand": [[%s, 1]], "usageByNode": {}}}}}', bundle)::jsonb) $$;
CREATE FUNCTION pg_temp.desired() RETURNS text LANGUAGE sql
AS $$ SELECT string_agg(name || '=' || desired_workers, ' ' ORDER BY name) FROM ray.worker_group
	  WHERE resource_group = 'tap-place' $$;
SELECT pg_temp.demand('{"CPU": 1.0}');
SELECT is(pg_temp.desired(), 'big=1 gpu=1 small=2', 'one CPU of demand grows one worker group: the smallest that holds it');
UPDATE ray.node SET pid = 1, started_at = now(), ray_state = 'ALIVE', ray_node_id = 'ab' || node_id
WHERE resource_group = 'tap-place';
SELECT pg_temp.demand('{"CPU": 2.0}');
SELECT is(pg_temp.desired(), 'big=1 gpu=1 small=2', 'two CPUs: only "big" holds them, and it is at its maximum');
SELECT pg_temp.demand('{"CPU": 1.0, "pgray-worker-group:gpu": 0.001}');
SELECT is(pg_temp.desired(), 'big=1 gpu=2 small=2', 'demand that names its worker group grows that one');
UPDATE ray.node SET pid = 1, started_at = now(), ray_state = 'ALIVE', ray_node_id = 'ab' || node_id
WHERE resource_group = 'tap-place';
SELECT pg_temp.demand('{"CPU": 1.0, "pgray-worker-group:other": 0.001}');
SELECT is(pg_temp.desired(), 'big=1 gpu=2 small=2', 'demand for a worker group the group lacks grows none');
SELECT pg_temp.demand('{"CPU": 1.0}');
SELECT is(pg_temp.desired(), 'big=1 gpu=2 small=3', 'and small keeps taking what fits it');

SELECT * FROM finish();
ROLLBACK;
