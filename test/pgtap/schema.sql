-- pgTAP: the catalog's shape, its constraints, and the conventions of its functions.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_ray;
SELECT plan(84);

SELECT has_schema('ray');
SELECT has_table('ray', t, format('table ray.%s exists', t))
FROM unnest(ARRAY['node_spec', 'resource_group', 'worker_group', 'resource_group_grant',
				  'resource_group_event', 'resource_group_secret', 'installation', 'lost_run',
				  'job', 'job_event', 'job_log', 'node', 'model', 'model_grant']) AS t;
SELECT has_view('ray', v, format('view ray.%s exists', v))
FROM unnest(ARRAY['jobs', 'job_events', 'resource_groups', 'worker_groups', 'nodes']) AS v;

SELECT has_column('ray', 'jobs', c, format('ray.jobs has %s', c))
FROM unnest(ARRAY['job_id', 'resource_group', 'owner', 'kind', 'state', 'attempts',
				  'submitted_at', 'started_at', 'finished_at', 'message']) AS c;
SELECT has_column('ray', 'resource_groups', c, format('ray.resource_groups has %s', c))
FROM unnest(ARRAY['name', 'provider', 'head_spec', 'state', 'dashboard_url',
				  'live_workers', 'desired_workers']) AS c;
SELECT col_type_is('ray', 'job', 'state', 'text', 'ray.job.state is text');
SELECT col_type_is('ray', 'job', 'attempts', 'integer', 'ray.job.attempts is an integer');
SELECT col_type_is('ray', 'worker_group', 'min_workers', 'integer', 'ray.worker_group.min_workers is an integer');
SELECT col_type_is('ray', 'worker_group', 'max_workers', 'integer', 'ray.worker_group.max_workers is an integer');
SELECT col_type_is('ray', 'jobs', 'submitted_at', 'timestamp with time zone', 'times are timestamptz');

SELECT has_function('ray', f, format('function ray.%s exists', f))
FROM unnest(ARRAY['create_resource_group', 'alter_resource_group', 'drop_resource_group',
				  'add_worker_group', 'alter_worker_group', 'drop_worker_group',
				  'submit_job', 'stop_job', 'grant_usage', 'revoke_usage', 'worker_status',
				  'register_cluster', 'wait_job', 'job_logs', 'cluster_status']) AS f;

SELECT is(count(*)::integer, 0, 'every SECURITY DEFINER function sets search_path')
FROM pg_proc
WHERE pronamespace = 'ray'::regnamespace AND prosecdef
  AND NOT coalesce(array_to_string(proconfig, ',') LIKE '%search_path=%', false);
SELECT is(count(*)::integer, 0, 'every function has a comment')
FROM pg_proc p
WHERE p.pronamespace = 'ray'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT is(count(*)::integer, 0, 'every table has a comment')
FROM pg_class c
WHERE c.relnamespace = 'ray'::regnamespace AND c.relkind = 'r'
  AND obj_description(c.oid, 'pg_class') IS NULL;

SELECT ok(relrowsecurity, format('row-level security is on for ray.%s', relname))
FROM pg_class WHERE oid IN ('ray.job'::regclass, 'ray.job_event'::regclass, 'ray.job_log'::regclass);

SELECT ok((SELECT array_agg(c::regclass::text) FROM pg_extension e, unnest(e.extconfig) c
		   WHERE e.extname = 'pg_ray') @> ARRAY['ray.job', 'ray.resource_group', 'ray.worker_group',
												'ray.job_event', 'ray.job_log', 'ray.job_id_seq'],
		  'user data is dumped by pg_dump');

SELECT has_trigger('ray', t, 'wake_worker', format('ray.%s wakes the worker at commit', t))
FROM unnest(ARRAY['resource_group', 'worker_group', 'job', 'node_spec']) AS t;

SELECT throws_ok($$INSERT INTO ray.worker_group (resource_group, name, resource_type, spec, min_workers, max_workers)
				   VALUES ('nosuch', 'w', 'CPU', 'small', 1, 2)$$, '23503', NULL, 'a worker group belongs to a resource group');

-- the constraints hold even when the validation triggers do not run
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$INSERT INTO ray.resource_group (name, head_spec, owner) VALUES ('tap', 'small', 'postgres')$$,
				 '23514', NULL, 'a local group runs as an OS user');
SELECT lives_ok($$INSERT INTO ray.resource_group (name, head_spec, owner, os_user) VALUES ('tap', 'small', 'postgres', 'pgray-g90')$$,
				'a valid resource group is accepted');
SELECT throws_ok($$INSERT INTO ray.resource_group (name, head_spec, owner, os_user) VALUES ('tap2', 'small', 'postgres', 'pgray-g90')$$,
				 '23505', NULL, 'no two groups run as one OS user');
SELECT throws_ok($$INSERT INTO ray.resource_group (name, provider, endpoint, owner, os_user)
				   VALUES ('tap3', 'external', 'http://127.0.0.1:1', 'postgres', 'pgray-g91')$$,
				 '23514', NULL, 'an external group runs as no OS user');
SELECT throws_ok($$INSERT INTO ray.worker_group (resource_group, name, resource_type, spec, min_workers, max_workers)
				   VALUES ('tap', 'w', 'CPU', 'small', 0, 1)$$, '23514', NULL, 'min_workers is at least 1');
SELECT throws_ok($$INSERT INTO ray.worker_group (resource_group, name, resource_type, spec, min_workers, max_workers)
				   VALUES ('tap', 'w', 'CPU', 'small', 3, 2)$$, '23514', NULL, 'min_workers <= max_workers');
SELECT throws_ok($$INSERT INTO ray.worker_group (resource_group, name, resource_type, spec, min_workers, max_workers, disk_gb)
				   VALUES ('tap', 'w', 'CPU', 'small', 1, 2, 2001)$$, '23514', NULL, 'disk_gb is at most 2000');
SELECT throws_ok($$INSERT INTO ray.worker_group (resource_group, name, resource_type, spec, min_workers, max_workers, gpu_distribution_unit)
				   VALUES ('tap', 'w', 'CPU', 'small', 1, 2, 0.5)$$, '23514', NULL, 'a GPU unit needs a GPU group');
SELECT throws_ok($$INSERT INTO ray.job (owner, resource_group, entrypoint, state)
				   VALUES ('postgres', 'tap', 'x', 'DONE')$$, '23514', NULL, 'job states are the state machine''s');
SELECT throws_ok($$INSERT INTO ray.job (owner, resource_group, entrypoint, runtime_env)
				   VALUES ('postgres', 'tap', 'x', '[]')$$, '23514', NULL, 'runtime_env is an object');
SELECT throws_ok($$INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, num_gpus, cpu_units)
				   VALUES ('bad', 'GPU', 1, 1024, 0, 1)$$, '23514', NULL, 'a GPU spec has GPUs');
SELECT throws_ok($$INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, cpu_units)
				   VALUES ('huge', 'CPU', 1, 9000000000000000, 1)$$, '23514', NULL,
				 'a spec''s memory is one the worker can count in bytes');
SELECT throws_ok($$INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, num_gpus, cpu_units)
				   VALUES ('nan', 'GPU', 1, 1024, 'NaN', 1)$$, '23514', NULL, 'no NaN GPUs');
SELECT throws_ok($$INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, cpu_units)
				   VALUES ('inf', 'CPU', 1, 1024, 'Infinity')$$, '23514', NULL, 'no infinite CPU units');
SELECT lives_ok($$INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, cpu_units)
				   VALUES ('pib', 'CPU', 1, 1073741824, 1)$$, 'a pebibyte node is still a node');

SELECT * FROM finish();
ROLLBACK;
