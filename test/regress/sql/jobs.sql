-- Jobs: submitting, validating, stopping, and their history.
\set SHOW_CONTEXT never
-- job ids of this file do not depend on the files before it
SELECT setval('ray.job_id_seq', 100, false) IS NOT NULL AS job_ids_reset;

SELECT ray.create_resource_group('jobs');
SELECT ray.add_worker_group('jobs', 'cpu', 'CPU', 'm.xlarge', 1, 2);

SELECT ray.submit_job('jobs', 'python score.py',
	runtime_env => '{"pip": ["requests==2.32.3"], "env_vars": {"MODE": "nightly"}, "working_dir": "."}',
	metadata => '{"team": "ads"}',
	entrypoint_num_cpus => 2,
	entrypoint_memory => 1073741824,
	entrypoint_resources => '{"custom_slot": 1}',
	max_attempts => 3) AS job \gset
SELECT job_id = :job AS same_id, resource_group, owner, kind, state, attempts, max_attempts,
	   started_at, finished_at, entrypoint, ray_submission_id
FROM ray.jobs WHERE job_id = :job;
SELECT runtime_env, metadata, entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory,
	   entrypoint_resources
FROM ray.job WHERE job_id = :job;
SELECT from_state, to_state, attempt, actor, message FROM ray.job_events WHERE job_id = :job;

-- the other shapes of runtime_env Ray accepts
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"pip": {"packages": ["x"], "pip_check": false}}') > 0 AS ok;
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"pip": "requirements.txt", "conda": "env"}') > 0 AS ok;
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"py_modules": ["a", "b"], "excludes": ["*.log"], "config": {"setup_timeout_seconds": 60}}') > 0 AS ok;
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => NULL, metadata => NULL, entrypoint_resources => NULL) > 0 AS nulls_mean_empty;

-- every rule, with its message
SELECT ray.submit_job('nope', 'python a.py');
SELECT ray.submit_job(NULL, 'python a.py');
SELECT ray.submit_job('jobs', NULL);
SELECT ray.submit_job('jobs', '   ');
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '[]');
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"pipp": ["x"]}');
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"pip": 3}');
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"pip": ["x", 1]}');
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"working_dir": 1}');
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"py_modules": "a"}');
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"env_vars": {"A": 1}}');
SELECT ray.submit_job('jobs', 'python a.py', runtime_env => '{"config": []}');
SELECT ray.submit_job('jobs', 'python a.py', metadata => '{"n": 1}');
SELECT ray.submit_job('jobs', 'python a.py', metadata => '"x"');
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_resources => '[]');
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_resources => '{"CPU": 1}');
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_resources => '{"slot": -1}');
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_resources => '{"slot": "1"}');
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_num_cpus => -1);
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_memory => -1);
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_num_cpus => 'NaN');
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_num_gpus => 'Infinity');
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_num_cpus => 5);
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_num_gpus => 0.5);
SELECT ray.submit_job('jobs', 'python a.py', max_attempts => 0);
SELECT ray.submit_job('jobs', 'python a.py', max_attempts => 101);
SELECT ray.submit_job('jobs', 'python a.py', max_attempts => NULL);
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_memory => 40000000000);

-- with a GPU worker group, GPUs are counted per node
SELECT ray.add_worker_group('jobs', 'gpu', 'GPU', 'gpu.small', 1, 1);
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_num_gpus => 2);
SELECT ray.submit_job('jobs', 'python a.py', entrypoint_num_gpus => 1, retry_on_failure => true) AS gpu_job \gset
SELECT entrypoint_num_gpus, retry_on_failure FROM ray.job WHERE job_id = :gpu_job;

-- waiting: errors, a timeout, and a job that has already ended
SELECT ray.wait_job(NULL);
SELECT ray.wait_job(:gpu_job, NULL);
SELECT ray.wait_job(:gpu_job, interval '-1 second');
SELECT ray.wait_job(:gpu_job, interval '-178000000 years -1 month');
SELECT ray.wait_job(:gpu_job, interval '178000000 years');
SELECT ray.wait_job(999999, interval '1 second');
-- what it waits for (DETAIL) is the worker's to say, when it has looked
\set VERBOSITY terse
SELECT ray.wait_job(:gpu_job, interval '0');
\set VERBOSITY default
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT ray.wait_job(:gpu_job, interval '1 second');
ROLLBACK;

-- logs: none yet for a queued job
SELECT ray.job_logs(:gpu_job) = '' AS no_log_yet;
SELECT ray.job_logs(NULL);
SELECT ray.job_logs(999999);

-- stopping: a queued job stops at once
SELECT ray.stop_job(:job);
SELECT state, stopped_by, finished_at IS NOT NULL AS finished, message FROM ray.jobs WHERE job_id = :job;
SELECT ray.stop_job(:job);
SELECT ray.stop_job(999999);
SELECT ray.stop_job(NULL);
SELECT ray.wait_job(:job, interval '1 hour');
SELECT from_state, to_state, attempt, actor, message FROM ray.job_events WHERE job_id = :job ORDER BY event_id;

-- a submitted job is stopped through Ray: the request is recorded
SELECT ray.submit_job('jobs', 'python long.py') AS inflight \gset
SELECT state FROM ray._job_transition(:inflight, 'SUBMITTING', 'test', 'regress');
SELECT ray.stop_job(:inflight);
SELECT ray.stop_job(:inflight);
SELECT state, stop_requested_at IS NOT NULL AS stop_requested, stopped_by FROM ray.jobs WHERE job_id = :inflight;

-- the state machine refuses what it does not allow
SELECT ray._job_transition(:job, 'RUNNING', 'test', 'regress');

-- a job row may name a group that is gone: history outlives groups, and a
-- restore loads jobs before groups (the functions that submit check it)
INSERT INTO ray.job (owner, resource_group, entrypoint, state, finished_at)
VALUES ('postgres', 'nope', 'x', 'FAILED', now()) RETURNING resource_group, state;
DELETE FROM ray.job WHERE resource_group = 'nope';
-- direct writes obey the same rules
INSERT INTO ray.job (owner, resource_group, entrypoint, max_attempts) VALUES ('postgres', 'jobs', 'x', 0);
SET session_replication_role = replica;
\set VERBOSITY terse
INSERT INTO ray.job (owner, resource_group, entrypoint) VALUES ('postgres', 'jobs', '');
INSERT INTO ray.job (owner, resource_group, entrypoint, state) VALUES ('postgres', 'jobs', 'x', 'SUCCEEDED');
INSERT INTO ray.job (owner, resource_group, entrypoint, attempts) VALUES ('postgres', 'jobs', 'x', 2);
\set VERBOSITY default
RESET session_replication_role;

-- dropping a group stops its queued jobs, with force
SELECT ray.submit_job('jobs', 'python queued.py') AS queued \gset
SELECT ray.drop_resource_group('jobs');
SELECT ray.drop_resource_group('jobs', force => true);
SELECT state, stopped_by, message FROM ray.jobs WHERE job_id = :queued;

-- working directories: a zip within the limit, and only one
SELECT ray.create_resource_group('wd');
SELECT ray.submit_job('wd', 'python main.py', working_dir => 'not a zip'::bytea);
SELECT ray.submit_job('wd', 'python main.py', working_dir => '\x504b0506000000000000000000000000000000000000'::bytea,
	runtime_env => '{"working_dir": "."}');
SET pg_ray.max_working_dir_bytes = 1024;
SELECT ray.submit_job('wd', 'python main.py', working_dir => ('\x504b0304'::bytea || decode(repeat('00', 2000), 'hex')));
RESET pg_ray.max_working_dir_bytes;
SELECT ray.submit_job('wd', 'python main.py', working_dir => '\x504b0506000000000000000000000000000000000000'::bytea) AS wd_job \gset
SELECT package FROM ray.job_package WHERE job_id = :wd_job;
SELECT ray.zip_directory(NULL);
SELECT ray.zip_directory('relative/path');
SELECT ray.zip_directory('/nonexistent/pg_ray');
SELECT ray.zip_directory('/etc/hostname');
SELECT ray.drop_resource_group('wd', force => true);

-- a job cannot start before the transaction that queued it commits: waiting for it there is an
-- error at once, not an hour of QUEUED; looking once is not
SELECT ray.create_resource_group('same-tx');
SELECT ray.wait_job(ray.submit_job('same-tx', 'true'), interval '1 hour');
BEGIN;
SELECT ray.submit_job('same-tx', 'true') AS same_tx_job \gset
\set VERBOSITY terse
SELECT ray.wait_job(:same_tx_job, interval '0');
\set VERBOSITY default
ROLLBACK;
-- nor for a committed job while this transaction holds what the worker needs to move it
SELECT ray.submit_job('same-tx', 'true') AS committed_job \gset
BEGIN;
SELECT ray.alter_resource_group('same-tx', options => '{"idle_timeout_seconds": 30}');
SELECT ray.wait_job(:committed_job, interval '1 hour');
ROLLBACK;
BEGIN;
SELECT name FROM ray.resource_group WHERE name = 'same-tx' FOR SHARE;
SELECT ray.wait_job(:committed_job, interval '1 hour');
ROLLBACK;
-- what submit_job locks (FOR KEY SHARE) does not hold the worker up: that wait may go on
BEGIN;
SELECT ray.submit_job('same-tx', 'true') IS NOT NULL AS queued;
\set VERBOSITY terse
SELECT ray.wait_job(:committed_job, interval '10 milliseconds');
\set VERBOSITY default
ROLLBACK;
BEGIN;
UPDATE ray.job SET message = message WHERE job_id = :committed_job;
SELECT ray.wait_job(:committed_job, interval '1 hour');
ROLLBACK;
BEGIN;
SELECT job_id FROM ray.job WHERE job_id = :committed_job FOR SHARE;
SELECT ray.wait_job(:committed_job, interval '1 hour');
ROLLBACK;
BEGIN;
SELECT job_id FROM ray.job WHERE job_id = :committed_job FOR KEY SHARE;
\set VERBOSITY terse
SELECT ray.wait_job(:committed_job, interval '10 milliseconds');
\set VERBOSITY default
ROLLBACK;
BEGIN;
LOCK TABLE ray.job_event IN SHARE MODE;
SELECT ray.wait_job(:committed_job, interval '1 hour');
ROLLBACK;
-- a job queued in a subtransaction is this transaction's too
DO $$
BEGIN
	BEGIN
		PERFORM ray.wait_job(ray.submit_job('same-tx', 'true'), interval '1 hour');
	EXCEPTION WHEN division_by_zero THEN NULL;
	END;
END
$$;
SELECT ray.drop_resource_group('same-tx', force => true);
