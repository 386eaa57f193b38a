-- Worker groups: adding, altering and dropping, and every rule.
\set SHOW_CONTEXT never

SELECT ray.create_resource_group('wg');
SELECT ray.add_worker_group('wg', 'cpu', 'CPU', 'small', 1, 2);
SELECT ray.add_worker_group('wg', 'big', 'cpu', 'm.xlarge', 2, 4, disk_gb => 500);
SELECT ray.add_worker_group('wg', 'gpu', 'GPU', 'gpu.small', 1, 1, gpu_distribution_unit => 1.0/3);
SELECT resource_group, name, resource_type, spec, num_cpus, num_gpus, min_workers, max_workers,
	   disk_gb, round(gpu_distribution_unit, 4) AS gpu_unit, desired_workers, live_workers
FROM ray.worker_groups WHERE resource_group = 'wg' ORDER BY name;
SELECT worker_groups, min_workers, max_workers, desired_workers, generation
FROM ray.resource_groups WHERE name = 'wg';

-- every rule, with its message
SELECT ray.add_worker_group('nope', 'cpu', 'CPU', 'small', 1, 2);
SELECT ray.add_worker_group('wg', 'cpu', 'CPU', 'small', 1, 2);
SELECT ray.add_worker_group('wg', 'Bad', 'CPU', 'small', 1, 2);
SELECT ray.add_worker_group('wg', 'w', 'TPU', 'small', 1, 2);
SELECT ray.add_worker_group('wg', 'w', NULL, 'small', 1, 2);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'nosuch', 1, 2);
SELECT ray.add_worker_group('wg', 'w', 'GPU', 'small', 1, 2);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'gpu.small', 1, 2);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'small', 0, 2);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'small', 3, 2);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'small', 1, 9);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'small', NULL, 2);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'small', 1, 2, disk_gb => 29);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'small', 1, 2, disk_gb => 2001);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'small', 1, 2, disk_gb => NULL);
SELECT ray.add_worker_group('wg', 'w', 'CPU', 'small', 1, 2, gpu_distribution_unit => 0.5);
SELECT ray.add_worker_group('wg', 'w', 'GPU', 'gpu.small', 1, 2, gpu_distribution_unit => 0);
SELECT ray.add_worker_group('wg', 'w', 'GPU', 'gpu.small', 1, 2, gpu_distribution_unit => 1.5);

-- a superuser may raise the cap on max_workers
SET pg_ray.max_workers_per_group = 12;
SELECT ray.add_worker_group('wg', 'wide', 'CPU', 'small', 1, 12);
RESET pg_ray.max_workers_per_group;
-- other changes of a group above the cap remain possible
SELECT ray.alter_worker_group('wg', 'wide', min_workers => 2);
SELECT ray.alter_worker_group('wg', 'wide', max_workers => 11);
SELECT ray.drop_worker_group('wg', 'wide');

-- a worker group changes with the effects reported first
SELECT ray.alter_worker_group('wg', 'cpu', max_workers => 3);
SELECT ray.alter_worker_group('wg', 'cpu', max_workers => 3);
SELECT ray.alter_worker_group('wg', 'big', max_workers => 1);
SELECT ray.alter_worker_group('wg', 'big', min_workers => 1, max_workers => 1);
SELECT ray.alter_worker_group('wg', 'cpu', spec => 'm.xlarge');
SELECT ray.alter_worker_group('wg', 'cpu', disk_gb => 200);
SELECT ray.alter_worker_group('wg', 'gpu', gpu_distribution_unit => 0.5);
SELECT ray.alter_worker_group('wg', 'gpu', resource_type => 'CPU');
SELECT ray.alter_worker_group('wg', 'gpu', resource_type => 'CPU', spec => 'small');
SELECT ray.alter_worker_group('wg', 'cpu', min_workers => 5);
SELECT ray.alter_worker_group('wg', 'nope', min_workers => 1);
SELECT ray.alter_worker_group('nope', 'cpu', min_workers => 1);
SELECT ray.alter_worker_group('wg', NULL, min_workers => 1);
SELECT ray.drop_worker_group('wg', NULL);
SELECT name, resource_type, spec, min_workers, max_workers, disk_gb, gpu_distribution_unit, desired_workers
FROM ray.worker_group WHERE resource_group = 'wg' ORDER BY name;

-- changes that would interrupt running jobs are refused unless forced
SELECT ray.submit_job('wg', 'python long.py') AS running_job \gset
SELECT state FROM ray._job_transition(:running_job, 'SUBMITTING', 'test', 'regress');
SELECT ray.alter_worker_group('wg', 'cpu', spec => 'small');
SELECT ray.alter_worker_group('wg', 'cpu', spec => 'small', force => true);
SELECT ray.alter_worker_group('wg', 'big', min_workers => 1, max_workers => 1);
SELECT ray.drop_worker_group('wg', 'gpu');
SELECT ray.alter_resource_group('wg', head_spec => 'm.xlarge');
SELECT ray.drop_resource_group('wg');
SELECT ray.drop_worker_group('wg', 'gpu', force => true);
SELECT ray.drop_worker_group('wg', 'gpu');
SELECT name FROM ray.worker_group WHERE resource_group = 'wg' ORDER BY name;
SELECT from_state, to_state, message FROM ray.resource_group_event
WHERE resource_group = 'wg' ORDER BY event_id;

-- direct writes obey the rules too
INSERT INTO ray.worker_group (resource_group, name, resource_type, spec, min_workers, max_workers)
VALUES ('wg', 'direct', 'CPU', 'small', 2, 1);
UPDATE ray.worker_group SET disk_gb = 10 WHERE resource_group = 'wg' AND name = 'cpu';
SET session_replication_role = replica;
\set VERBOSITY terse
UPDATE ray.worker_group SET disk_gb = 10 WHERE resource_group = 'wg' AND name = 'cpu';
UPDATE ray.worker_group SET min_workers = 0 WHERE resource_group = 'wg' AND name = 'cpu';
UPDATE ray.worker_group SET gpu_distribution_unit = 0.5 WHERE resource_group = 'wg' AND name = 'cpu';
\set VERBOSITY default
RESET session_replication_role;
