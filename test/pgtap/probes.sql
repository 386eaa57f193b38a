-- pgTAP: privilege probes.  An ordinary user tries, by every way we could
-- think of, to reach what is not theirs: a definer function made to run the
-- user's code through search_path, secrets through views, statistics and
-- error messages, SQL through names, columns, targets and options.  Every
-- probe must fail for the attacker.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_ray;
SELECT plan(62);

CREATE ROLE probe_eve IN ROLE ray_user;
CREATE ROLE probe_ann IN ROLE ray_user;
SELECT ray.create_resource_group('probe');
SELECT ray.add_worker_group('probe', 'cpu', 'CPU', 'small', 1, 1);
SELECT ray.grant_usage('probe', 'probe_eve');
SELECT ray.grant_usage('probe', 'probe_ann');
SELECT ray.create_resource_group('probe-closed');

-- ann's job, log and model: what eve is after
SET LOCAL ROLE probe_ann;
SELECT set_config('probe.ann_job', ray.submit_job('probe', 'python ann.py --secret=ann-only')::text, true);
SELECT ray.register_model('ann-model', 'sklearn', '\x0102'::bytea);
RESET ROLE;
INSERT INTO ray.job_log (job_id, attempt, log)
VALUES (current_setting('probe.ann_job')::bigint, 1, 'ann''s private output');

-- ------------------------------------------------------------------------
-- Catalog-wide: every definer pins its search_path, nothing is PUBLIC that
-- should not be, and no readable table holds a secret.
-- ------------------------------------------------------------------------
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'ray'::regnamespace AND p.prosecdef
	  AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
	  AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']$$,
	'every SQL and PL/pgSQL SECURITY DEFINER function of ray pins search_path to pg_catalog, pg_temp');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'ray'::regnamespace
	  AND has_function_privilege('public', p.oid, 'EXECUTE')
	  AND p.proname NOT IN ('_run_spec', '_run_model_data', '_run_progress')$$,
	'no function of ray is executable by PUBLIC but the three a run''s login role calls');
SELECT is_empty($$
	SELECT c.relname || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	WHERE c.relnamespace = 'ray'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	  AND a.attname ~ '(token|password|secret)'
	  AND (has_column_privilege('ray_user', c.oid, a.attnum, 'SELECT')
		   OR has_column_privilege('ray_admin', c.oid, a.attnum, 'SELECT'))$$,
	'no column named for a token, password or secret is readable by ray_user or ray_admin');
SELECT is_empty($$
	SELECT c.relname FROM pg_class c
	WHERE c.relnamespace = 'ray'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
	  AND c.relname IN ('job', 'job_event', 'job_log', 'model')$$,
	'the per-user tables have row-level security');

-- statistics: pg_stats holds sample values, which must not leak what RLS
-- or column privileges hide
ANALYZE ray.job;
ANALYZE ray.job_log;
ANALYZE ray.resource_group_secret;
ANALYZE ray.batch_run_secret;
SET LOCAL ROLE probe_eve;
SELECT is_empty($$SELECT tablename, attname FROM pg_stats WHERE schemaname = 'ray'
				  AND tablename IN ('job', 'job_log', 'resource_group_secret', 'batch_run_secret')$$,
				'eve reads no statistics (sample values) of jobs, logs, tokens or run passwords');
SELECT is_empty($$SELECT 1 FROM pg_stats WHERE most_common_vals::text LIKE '%ann-only%'
				  OR histogram_bounds::text LIKE '%ann-only%'$$,
				'ann''s entrypoint is in no statistics eve can read');
RESET ROLE;

-- ------------------------------------------------------------------------
-- Another user's job, log and model: they do not exist, to eve.
-- ------------------------------------------------------------------------
SET LOCAL ROLE probe_eve;
SELECT is_empty($$SELECT * FROM ray.jobs WHERE owner = 'probe_ann'$$, 'eve does not see ann''s job');
SELECT is_empty($$SELECT * FROM ray.job_events WHERE owner = 'probe_ann'$$, 'nor its events');
SELECT is_empty($$SELECT * FROM ray.job_log$$, 'nor its saved log');
SELECT is_empty($$SELECT * FROM ray.models WHERE name = 'ann-model'$$, 'nor ann''s model');
SELECT throws_ok(format('SELECT ray.job_logs(%s)', current_setting('probe.ann_job')), '42704',
				 format('job %s does not exist', current_setting('probe.ann_job')),
				 'eve cannot read ann''s log through job_logs');
SELECT throws_ok(format('SELECT ray.stop_job(%s)', current_setting('probe.ann_job')), '42704', NULL,
				 'eve cannot stop ann''s job');
SELECT throws_ok(format('SELECT ray.wait_job(%s, ''0'')', current_setting('probe.ann_job')), '42704', NULL,
				 'eve cannot wait on ann''s job (and learn its state)');
SELECT throws_ok($$SELECT ray.drop_model('ann-model')$$, '42704', NULL, 'eve cannot drop ann''s model');
SELECT throws_ok($$SELECT ray.submit_job('probe-closed', 'python x.py')$$, '42501', NULL,
				 'eve cannot submit to a group she was not granted');
SELECT throws_ok($$SELECT ray.grant_usage('probe-closed', 'probe_eve')$$, '42501', NULL,
				 'nor grant it to herself');
SELECT is_empty($$SELECT data FROM ray.model WHERE name = 'ann-model'$$,
				'eve cannot read ann''s model bytes from the table');
SELECT throws_ok($$SELECT ray._run_spec()$$, '42501', NULL,
				 'eve, who is no run''s login role, gets no run''s spec');
SELECT throws_ok($$SELECT ray._run_model_data()$$, '42501', NULL, 'nor a run''s model');
SELECT throws_ok($$SELECT ray._run_progress(1, 1)$$, '42501', NULL, 'nor reports progress for a run');
RESET ROLE;

-- ------------------------------------------------------------------------
-- search_path: eve puts her own functions and operators ahead of
-- pg_catalog, each of which raises if anyone runs it.  The definer
-- functions she may call must never run them.
-- ------------------------------------------------------------------------
CREATE SCHEMA probe_trap AUTHORIZATION probe_eve;
SET LOCAL ROLE probe_eve;
CREATE FUNCTION probe_trap.trap() RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'hijacked: eve''s code ran'; END$$;
CREATE FUNCTION probe_trap.text_eq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT probe_trap.trap()';
CREATE OPERATOR probe_trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = probe_trap.text_eq);
CREATE FUNCTION probe_trap.name_eq(name, name) RETURNS boolean LANGUAGE sql AS 'SELECT probe_trap.trap()';
CREATE OPERATOR probe_trap.= (LEFTARG = name, RIGHTARG = name, FUNCTION = probe_trap.name_eq);
CREATE FUNCTION probe_trap.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT probe_trap.trap()::int::text::timestamptz';
CREATE FUNCTION probe_trap.length(bytea) RETURNS integer LANGUAGE sql AS 'SELECT probe_trap.trap()::int';
CREATE FUNCTION probe_trap.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql AS 'SELECT probe_trap.trap()::text';
CREATE FUNCTION probe_trap.pg_has_role(oid, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT probe_trap.trap()';
CREATE FUNCTION probe_trap.format(text, text) RETURNS text LANGUAGE sql AS 'SELECT probe_trap.trap()::text';
CREATE FUNCTION probe_trap.lower(text) RETURNS text LANGUAGE sql AS 'SELECT probe_trap.trap()::text';
RESET ROLE;

/*
 * Runs a statement with eve's trap schema ahead of pg_catalog and says how
 * it ended: 'ok' or 'SQLSTATE: message'.  Only the statement runs under the
 * trap (pgTAP itself would fall into it); the statements avoid operators of
 * their own, so what could fire the trap is the code of pg_ray they call.
 */
CREATE FUNCTION pg_temp.under_trap(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	saved text := pg_catalog.current_setting('search_path');
	outcome text := 'ok';
BEGIN
	PERFORM pg_catalog.set_config('search_path', 'probe_trap, pg_catalog', true);
	BEGIN
		EXECUTE statement;
	EXCEPTION WHEN OTHERS THEN
		outcome := SQLSTATE || ': ' || SQLERRM;
	END;
	PERFORM pg_catalog.set_config('search_path', saved, true);
	RETURN outcome;
END
$$;
SET LOCAL ROLE probe_eve;
SELECT alike(pg_temp.under_trap($$SELECT 'a'::text = 'a'::text$$), 'P0001: hijacked%',
			'the trap works: in eve''s own queries her operator wins');
SELECT is(pg_temp.under_trap($$SELECT pg_catalog.set_config('probe.trapped_job',
		  ray.submit_job('probe', 'python trapped.py', runtime_env => '{"env_vars": {"A": "1"}}',
						 working_dir => '\x504b0506000000000000000000000000000000000000'::bytea)::text, true)$$),
		  'ok', 'submit_job runs none of eve''s code');
SELECT is(pg_temp.under_trap(format('SELECT ray.job_logs(%s)', current_setting('probe.trapped_job'))),
		  'ok', 'job_logs runs none of it');
SELECT is(pg_temp.under_trap(format('SELECT ray.wait_job(%s, ''0'')', current_setting('probe.trapped_job'))),
		  'ok', 'wait_job runs none of it');
SELECT is(pg_temp.under_trap(format('SELECT ray.stop_job(%s)', current_setting('probe.trapped_job'))),
		  'ok', 'stop_job runs none of it');
SELECT is(pg_temp.under_trap($$SELECT ray.register_model('trapped', 'sklearn', '\x01'::bytea, '{"a": 1}')$$),
		  'ok', 'register_model (bytes) runs none of it');
SELECT is(pg_temp.under_trap($$SELECT ray.register_model('trapped', 'onnx', uri => '/models/x.onnx')$$),
		  'ok', 'register_model (uri) runs none of it');
SELECT is(pg_temp.under_trap($$SELECT ray.drop_model('trapped', 1)$$), 'ok', 'drop_model runs none of it');
SELECT alike(pg_temp.under_trap($$SELECT ray.cluster_status('probe')$$), '55000: %',
			'cluster_status answers as it would, running none of it');
SELECT alike(pg_temp.under_trap($$SELECT ray.submit_job('probe-closed', 'x')$$), '42501: %',
			'a refusal is a refusal, not eve''s exception');
RESET ROLE;

-- ------------------------------------------------------------------------
-- SQL through names: every name is checked or quoted, never spliced.
-- ------------------------------------------------------------------------
CREATE SCHEMA probe_data;
CREATE TABLE probe_data.rows (id bigint PRIMARY KEY, age integer);
CREATE TABLE probe_data.victim (id integer);
GRANT USAGE, CREATE ON SCHEMA probe_data TO probe_eve;
GRANT SELECT ON probe_data.rows TO probe_eve;
SET LOCAL ROLE probe_eve;
SELECT ray.register_model('m', 'sklearn', '\x01'::bytea);
SELECT throws_ok($$SELECT ray.create_resource_group('x; DROP TABLE probe_data.victim; --')$$, '42501', NULL,
				 'a group name with SQL in it is refused (and eve may not create groups)');
SELECT throws_ok($$SELECT ray.batch_inference_plan('probe', 'probe_data.rows', 'm',
				   'probe_data.t; DROP TABLE probe_data.victim')$$, NULL, NULL,
				 'a target with SQL in it is refused');
SELECT throws_ok($$SELECT ray.batch_inference_plan('probe', 'probe_data.rows', 'm', 'probe_data.t',
				   input_columns => ARRAY['age"; DROP TABLE probe_data.victim; --'])$$, NULL, NULL,
				 'an input column with SQL in it is refused');
SELECT throws_ok($$SELECT ray.batch_inference_plan('probe', 'probe_data.rows', 'm', 'probe_data.t',
				   key => ARRAY['id) ; DROP TABLE probe_data.victim; --'])$$, NULL, NULL,
				 'a key with SQL in it is refused');
SELECT throws_ok($$SELECT ray.batch_inference_plan('probe',
				   'WITH gone AS (DELETE FROM probe_data.victim RETURNING id) SELECT id, 1 AS age FROM gone',
				   'm', 'probe_data.t', key => ARRAY['id'])$$, NULL, NULL,
				 'a source query that writes is refused');
SELECT throws_ok($$SELECT ray.batch_inference_plan('probe', 'SELECT id, age FROM probe_data.rows', 'm',
				   'probe_data.t', key => ARRAY['id'],
				   options => '{"shard_key": "id; DROP TABLE probe_data.victim"}')$$, '22023',
				 'invalid shard_key "id; DROP TABLE probe_data.victim"',
				 'a shard key with SQL in it is refused');
SELECT throws_ok($$SELECT ray.batch_inference_plan('probe', 'SELECT id, age FROM probe_data.rows', 'm',
				   'probe_data.t', key => ARRAY['id'],
				   options => '{"shard_key": "id)::text), 0) = 0 OR (true"}')$$, '22023', NULL,
				 'a shard key that breaks out of its parentheses is refused');
SELECT lives_ok($$SELECT ray.batch_inference_plan('probe', 'SELECT id, age FROM probe_data.rows', 'm',
				  'probe_data.t', key => ARRAY['id'], options => '{"shard_key": "id % 7"}')$$,
				'an expression over the columns is a shard key');
SELECT is(ray.batch_inference_plan('probe', 'probe_data.rows', 'm', 'probe_data."odd""name; x"',
								   output_column => 'score"; --') -> 'target' ->> 'create_statement',
		  'CREATE TABLE probe_data."odd""name; x" (id bigint NOT NULL, "score""; --" double precision)',
		  'odd but legal names are quoted, never spliced');

-- ------------------------------------------------------------------------
-- Forged plans: a plan is data the caller can write, and the worker (the
-- bootstrap superuser) builds tables from it.  Only its checked parts count.
-- ------------------------------------------------------------------------
SELECT set_config('probe.plan', ray.batch_inference_plan('probe', 'probe_data.rows', 'm', 'probe_data.t')::text, true);
SELECT throws_ok(format('SELECT ray._submit_batch_inference(%L, %L)', 'probe',
						jsonb_set(current_setting('probe.plan')::jsonb, '{columns,0,type}',
								  to_jsonb('float8); ALTER ROLE probe_eve SUPERUSER; SELECT (1'::text))),
				 '42601', NULL, 'a column type with SQL in it is a syntax error, not SQL');
SELECT throws_ok(format('SELECT ray._submit_batch_inference(%L, %L)', 'probe',
						jsonb_set(current_setting('probe.plan')::jsonb, '{output,type}',
								  to_jsonb('text, x int); DROP TABLE probe_data.victim; --'::text))),
				 '42601', NULL, 'so is an output type with SQL in it');
SELECT throws_ok(format('SELECT ray._submit_batch_inference(%L, %L)', 'probe',
						jsonb_set(current_setting('probe.plan')::jsonb, '{target,name}',
								  to_jsonb('probe_data.t; DROP TABLE probe_data.victim'::text))),
				 '22023', NULL, 'a target name with SQL in it is refused');
SELECT throws_ok(format('SELECT ray._submit_batch_inference(%L, %L)', 'probe',
						jsonb_set(current_setting('probe.plan')::jsonb, '{key}', '["id", null]')),
				 '22023', 'invalid batch inference plan: key must be a list of column names',
				 'a null key column is refused');
SELECT throws_ok(format('SELECT ray._submit_batch_inference(%L, %L)', 'probe',
						jsonb_set(current_setting('probe.plan')::jsonb, '{key}', '["id", "id"]')),
				 '22023', 'invalid batch inference plan: key names a column twice',
				 'a key column named twice is refused');
SELECT throws_ok(format('SELECT ray._submit_batch_inference(%L, %L)', 'probe',
						jsonb_set(current_setting('probe.plan')::jsonb, '{columns,0,type}', to_jsonb('void'::text))),
				 '22023', 'type void cannot be the type of a column', 'a pseudo-type is refused');
SELECT throws_ok(format('SELECT ray._submit_batch_inference(%L, %L)', 'probe',
						jsonb_set(current_setting('probe.plan')::jsonb, '{options,num_gpus}', '-1')),
				 '22023', 'num_gpus must be a number of GPUs per model replica, 0 or more',
				 'options the planner would refuse are refused in a forged plan too');
SELECT set_config('probe.forged_job', ray._submit_batch_inference('probe',
	jsonb_set(jsonb_set(current_setting('probe.plan')::jsonb, '{target,create_statement}',
						to_jsonb('DROP TABLE probe_data.victim'::text)), '{unknown}', '"kept?"'))::text, true);
RESET ROLE;
SELECT is((SELECT plan -> 'target' ->> 'create_statement' FROM ray.batch_run
		   WHERE job_id = current_setting('probe.forged_job')::bigint),
		  'CREATE TABLE probe_data.t (id bigint NOT NULL, prediction double precision)',
		  'a forged CREATE TABLE is stored as the one its checked parts make');
SELECT is(ray._canonical_plan(current_setting('probe.plan')::jsonb), current_setting('probe.plan')::jsonb,
		  'a plan the planner made is its own canonical form');
SELECT is(ray._canonical_plan(jsonb_set(current_setting('probe.plan')::jsonb, '{target,create_statement}', 'null'))
		  -> 'target' ->> 'create_statement',
		  'CREATE TABLE probe_data.t (id bigint NOT NULL, prediction double precision)',
		  'a null CREATE TABLE in a stored plan is rebuilt, not run');
-- a plan written into the catalog by other means (an older version, a hand) fails only its job
UPDATE ray.batch_run SET plan = jsonb_set(plan, '{columns,0,type}',
										  to_jsonb('float8); ALTER ROLE probe_eve SUPERUSER; SELECT (1'::text))
WHERE job_id = current_setting('probe.forged_job')::bigint;
SELECT throws_ok(format('SELECT ray._begin_batch_attempt(%s)', current_setting('probe.forged_job')), '42601', NULL,
				 'an attempt of a forged stored plan does not begin');
UPDATE ray.job SET state = 'PUBLISHING', attempts = 1 WHERE job_id = current_setting('probe.forged_job')::bigint;
SELECT is((SELECT owner_oid FROM ray._publish_plan(current_setting('probe.forged_job')::bigint, 1)), NULL,
		  'nor is it published');
SELECT alike((SELECT state || ': ' || message FROM ray.job WHERE job_id = current_setting('probe.forged_job')::bigint),
			 'FAILED: %syntax error%nothing was published', 'its job fails instead');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'probe_eve'), false, 'and eve is no superuser');
SELECT has_table('probe_data', 'victim', 'and the victim table is still there');

-- ------------------------------------------------------------------------
-- Secrets in error messages: a failing registration does not repeat its
-- token.
-- ------------------------------------------------------------------------
CREATE TEMP TABLE probe_errors (message text, detail text, hint text);
DO $$
DECLARE
	m text;
	d text;
	h text;
BEGIN
	PERFORM ray.register_cluster('probe-ext', 'http://127.0.0.1:9', 'probe-token-7f3a9c');
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	INSERT INTO probe_errors VALUES (m, d, h);
END
$$;
SELECT is((SELECT count(*)::integer FROM probe_errors), 1, 'registering an unreachable cluster fails');
SELECT is_empty($$SELECT * FROM probe_errors WHERE concat(message, detail, hint) LIKE '%probe-token-7f3a9c%'$$,
				'and its error says nothing of the token');

-- a range type of the user's: its subtype_diff would run as the owner of the
-- run's staging table, the worker's superuser, when the table is analyzed
SET LOCAL ROLE probe_eve;
CREATE FUNCTION probe_data.eve_diff(float8, float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS 'SELECT $1 - $2';
CREATE TYPE probe_data.eve_range AS RANGE (subtype = float8, subtype_diff = probe_data.eve_diff);
CREATE TABLE probe_data.ranged (k probe_data.eve_range PRIMARY KEY, age integer);
SELECT throws_ok($$SELECT ray.batch_inference('probe', 'probe_data.ranged', 'm', 'probe_data.ranged_out',
												key => ARRAY['k'])$$, '22023',
				 'type probe_data.eve_range cannot be the type of a column of a batch inference run',
				 'a range type of the user''s is no column of a run''s staging table');
SELECT throws_ok($$SELECT ray.batch_inference('probe', 'SELECT ARRAY[k] AS k, age FROM probe_data.ranged', 'm',
												'probe_data.ranged_out', key => ARRAY['k'])$$, '22023', NULL,
				 'nor an array of it');
-- a type of the user's schema is written with its schema, so that the plan
-- means the same under the worker's search_path
CREATE TYPE probe_data.mood AS ENUM ('calm', 'keen');
CREATE TABLE probe_data.moods (id bigint PRIMARY KEY, mood probe_data.mood, age integer);
SET LOCAL search_path = probe_data, public;
SELECT set_config('probe.mood_plan', ray.batch_inference_plan('probe', 'SELECT mood, age FROM moods', 'm', 'mood_out',
															  key => ARRAY['mood'])::text, true);
RESET search_path;
RESET ROLE;
SELECT is(current_setting('probe.mood_plan')::jsonb -> 'columns' -> 0 ->> 'type', 'probe_data.mood',
		  'a type outside pg_catalog is written with its schema');
SELECT is(ray._canonical_plan(current_setting('probe.mood_plan')::jsonb), current_setting('probe.mood_plan')::jsonb,
		  'and such a plan is its own canonical form');

-- a run's password is in no SQL text: the CREATE ROLE that a failing attempt
-- shows in its error (and so in the log) carries the SCRAM verifier
SET LOCAL ROLE probe_eve;
SELECT set_config('probe.run_job', ray._submit_batch_inference('probe', current_setting('probe.plan')::jsonb)::text,
				  true);
RESET ROLE;
CREATE TEMP TABLE probe_run_errors (context text);
DO $$
DECLARE
	c text;
BEGIN
	-- the role name the attempt would take, taken already: its CREATE ROLE fails
	EXECUTE format('CREATE ROLE %I', format('pgray_run_%s_%s_0',
		(SELECT oid FROM pg_database WHERE datname = current_database()), current_setting('probe.run_job')));
	PERFORM ray._begin_batch_attempt(current_setting('probe.run_job')::bigint);
EXCEPTION WHEN duplicate_object THEN
	GET STACKED DIAGNOSTICS c = PG_EXCEPTION_CONTEXT;
	INSERT INTO probe_run_errors VALUES (c);
END
$$;
SELECT alike((SELECT context FROM probe_run_errors), '%PASSWORD ''SCRAM-SHA-256$%',
			 'the CREATE ROLE of a run carries the password''s SCRAM verifier');
SELECT is_empty($$SELECT FROM probe_run_errors WHERE context ~ 'PASSWORD ''[0-9a-f]{64}'''$$,
				'and not the password');

SELECT * FROM finish();
ROLLBACK;
