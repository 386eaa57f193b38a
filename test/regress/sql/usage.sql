-- Who may do what: usage grants, job ownership and row-level security.
\set SHOW_CONTEXT never
-- job ids of this file do not depend on the files before it
SELECT setval('ray.job_id_seq', 1000, false) IS NOT NULL AS job_ids_reset;

SELECT ray.create_resource_group('shared');
SELECT ray.add_worker_group('shared', 'cpu', 'CPU', 'small', 1, 1);
SELECT ray.create_resource_group('private');
SELECT ray.add_worker_group('private', 'cpu', 'CPU', 'small', 1, 1);

-- without a grant, a ray_user cannot submit
SET ROLE regress_alice;
SELECT ray.submit_job('shared', 'python a.py');
-- and cannot manage resource groups
SELECT ray.create_resource_group('mine');
SELECT ray.grant_usage('shared', 'regress_alice');
-- nor read the tables behind the API, or change them
SELECT count(*) FROM ray.resource_group;
UPDATE ray.job SET state = 'SUCCEEDED';
INSERT INTO ray.job (owner, resource_group, entrypoint) VALUES ('regress_alice', 'shared', 'x');
RESET ROLE;

-- an admin grants usage, to a role directly or through a role it is in
SET ROLE regress_admin;
SELECT ray.grant_usage('shared', 'regress_alice');
SELECT ray.grant_usage('shared', 'regress_alice');
SELECT ray.grant_usage('private', 'regress_team');
SELECT ray.grant_usage('shared', 'regress_nobody');
SELECT ray.grant_usage('nope', 'regress_alice');
SELECT ray.grant_usage('shared', NULL);
SELECT resource_group, grantee, granted_by FROM ray.resource_group_grant ORDER BY 1, 2;
RESET ROLE;

SET ROLE regress_alice;
SELECT ray.submit_job('shared', 'python alice.py') AS alice_job \gset
SELECT ray.submit_job('private', 'python team.py') > 0 AS through_team;
SELECT owner, entrypoint FROM ray.jobs ORDER BY job_id;
RESET ROLE;

SET ROLE regress_bob;
SELECT ray.submit_job('shared', 'python bob.py');
RESET ROLE;
SELECT ray.grant_usage('shared', 'public');
SET ROLE regress_bob;
SELECT ray.submit_job('shared', 'python bob.py') AS bob_job \gset
-- bob sees his own job only, its events only, and cannot stop alice's
SELECT owner, entrypoint FROM ray.jobs ORDER BY job_id;
SELECT count(*) AS alice_rows_in_table FROM ray.job WHERE owner = 'regress_alice';
SELECT count(*) AS alice_events FROM ray.job_events WHERE owner = 'regress_alice';
SELECT ray.stop_job(:alice_job);
SELECT ray.wait_job(:alice_job, interval '1 second');
SELECT ray.job_logs(:alice_job);
SELECT state FROM ray.jobs WHERE job_id = :alice_job;
SELECT ray.register_cluster('mine', 'http://127.0.0.1:8265');
-- resource groups are visible, their options are not
SELECT name FROM ray.resource_groups WHERE name IN ('shared', 'private') ORDER BY name;
SELECT options FROM ray.resource_group LIMIT 1;
RESET ROLE;

SET ROLE regress_alice;
SELECT ray.stop_job(:bob_job);
SELECT ray.stop_job(:alice_job);
RESET ROLE;

-- an admin sees and stops every job
SET ROLE regress_admin;
SELECT owner, entrypoint FROM ray.jobs WHERE owner LIKE 'regress%' ORDER BY job_id;
SELECT ray.stop_job(:bob_job);
SELECT owner, state, stopped_by FROM ray.jobs WHERE job_id IN (:alice_job, :bob_job) ORDER BY job_id;
-- revoking
SELECT ray.revoke_usage('shared', 'public');
SELECT ray.revoke_usage('shared', 'public');
SELECT ray.revoke_usage('shared', 'regress_alice');
SELECT ray.revoke_usage('shared', NULL);
SELECT ray.revoke_usage('nope', 'regress_alice');
RESET ROLE;

SET ROLE regress_alice;
SELECT ray.submit_job('shared', 'python again.py');
RESET ROLE;

-- EXECUTE on no function is granted to PUBLIC (a run's functions: to ray_run)
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'ray' AND has_function_privilege('public', p.oid, 'EXECUTE')
ORDER BY 1;
