-- ray.batch_inference without a cluster: planning, every check on the
-- arguments, privileges, the one-run-per-target rule and stopping a queued
-- run.  Runs on a real cluster are in test/integration.
\set SHOW_CONTEXT never
SELECT ray.create_resource_group('bi');
SELECT ray.add_worker_group('bi', 'cpu', 'CPU', 'small', 1, 1);
SELECT ray.grant_usage('bi', 'regress_alice');
CREATE SCHEMA bi_regress;
GRANT USAGE, CREATE ON SCHEMA bi_regress TO regress_alice;
CREATE TABLE bi_regress.impressions (id bigint PRIMARY KEY, age integer, price double precision, site text);
INSERT INTO bi_regress.impressions SELECT g, g % 60, g / 10.0, 's' || g FROM generate_series(1, 100) g;
GRANT SELECT ON bi_regress.impressions TO regress_alice;
CREATE TABLE bi_regress.secret (id bigint PRIMARY KEY, age integer);
CREATE TABLE bi_regress.scores (id bigint PRIMARY KEY, prediction real, note text DEFAULT 'x');
GRANT INSERT ON bi_regress.scores TO regress_alice;
CREATE TABLE bi_regress.strict (id bigint, prediction float8, needed text NOT NULL);
GRANT INSERT ON bi_regress.strict TO regress_alice;

SET ROLE regress_alice;
SET search_path = bi_regress, public;
SELECT ray.register_model('ctr', 'sklearn', '\x01'::bytea);
SELECT ray.register_model('ctr', 'sklearn', '\x02'::bytea);
SELECT ray.register_model('chat', 'http', uri => 'http://127.0.0.1:9/v1');

-- the plan: a table source (names resolved with the caller's search_path),
-- its primary key as the key, a target to create
SELECT jsonb_pretty(ray.batch_inference_plan('bi', 'impressions', 'ctr', 'preds',
													 input_columns => ARRAY['age', 'price']));
-- a query, a version, upsert: the created target gets a primary key
SELECT p -> 'source' ->> 'query' AS query, p -> 'columns' AS columns, p -> 'model' AS model,
	   p -> 'target' ->> 'create_statement' AS create_statement
FROM ray.batch_inference_plan('bi', 'SELECT id, age FROM impressions WHERE age > 3', 'ctr:1', 'preds',
							  key => ARRAY['id'], mode => 'upsert') p;
-- an existing target's types win; an http model's output is text
SELECT p -> 'output' AS output, p -> 'target' AS target
FROM ray.batch_inference_plan('bi', 'impressions', 'ctr', 'scores', input_columns => ARRAY['age']) p;
SELECT p -> 'output' AS output, p -> 'inputs' AS inputs
FROM ray.batch_inference_plan('bi', 'impressions', 'chat', 'answers', input_columns => ARRAY['site']) p;

-- bad input: each an error, nothing queued
SELECT ray.batch_inference('bi', NULL, 'ctr', 'p');
SELECT ray.batch_inference('bi', 'impressions', NULL, 'p');
SELECT ray.batch_inference('bi', 'nosuch', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'SELECT 1 AS id; SELECT 2', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'WITH gone AS (DELETE FROM impressions RETURNING *) SELECT * FROM gone', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'SELECT * FROM impressions FOR UPDATE', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'SELECT * FROM (SELECT * FROM impressions FOR UPDATE) s', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'SELECT * FROM impressions WHERE id IN (SELECT id FROM impressions FOR SHARE)', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'SELECT id, id FROM impressions', 'ctr', 'p', key => ARRAY['id']);
SELECT ray.batch_inference('bi', 'secret', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'SELECT * FROM secret', 'ctr', 'p', key => ARRAY['id']);
SELECT ray.batch_inference('bi', 'impressions', 'nosuch', 'p');
SELECT ray.batch_inference('bi', 'impressions', 'ctr:9', 'p');
SELECT ray.batch_inference('bi', 'impressions', 'Bad Model', 'p');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['nope']);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', key => ARRAY['nope']);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', key => ARRAY[NULL]);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', key => ARRAY['id', 'id']);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age', NULL]);
SELECT ray.batch_inference('bi', 'SELECT age, price FROM impressions', 'ctr', 'p');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], output_column => 'id');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], mode => 'merge');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '[]');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"batch_sise": 1}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"worker_group": 5}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"worker_group": "nope"}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], priority => 2000);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"batch_size": 0}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"concurrency": [3, 2]}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"output": "logit"}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"output_type": "nosuchtype"}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"shard_key": "id"}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"max_attempts": 0}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"write_concurrency": 100}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"missing_inputs": "skip"}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"num_gpus": 1}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"num_cpus": 2}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], options => '{"concurrency": [2, 4]}');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'impressions', input_columns => ARRAY['age']);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'a.b.c', input_columns => ARRAY['age']);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'nosuchschema.p', input_columns => ARRAY['age']);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'public.p', input_columns => ARRAY['age']);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'p', input_columns => ARRAY['age'], create_target => false);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'scores', input_columns => ARRAY['age'], mode => 'overwrite');
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'strict', input_columns => ARRAY['age']);
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'scores', input_columns => ARRAY['age'], output_column => 'score');
CREATE TEMP TABLE t AS SELECT * FROM impressions;
SELECT ray.batch_inference('bi', 't', 'ctr', 'p', input_columns => ARRAY['age']);
SELECT count(*) AS jobs FROM ray.jobs;

-- queued: one run per target; the same call again gets the same job
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'preds', input_columns => ARRAY['age']) AS first \gset
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'preds', input_columns => ARRAY['age']) = :first AS same_job;
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'preds', input_columns => ARRAY['age', 'price']);
SELECT kind, state, entrypoint, target_table, max_attempts FROM ray.jobs WHERE job_id = :first;
RESET ROLE;
-- another role may not write there either while it runs
SELECT ray.grant_usage('bi', 'regress_bob');
GRANT USAGE, CREATE ON SCHEMA bi_regress TO regress_bob;
GRANT SELECT ON bi_regress.impressions TO regress_bob;
SET ROLE regress_bob;
SELECT ray.register_model('bobs', 'sklearn', '\x01'::bytea);
SELECT ray.batch_inference('bi', 'bi_regress.impressions', 'bobs', 'bi_regress.preds', input_columns => ARRAY['age']);
RESET ROLE;
-- the runner package goes with the job; nothing of a run exists before it starts
SELECT package ~ '^_ray_pkg_[0-9a-f]{40}\.zip$' AS named_by_content, length(content) > 1000 AS has_runner
FROM ray.job_package WHERE job_id = :first;
SELECT count(*) AS run_roles FROM pg_roles WHERE rolname LIKE 'pgray\_run\_%';
-- concurrency not given: as many replicas as the group holds, up to 2 (here 1)
SELECT plan -> 'options' ->> 'concurrency' AS concurrency FROM ray.batch_run WHERE job_id = :first;
-- stopped while queued: over, and another run may start
SET ROLE regress_alice;
SELECT ray.stop_job(:first);
SELECT state FROM ray.jobs WHERE job_id = :first;
SELECT ray.batch_inference('bi', 'impressions', 'ctr', 'preds', input_columns => ARRAY['age', 'price']) > :first AS new_job;
RESET ROLE;

-- the run functions answer only a run's own login role
SELECT ray._run_spec();
SELECT ray._run_progress(1, 1);

-- the worker's view: the secrets of runs are nobody's to read
SET ROLE regress_admin;
SELECT count(*) FROM ray.batch_run_secret;
RESET ROLE;

SELECT ray.drop_resource_group('bi', force => true);
DELETE FROM ray.job WHERE resource_group = 'bi';
DELETE FROM ray.model WHERE owner IN ('regress_alice', 'regress_bob');
DROP SCHEMA bi_regress CASCADE;
RESET search_path;
