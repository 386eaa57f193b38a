-- pgTAP: a non-admin sees, stops and changes only what is theirs.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_ray;
SELECT plan(126);

CREATE ROLE tap_admin IN ROLE ray_admin;
CREATE ROLE tap_ann IN ROLE ray_user;
CREATE ROLE tap_ben IN ROLE ray_user;
CREATE ROLE tap_outsider;

SELECT ray.create_resource_group('tap');
SELECT ray.add_worker_group('tap', 'cpu', 'CPU', 'small', 1, 1);
SELECT ray.grant_usage('tap', 'tap_ann');
SELECT ray.grant_usage('tap', 'tap_ben');

SET LOCAL ROLE tap_ann;
SELECT set_config('tap.ann_job', ray.submit_job('tap', 'python ann.py')::text, true);
RESET ROLE;
SET LOCAL ROLE tap_ben;
SELECT set_config('tap.ben_job', ray.submit_job('tap', 'python ben.py')::text, true);
RESET ROLE;
INSERT INTO ray.job_log (job_id, attempt, log)
VALUES (current_setting('tap.ann_job')::bigint, 1, 'ann''s secret output');

SET LOCAL ROLE tap_ann;
SELECT results_eq($$SELECT entrypoint FROM ray.jobs WHERE resource_group = 'tap'$$,
				  ARRAY['python ann.py'], 'ann sees her job and only hers');
SELECT is((SELECT count(*)::integer FROM ray.job_log), 1, 'ann reads her saved log');
SELECT is(owner, 'tap_ann'::name, 'the job belongs to the role that submitted it')
FROM ray.jobs WHERE job_id = current_setting('tap.ann_job')::bigint;
RESET ROLE;

SET LOCAL ROLE tap_ben;
SELECT results_eq($$SELECT entrypoint FROM ray.jobs WHERE resource_group = 'tap'$$,
				  ARRAY['python ben.py'], 'ben sees his job and only his');
SELECT is_empty($$SELECT * FROM ray.job WHERE owner = 'tap_ann'$$, 'ben cannot read ann''s job from the table');
SELECT is_empty($$SELECT * FROM ray.job_event WHERE job_id = current_setting('tap.ann_job')::bigint$$,
				'ben cannot read ann''s job events');
SELECT is_empty($$SELECT * FROM ray.job_log$$, 'ben cannot read ann''s log');
SELECT throws_ok(format('SELECT ray.stop_job(%s)', current_setting('tap.ann_job')), '42704', NULL,
				 'ben cannot stop ann''s job: to him it does not exist');
SELECT throws_ok($$UPDATE ray.job SET state = 'STOPPED'$$, '42501', NULL, 'ben cannot update jobs directly');
SELECT throws_ok($$DELETE FROM ray.job_event$$, '42501', NULL, 'ben cannot delete history');
SELECT throws_ok($$INSERT INTO ray.job (owner, resource_group, entrypoint) VALUES ('tap_ann', 'tap', 'x')$$,
				 '42501', NULL, 'ben cannot insert a job as someone else');
SELECT throws_ok($$SELECT ray.alter_worker_group('tap', 'cpu', max_workers => 1)$$, '42501', NULL,
				 'ben cannot alter a worker group');
SELECT throws_ok($$SELECT ray.drop_resource_group('tap', force => true)$$, '42501', NULL,
				 'ben cannot drop a resource group');
SELECT throws_ok($$SELECT ray.grant_usage('tap', 'tap_outsider')$$, '42501', NULL,
				 'ben cannot grant usage');
SELECT throws_ok($$SELECT options FROM ray.resource_group$$, '42501', NULL,
				 'ben cannot read resource group options, which may hold secrets');
SELECT throws_ok($$INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, cpu_units)
				   VALUES ('x', 'CPU', 1, 1024, 1)$$, '42501', NULL, 'ben cannot add node specs');
SELECT throws_ok($$SELECT token FROM ray.resource_group_secret$$, '42501', NULL,
				 'ben cannot read dashboard tokens');
SELECT throws_ok($$SELECT ray._group_connection('tap')$$, '42501', NULL,
				 'ben cannot call the worker''s functions');
SELECT throws_ok($$SELECT * FROM ray._local_node_command(1, 0)$$, '42501', NULL,
				 'ben cannot build a node''s command line, which holds the token');
SELECT throws_ok($$SELECT * FROM ray._local_plan(0)$$, '42501', NULL,
				 'ben cannot run the local provider''s plan');
SELECT throws_ok($$SELECT ray._redis_password('tap')$$, '42501', NULL,
				 'ben cannot derive a Redis password');
SELECT throws_ok($$SELECT * FROM ray.node$$, '42501', NULL,
				 'ben cannot read the node table, whose configs are the worker''s');
SELECT lives_ok($$SELECT * FROM ray.nodes$$, 'ben reads ray.nodes');
SELECT throws_ok($$SELECT ray.cluster_status('tap')$$, '55000', 'resource group "tap" has no running head to ask',
				 'ben may ask a group he may use, which has no head yet');
RESET ROLE;

SELECT ray.create_resource_group('tap-closed');
INSERT INTO ray.node (resource_group, kind, config, port_base, run_dir, last_exit)
VALUES ('tap-closed', 'head', '{}', 64990, '/nonexistent', 'exit 1: another team''s error');
SET LOCAL ROLE tap_ben;
SELECT is_empty($$SELECT * FROM ray.nodes WHERE resource_group = 'tap-closed'$$,
				'ben does not see the nodes of a group he may not use, nor their errors');
RESET ROLE;
SET LOCAL ROLE tap_admin;
SELECT isnt_empty($$SELECT * FROM ray.nodes WHERE resource_group = 'tap-closed'$$, 'an admin sees every node');
RESET ROLE;
-- the history of a group: for those who may use it, with its reasons
CREATE TEMP TABLE tap_seen (seen text);
GRANT ALL ON tap_seen TO tap_ben;
CREATE FUNCTION pg_temp.tap_leak(message text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
AS $$ BEGIN INSERT INTO tap_seen VALUES (message); RETURN true; END $$;
-- a query's plan under EXPLAIN ANALYZE, with its literals taken out
CREATE FUNCTION pg_temp.tap_plan(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	plan text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
		plan := plan || regexp_replace(line, '''[^'']*''', '?', 'g') || E'\n';
	END LOOP;
	RETURN plan;
END $$;
SELECT ray._group_note('tap', 'scaling worker group cpu up from 1 to 2 workers: Ray has demand it cannot place');
SELECT ray._group_note('tap-closed', 'head node 1 exited: another team''s error');
SET LOCAL ROLE tap_ben;
SELECT isnt_empty($$SELECT * FROM ray.resource_group_events WHERE resource_group = 'tap' AND message LIKE 'scaling%'$$,
				  'ben sees why a group he may use scaled');
SELECT is_empty($$SELECT * FROM ray.resource_group_events WHERE resource_group = 'tap-closed'$$,
				'ben does not see the events of a group he may not use');
SELECT isnt_empty($$SELECT * FROM ray.resource_group_events WHERE pg_temp.tap_leak(message)$$,
				  'a query with a cheap function of his own in its conditions ...');
SELECT results_eq($$SELECT count(*) FILTER (WHERE seen LIKE '%another team%')::integer,
						   count(*) FILTER (WHERE seen LIKE 'scaling%')::integer FROM tap_seen$$,
				  $$VALUES (0, 1)$$,
				  '... hands that function the events he may see, never those of a group he may not use');
SELECT is(pg_temp.tap_plan($$SELECT 1 FROM ray.resource_group_events
							  WHERE resource_group = 'tap-closed' AND message >= 'head node 1 exited' COLLATE "C"$$),
		  pg_temp.tap_plan($$SELECT 1 FROM ray.resource_group_events
							  WHERE resource_group = 'tap-closed' AND message >= 'zzz' COLLATE "C"$$),
		  'EXPLAIN ANALYZE of a query on hidden events tells nothing of what they hold');
SELECT is(pg_temp.tap_plan($$SELECT 1 FROM ray.nodes WHERE resource_group = 'tap-closed' AND last_exit >= 'exit 1' COLLATE "C"$$),
		  pg_temp.tap_plan($$SELECT 1 FROM ray.nodes WHERE resource_group = 'tap-closed' AND last_exit >= 'zzz' COLLATE "C"$$),
		  'nor of hidden nodes');
SELECT throws_ok($$SELECT * FROM ray.resource_group_event$$, '42501', NULL,
				 'ben cannot read the event table itself');
SELECT throws_ok($$SELECT * FROM ray._granted_groups$$, '42501', NULL,
				 'ben cannot read the helper view of grants');
RESET ROLE;
SET LOCAL ROLE tap_admin;
SELECT isnt_empty($$SELECT * FROM ray.resource_group_events WHERE resource_group = 'tap-closed'$$,
				  'an admin sees the events of every group');
RESET ROLE;
-- a group created again under a dropped group's name: its grantees see its history, not the old one's
SELECT ray._group_note('tap-closed', 'the old group''s event');
-- as ray.create_resource_group of the new group writes it
INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
VALUES ('tap-closed', NULL, 'CREATING', 1, 'tap_admin', 'resource group created');
SELECT ray._group_note('tap-closed', 'the new group''s event');
SELECT ray.grant_usage('tap-closed', 'tap_ben');
SET LOCAL ROLE tap_ben;
SELECT results_eq($$SELECT message FROM ray.resource_group_events WHERE resource_group = 'tap-closed'
					ORDER BY event_id$$,
				  ARRAY['resource group created', 'the new group''s event'],
				  'a grantee of a group sees its events since it was created, not those of an earlier group of its name');
RESET ROLE;
SELECT ray.revoke_usage('tap-closed', 'tap_ben');
SET LOCAL ROLE tap_ben;
SELECT throws_ok($$SELECT ray.cluster_status('tap-closed')$$, '42501',
				 'permission denied for resource group "tap-closed"',
				 'ben may not ask about a group he may not use');
SELECT throws_ok($$SELECT ray.cluster_status(NULL)$$, '22004', NULL, 'a NULL group is refused');
SELECT throws_ok($$SELECT ray.cluster_status('nope')$$, '42704', 'resource group "nope" does not exist',
				 'an unknown group is refused');
RESET ROLE;
SELECT is((SELECT count(*)::integer FROM ray.resource_group_secret WHERE resource_group = 'tap-closed'), 1,
		  'a local group gets a token of its own');

SET LOCAL ROLE tap_outsider;
SELECT throws_ok($$SELECT ray.submit_job('tap', 'x')$$, '42501', NULL,
				 'a role that is not a ray_user cannot submit');
SELECT throws_ok($$SELECT * FROM ray.jobs$$, '42501', NULL,
				 'a role that is not a ray_user cannot read jobs');
RESET ROLE;

SET LOCAL ROLE tap_admin;
SELECT results_eq($$SELECT entrypoint FROM ray.jobs WHERE resource_group = 'tap' ORDER BY job_id$$,
				  ARRAY['python ann.py', 'python ben.py'], 'an admin sees every job');
SELECT ok(ray.stop_job(current_setting('tap.ben_job')::bigint), 'an admin stops anyone''s job');
SELECT is(stopped_by, 'tap_admin'::name, 'who stopped a job is recorded')
FROM ray.jobs WHERE job_id = current_setting('tap.ben_job')::bigint;
SELECT lives_ok($$INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, cpu_units)
				  VALUES ('tap.tiny', 'CPU', 1, 1024, 0.5)$$, 'an admin adds node specs');
SELECT lives_ok($$SELECT ray.alter_worker_group('tap', 'cpu', spec => 'tap.tiny')$$,
				'an admin alters worker groups');
SELECT throws_ok($$SELECT token FROM ray.resource_group_secret$$, '42501', NULL,
				 'not even an admin reads dashboard tokens back');
RESET ROLE;

-- Identity is the current user at the API boundary: a SECURITY DEFINER
-- function of ann's that ben calls acts as ann, never with ben's rights.
CREATE FUNCTION public.tap_ann_submits() RETURNS bigint LANGUAGE sql SECURITY DEFINER
AS $$ SELECT ray.submit_job('tap', 'python from_ann.py') $$;
CREATE FUNCTION public.tap_ann_stops(job bigint) RETURNS boolean LANGUAGE sql SECURITY DEFINER
AS $$ SELECT ray.stop_job(job) $$;
ALTER FUNCTION public.tap_ann_submits() OWNER TO tap_ann;
ALTER FUNCTION public.tap_ann_stops(bigint) OWNER TO tap_ann;
SET LOCAL ROLE tap_ben;
SELECT set_config('tap.fn_job', public.tap_ann_submits()::text, true);
SELECT throws_ok(format('SELECT public.tap_ann_stops(%s)', current_setting('tap.ben_job')), '42704', NULL,
				 'ann''s definer function that ben calls cannot stop ben''s job');
SELECT throws_ok($$SELECT ray._stop_job_impl(1)$$, '42501', NULL,
				 'the API''s implementations cannot be called but through the API');
RESET ROLE;
SELECT is(owner, 'tap_ann'::name, 'a job submitted in ann''s definer function that ben calls is ann''s')
FROM ray.job WHERE job_id = current_setting('tap.fn_job')::bigint;
SELECT throws_ok($$SELECT ray._calling_role()$$, '42501', NULL,
				 'ray._calling_role() answers inside an API call only');

-- Batch inference: a run's login role has its owner's privileges, for as
-- long as its attempt lasts, and its password is nobody's to read.
CREATE TABLE public.tap_source (id bigint PRIMARY KEY, x double precision);
INSERT INTO public.tap_source VALUES (1, 0.5), (2, 1.5);
CREATE TABLE public.tap_hidden (id bigint PRIMARY KEY, x double precision);
GRANT SELECT ON public.tap_source TO tap_ann;
GRANT CREATE ON SCHEMA public TO tap_ann;
SET LOCAL ROLE tap_ann;
SELECT ray.register_model('tapm', 'sklearn', '\x01'::bytea);
SELECT set_config('tap.bi_job', ray.batch_inference('tap', 'public.tap_source', 'tapm', 'public.tap_out')::text, true);
RESET ROLE;
-- A model is code: an admin (or anyone) runs only their own models, or those granted to them.
GRANT SELECT ON public.tap_source TO tap_admin, tap_ben;
GRANT CREATE ON SCHEMA public TO tap_admin, tap_ben;
SET LOCAL ROLE tap_admin;
SELECT throws_ok($$SELECT ray.batch_inference('tap', 'public.tap_source', 'tapm', 'public.tap_admin_out')$$,
				 '42501', 'permission denied for model "tapm"', 'an admin cannot run a model ann planted');
RESET ROLE;
SET LOCAL ROLE tap_ben;
SELECT throws_ok($$SELECT ray.grant_model('tapm', 'tap_ben')$$, '42704', NULL,
				 'nor can ben grant himself ann''s model, which he cannot see');
SELECT throws_ok($$SELECT ray.batch_inference('tap', 'public.tap_source', 'tapm', 'public.tap_ben_out')$$,
				 '42704', NULL, 'nor run it');
RESET ROLE;
SET LOCAL ROLE tap_ann;
SELECT lives_ok($$SELECT ray.grant_model('tapm', 'tap_admin')$$, 'ann grants her model to the admin');
RESET ROLE;
SET LOCAL ROLE tap_admin;
SELECT set_config('tap.admin_bi_job', ray.batch_inference('tap', 'public.tap_source', 'tapm', 'public.tap_admin_out')::text,
				  true);
RESET ROLE;
SET LOCAL ROLE tap_ann;
SELECT lives_ok($$SELECT ray.revoke_model('tapm', 'tap_admin')$$, 'and takes the grant back');
RESET ROLE;
UPDATE ray.job SET attempts = 1 WHERE job_id = current_setting('tap.admin_bi_job')::bigint;
SELECT throws_ok(format('SELECT ray._begin_batch_attempt(%s)', current_setting('tap.admin_bi_job')), '42501',
				 'permission denied for model "tapm"', 'a run queued before the revoke does not start');
UPDATE ray.job SET attempts = 1 WHERE job_id = current_setting('tap.bi_job')::bigint;
SELECT ray._job_transition(current_setting('tap.bi_job')::bigint, 'SUBMITTING', 'test', 'tap');
SELECT ray._begin_batch_attempt(current_setting('tap.bi_job')::bigint);
SELECT set_config('tap.run_role', (SELECT role_name FROM ray.batch_run_secret
								   WHERE job_id = current_setting('tap.bi_job')::bigint), true);
SELECT ok(NOT pg_has_role(current_setting('tap.run_role'), 'tap_ann', 'MEMBER'),
		  'a run''s role is no member of the job''s owner');
SELECT ok(pg_has_role(current_setting('tap.run_role'), 'ray_run', 'MEMBER'),
		  'and is a member of ray_run, for pg_hba.conf');
SELECT is(ray._run_connection_env(j) -> 'env_vars' ->> 'PGSSLMODE', current_setting('pg_ray.runner_sslmode'),
		  'the run connects with pg_ray.runner_sslmode')
FROM ray.job j WHERE j.job_id = current_setting('tap.bi_job')::bigint;
SELECT ok((SELECT rolcanlogin AND NOT rolsuper AND NOT rolcreaterole AND NOT rolcreatedb
				  AND NOT rolbypassrls AND NOT rolreplication
		   FROM pg_roles WHERE rolname = current_setting('tap.run_role')),
		  'it logs in, with no special attributes');
SELECT is((SELECT rolvaliduntil FROM pg_roles WHERE rolname = current_setting('tap.run_role')), NULL,
		  'for as long as its attempt lasts, however long that is');
SET LOCAL ROLE tap_ann;
SELECT throws_ok($$SELECT * FROM ray._run_read(NULL, NULL, NULL, NULL) AS t(a text, b text)$$, '42501', NULL,
				 'the owner cannot call the run''s read function');
SELECT throws_ok($$SELECT password FROM ray.batch_run_secret$$, '42501', NULL,
				 'the owner cannot read the run''s password');
SELECT throws_ok($$SELECT ray._run_spec()$$, '42501', NULL,
				 'nor ask for the run as if it were the run');
RESET ROLE;
SET LOCAL ROLE tap_admin;
SELECT throws_ok($$SELECT password FROM ray.batch_run_secret$$, '42501', NULL,
				 'nor can an admin');
RESET ROLE;
SELECT set_config('tap.me', session_user, true);
SELECT format('SET SESSION AUTHORIZATION %I', current_setting('tap.run_role')) AS become \gset
:become;
SELECT is((ray._run_spec() ->> 'job_id')::bigint, current_setting('tap.bi_job')::bigint,
		  'the run''s own login gets its spec');
SELECT throws_ok(format('SET ROLE %I', 'tap_ann'), '42501', NULL,
				 'its login cannot become its owner');
SELECT throws_ok($$SELECT * FROM public.tap_source$$, '42501', NULL, 'nor read its owner''s tables itself');
-- its reads through ray._run_read (which test_batch_inference.py attacks from a run's own session)
SELECT throws_ok($$SELECT * FROM ray._run_read(NULL, NULL, NULL, NULL) AS t(id text, x text)$$, '25006', NULL,
				 'it reads its source only in a read-only transaction: the query''s functions run as its owner');
SELECT throws_ok($$SELECT ray._run_count()$$, '25006', NULL, 'and counts it so');
SELECT throws_ok($$SELECT * FROM ray._run_read(5, 2, NULL, NULL) AS t(id text, x text)$$, '22023', NULL,
				 'an empty page range is refused');
SELECT throws_ok($$SELECT * FROM ray._run_read(-1, NULL, NULL, NULL) AS t(id text, x text)$$, '22023', NULL,
				 'as is a negative page');
SELECT throws_ok($$SELECT * FROM ray._run_read(NULL, NULL, 0, 2) AS t(id text, x text)$$, '22023', NULL,
				 'as are shards of a table');
SELECT throws_ok($$SELECT * FROM public.tap_hidden$$, '42501', NULL, 'and nothing more');
SELECT lives_ok(format('INSERT INTO %s VALUES (1, 0.9)', ray._run_spec() ->> 'staging_table'),
				'it writes into its staging table');
SELECT lives_ok($$SELECT ray._run_progress(2, 2)$$, 'and reports progress');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT rows_processed FROM ray.jobs WHERE job_id = current_setting('tap.bi_job')::bigint), 2::bigint,
		  'which ray.jobs shows');
SET LOCAL ROLE tap_ann;
SELECT ray.stop_job(current_setting('tap.bi_job')::bigint);
RESET ROLE;
SELECT ray._apply_job_info(current_setting('tap.bi_job')::bigint, 1, 'STOPPED', 'stopped', NULL, NULL, NULL, NULL, NULL);
SELECT is((SELECT count(*)::integer FROM pg_roles WHERE rolname = current_setting('tap.run_role')), 0,
		  'when the attempt ends its role is dropped');
SELECT is((SELECT count(*)::integer FROM pg_class WHERE relnamespace = 'ray_staging'::regnamespace), 0,
		  'with its staging table')
;
-- nor can an admin swap a model under a job: drop it, and register the name again
SET LOCAL ROLE tap_admin;
SELECT ray.drop_model('tapm');
SELECT ray.register_model('tapm', 'sklearn', '\x02'::bytea);
RESET ROLE;
UPDATE ray.job SET attempts = 2 WHERE job_id = current_setting('tap.bi_job')::bigint;
SELECT throws_ok(format('SELECT ray._begin_batch_attempt(%s)', current_setting('tap.bi_job')), '42704',
				 'model tapm:1 was dropped or replaced since the run was submitted',
				 'a model dropped and registered again is not the one a job was submitted with');
-- a role created again under a dropped role's name is another role: it neither sees, touches
-- nor runs what the dropped role had, and grants to the dropped role do not reach it
CREATE ROLE tap_gone IN ROLE ray_user;
SELECT ray.grant_usage('tap', 'tap_gone');
GRANT SELECT ON public.tap_source TO tap_gone;
GRANT CREATE ON SCHEMA public TO tap_gone;
SET LOCAL ROLE tap_ann;
SELECT ray.register_model('tapa', 'sklearn', '\x01'::bytea);
SELECT ray.grant_model('tapa', 'tap_gone');
SET LOCAL ROLE tap_gone;
SELECT ray.register_model('tapg', 'sklearn', '\x01'::bytea);
SELECT ray.grant_model('tapg', 'tap_ben');
SELECT set_config('tap.gone_job', ray.batch_inference('tap', 'public.tap_source', 'tapg', 'public.tap_gone_out')::text,
				  true);
RESET ROLE;
DROP OWNED BY tap_gone;
DROP ROLE tap_gone;
CREATE ROLE tap_gone IN ROLE ray_user;
GRANT SELECT ON public.tap_source TO tap_gone;
UPDATE ray.job SET attempts = 1 WHERE job_id = current_setting('tap.gone_job')::bigint;
SELECT throws_ok(format('SELECT ray._begin_batch_attempt(%s)', current_setting('tap.gone_job')), '42704',
				 format('role "tap_gone" that submitted job %s does not exist any more', current_setting('tap.gone_job')),
				 'a role created again under a dropped role''s name does not run that role''s runs');
SET LOCAL ROLE tap_gone;
SELECT is((SELECT count(*) FROM ray.jobs), 0::bigint, 'a role of a dropped role''s name sees none of its jobs');
SELECT is((SELECT count(*) FROM ray.models), 0::bigint, '... none of its models, nor those granted to it');
SELECT is((SELECT count(*) FROM ray.model_grant), 0::bigint, '... none of its grants');
SELECT throws_ok(format('SELECT ray.job_logs(%s)', current_setting('tap.gone_job')), '42704', NULL,
				 '... cannot read its logs');
SELECT throws_ok(format('SELECT ray.stop_job(%s)', current_setting('tap.gone_job')), '42704', NULL,
				 '... cannot stop its jobs');
SELECT throws_ok($$SELECT ray.register_model('tapg', 'sklearn', '\x02'::bytea)$$, '42501',
				 'model "tapg" belongs to another role', '... cannot add versions to its model');
SELECT throws_ok($$SELECT ray.drop_model('tapg')$$, '42704', NULL, '... cannot drop its model');
SELECT throws_ok($$SELECT ray.submit_job('tap', 'true')$$, '42501', NULL,
				 '... has none of the usage granted to it');
RESET ROLE;
SELECT ray.grant_usage('tap', 'tap_gone');
SELECT is((SELECT grantee_oid FROM ray.resource_group_grant WHERE resource_group = 'tap' AND grantee = 'tap_gone'),
		  'tap_gone'::regrole::oid, 'granting usage again to the name grants it to the new role');
SET LOCAL ROLE tap_gone;
SELECT ok(ray.submit_job('tap', 'true') > 0, '... who then submits');
RESET ROLE;
-- what the dropped role granted lapses with it: its model is nobody's now
SET LOCAL ROLE tap_ben;
SELECT is((SELECT count(*) FROM ray.models WHERE name = 'tapg'), 0::bigint, 'a dropped role''s grants lapse');
RESET ROLE;
-- a renamed role keeps what it had
ALTER ROLE tap_ben RENAME TO tap_ben_renamed;
SET LOCAL ROLE tap_ben_renamed;
SELECT is((SELECT array_agg(job_id) FROM ray.jobs), ARRAY[current_setting('tap.ben_job')::bigint],
		  'a renamed role still sees its jobs');
SELECT lives_ok(format('SELECT ray.job_logs(%s)', current_setting('tap.ben_job')), '... and reads their logs');
RESET ROLE;
ALTER ROLE tap_ben_renamed RENAME TO tap_ben;
-- rows a restore copies in are bound to the roles of their names in the new cluster
INSERT INTO ray.job (owner, resource_group, entrypoint, owner_oid) VALUES ('tap_ann', 'tap', 'restored', 12345);
SELECT is((SELECT owner_oid FROM ray.job WHERE entrypoint = 'restored'), 'tap_ann'::regrole::oid,
		  'a row copied in is bound to the role that has its name, whatever OID it came with');
INSERT INTO ray.job (owner, resource_group, entrypoint, owner_oid) VALUES ('tap_nobody_here', 'tap', 'true', 12345);
SELECT is((SELECT owner_oid FROM ray.job WHERE owner = 'tap_nobody_here'), NULL,
		  '... and to none if no role has it');
INSERT INTO ray.model_grant (model, grantee, granted_by, grantee_oid, granted_by_oid)
VALUES ('tapa', 'public', 'tap_ann', 1, 1);
SELECT is((SELECT array[grantee_oid, granted_by_oid] FROM ray.model_grant WHERE model = 'tapa' AND grantee = 'public'),
		  array[0, 'tap_ann'::regrole::oid], '... grants too, public as 0');
DELETE FROM ray.model_grant WHERE model = 'tapa' AND grantee = 'public';

-- grants follow a renamed role: revoked by its new name, and not taken by a new role of its old name
CREATE ROLE tap_carl IN ROLE ray_user;
SELECT ray.grant_usage('tap', 'tap_carl');
SET LOCAL ROLE tap_ann;
SELECT ray.grant_model('tapa', 'tap_carl');
RESET ROLE;
ALTER ROLE tap_carl RENAME TO tap_carl2;
CREATE ROLE tap_carl IN ROLE ray_user;
SELECT ray.grant_usage('tap', 'tap_carl');
SET LOCAL ROLE tap_ann;
SELECT ray.grant_model('tapa', 'tap_carl');
RESET ROLE;
SELECT is((SELECT array_agg(grantee::text ORDER BY grantee) FROM ray.resource_group_grant
		   WHERE resource_group = 'tap' AND grantee LIKE 'tap_carl%'), ARRAY['tap_carl', 'tap_carl2'],
		  'granting to a new role of a renamed role''s old name leaves the renamed role its grant, under its new name');
SET LOCAL ROLE tap_carl2;
SELECT is((SELECT count(*) FROM ray.models WHERE name = 'tapa'), 1::bigint, '... and its model grant');
RESET ROLE;
SELECT ray.revoke_usage('tap', 'tap_carl2');
SET LOCAL ROLE tap_ann;
SELECT ray.revoke_model('tapa', 'tap_carl2');
RESET ROLE;
SET LOCAL ROLE tap_carl2;
SELECT throws_ok($$SELECT ray.submit_job('tap', 'true')$$, '42501', NULL, 'a renamed role''s usage is revoked by its new name');
SELECT is((SELECT count(*) FROM ray.models WHERE name = 'tapa'), 0::bigint, '... and its model grant');
SET LOCAL ROLE tap_carl;
SELECT ok(ray.submit_job('tap', 'true') > 0, 'the new role keeps the usage granted to it');
RESET ROLE;
-- the worker keeps names those of their roles, and unbinds a dropped role's rows, so that a restore
-- binds each row to the right role
SET LOCAL ROLE tap_carl;
SELECT set_config('tap.carl_job', ray.submit_job('tap', 'true')::text, true);
RESET ROLE;
ALTER ROLE tap_carl RENAME TO tap_carl3;
SELECT ok(ray._sync_role_names(), 'the names of owners and grantees are brought up to date');
SELECT is((SELECT owner::text FROM ray.job WHERE job_id = current_setting('tap.carl_job')::bigint), 'tap_carl3',
		  'a renamed role''s job takes its new name');
SELECT is((SELECT count(*) FROM ray.resource_group_grant WHERE grantee = 'tap_carl3'), 1::bigint, '... its grants too');
DROP ROLE tap_carl3;
SELECT ray._sync_role_names();
SELECT is((SELECT owner_oid FROM ray.job WHERE job_id = current_setting('tap.carl_job')::bigint), NULL,
		  'a dropped role''s job is bound to no role');
SELECT is((SELECT grantee_oid FROM ray.resource_group_grant WHERE grantee = 'tap_carl3'), NULL, '... nor its grant');
CREATE ROLE tap_carl3;
INSERT INTO ray.job (owner, resource_group, entrypoint, owner_oid) VALUES ('tap_carl3', 'tap', 'restored unbound', NULL);
SELECT is((SELECT owner_oid FROM ray.job WHERE entrypoint = 'restored unbound'), NULL,
		  'a restored row bound to no role stays so, whatever role has its name');

-- ray_monitor sees what an admin sees, and changes nothing
CREATE ROLE tap_monitor IN ROLE ray_monitor;
SELECT ok(pg_has_role('ray_admin', 'ray_monitor', 'MEMBER'), 'ray_admin has ray_monitor');
SELECT set_config('tap.all_jobs', (SELECT count(*) FROM ray.job)::text, true);
SET LOCAL ROLE tap_monitor;
SELECT is((SELECT count(*) FROM ray.jobs), current_setting('tap.all_jobs')::bigint, 'a monitor sees every job');
SELECT ok(current_setting('tap.all_jobs')::bigint > 1, '... of several roles');
SELECT ok((SELECT count(*) FROM ray.resource_group_events WHERE resource_group = 'tap') > 0,
		  'and the history of groups it was not granted');
SELECT lives_ok($$SELECT * FROM ray.queue, ray.quotas, ray.nodes, ray.usage, ray.job_usage, ray.usage_by_role,
				  ray.worker_status()$$, 'it reads every view and the worker''s status');
SELECT throws_ok($$SELECT ray.submit_job('tap', 'true')$$, '42501', NULL, 'but submits nothing');
SELECT throws_ok($$SELECT ray.create_resource_group('tap-mon')$$, '42501', NULL, 'creates no group');
SELECT throws_ok($$SELECT ray.stop_job(1)$$, '42501', NULL, 'stops no job');
SELECT throws_ok($$DELETE FROM ray.job$$, '42501', NULL, 'and writes no table');
SELECT throws_ok($$SELECT * FROM ray.resource_group_secret$$, '42501', NULL, 'nor reads a token');
SELECT throws_ok($$SELECT runtime_env FROM ray.job$$, '42501', NULL, 'nor what users hand in: runtime_env');
SELECT throws_ok($$SELECT options FROM ray.resource_group$$, '42501', NULL, 'groups'' options');
SELECT throws_ok($$SELECT log FROM ray.job_log$$, '42501', NULL, 'logs');
SELECT throws_ok($$SELECT content FROM ray.job_package$$, '42501', NULL, 'working directories');
SELECT throws_ok($$SELECT data FROM ray.model$$, '42501', NULL, 'or models');
SELECT throws_ok($$CALL ray.purge_history()$$, '42501', NULL, 'nor purges the history');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
