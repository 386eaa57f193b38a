-- Resource groups: creating, altering and dropping, and every rule.
\set SHOW_CONTEXT never

SELECT ray.create_resource_group('analytics');
SELECT ray.create_resource_group('nightly', head_spec => 'm.xlarge',
	options => '{"ha": true, "redis_url": "redis://127.0.0.1:6379", "idle_timeout_seconds": 120}');
SELECT name, provider, head_spec, state, worker_groups, generation, dropping
FROM ray.resource_groups ORDER BY name;
SELECT resource_group, from_state, to_state, generation, actor, message
FROM ray.resource_group_event ORDER BY event_id;

-- names
SELECT ray.create_resource_group(NULL);
SELECT ray.create_resource_group('Analytics');
SELECT ray.create_resource_group('9lives');
SELECT ray.create_resource_group('has space');
SELECT ray.create_resource_group(repeat('a', 49));
SELECT ray.create_resource_group(repeat('a', 48)) = repeat('a', 48) AS longest_name_ok;
SELECT ray.create_resource_group('analytics');

-- provider and head spec
SELECT ray.create_resource_group('g1', provider => 'kubernetes');
SELECT ray.create_resource_group('g1', head_spec => 'huge');
SELECT ray.create_resource_group('g1', head_spec => 'gpu.small');
SELECT ray.create_resource_group('g1', head_spec => NULL);
SELECT ray.create_resource_group('g1', provider => 'external');

-- options
SELECT ray.create_resource_group('g1', options => '[1, 2]');
SELECT ray.create_resource_group('g1', options => '{"ha ": true}');
SELECT ray.create_resource_group('g1', options => '{"ha": "yes"}');
SELECT ray.create_resource_group('g1', options => '{"redis_url": "redis://localhost"}');
SELECT ray.create_resource_group('g1', options => '{"ha": true, "redis_url": "http://x"}');
SELECT ray.create_resource_group('g1', options => '{"idle_timeout_seconds": 5}');
SELECT ray.create_resource_group('g1', options => '{"idle_timeout_seconds": 12.5}');
SELECT ray.create_resource_group('g1', options => '{"object_store_memory_mb": 10}');
SELECT ray.create_resource_group('g1', options => NULL) AS null_options_mean_none;
SELECT options FROM ray.resource_group WHERE name = 'g1';

-- altering: the effects are reported before they happen
SELECT ray.alter_resource_group('analytics', head_spec => 'm.2xlarge');
SELECT ray.alter_resource_group('analytics', head_spec => 'm.2xlarge');
SELECT ray.alter_resource_group('analytics', options => '{"idle_timeout_seconds": 300}');
SELECT ray.alter_resource_group('nightly', options => '{"redis_url": null, "ha": null}');
SELECT name, head_spec, options, generation FROM ray.resource_group
WHERE name IN ('analytics', 'nightly') ORDER BY name;
-- events name the options that changed, never their values (they may be secrets)
SELECT resource_group, message FROM ray.resource_group_event
WHERE message LIKE 'options%' ORDER BY event_id;
SELECT ray.alter_resource_group('analytics', head_spec => 'gpu.small');
SELECT ray.alter_resource_group('analytics', options => '{"bogus": 1}');
SELECT ray.alter_resource_group('analytics', options => '"text"');
SELECT ray.alter_resource_group('missing', head_spec => 'small');

-- direct writes obey the same rules as the API
INSERT INTO ray.resource_group (name, head_spec, owner) VALUES ('Direct', 'small', 'postgres');
INSERT INTO ray.resource_group (name, head_spec, owner) VALUES ('direct', 'gpu.small', 'postgres');
UPDATE ray.resource_group SET options = '{"ha": 1}' WHERE name = 'analytics';
-- and without triggers (as during a restore), the constraints still hold
SET session_replication_role = replica;
\set VERBOSITY terse
INSERT INTO ray.resource_group (name, head_spec, owner) VALUES ('Direct', 'small', 'postgres');
INSERT INTO ray.resource_group (name, head_spec, owner, state, os_user) VALUES ('direct', 'small', 'postgres', 'RUNNING', 'pgray-g99');
\set VERBOSITY default
RESET session_replication_role;

-- dropping (in a transaction, so the worker cannot remove the group before we look)
SELECT ray.drop_resource_group('missing');
SELECT ray.drop_resource_group(NULL);
BEGIN;
\set ON_ERROR_ROLLBACK on
SELECT ray.drop_resource_group('g1');
SELECT name, state, dropping FROM ray.resource_groups WHERE name = 'g1';
SELECT ray.drop_resource_group('g1');
SELECT ray.add_worker_group('g1', 'w', 'CPU', 'small', 1, 1);
SELECT ray.create_resource_group('g1');
COMMIT;
\set ON_ERROR_ROLLBACK off
SELECT ray.drop_resource_group(repeat('a', 48));

-- a node spec in use keeps its resource type
UPDATE ray.node_spec SET resource_type = 'GPU', num_gpus = 1 WHERE name = 'm.xlarge';
UPDATE ray.node_spec SET description = 'edited' WHERE name = 'm.xlarge';

-- external clusters: what is checked before any request is made
SELECT ray.register_cluster('Ext', 'http://127.0.0.1:8265');
SELECT ray.register_cluster('ext', NULL);
SELECT ray.register_cluster('ext', 'not a url');
SELECT ray.register_cluster('ext', 'ftp://127.0.0.1:8265');
SELECT ray.register_cluster('ext', 'http://10.1.2.3:8265');
SELECT ray.register_cluster('ext', 'http://ray.example.com:8265');
SELECT ray.register_cluster('ext', 'http://127.0.0.1:8265/?token=x');
SELECT ray.register_cluster('ext', 'http://127.0.0.1:8265/#/../../api/secrets');
SELECT ray.register_cluster('ext', 'http://user:secret@127.0.0.1:8265');
SELECT ray.register_cluster('ext', 'http://127.0.0.1:8265', token => 'has space');
SELECT ray.register_cluster('ext', 'http://127.0.0.1:8265', options => '{"ha": true}');
SELECT ray.register_cluster('ext', 'http://127.0.0.1:8265', options => '{"ca_file": "ca.pem"}');
SELECT ray.register_cluster('ext', 'http://127.0.0.1:8265', options => '{"client_address": "127.0.0.1:10001"}');
SELECT ray.register_cluster('analytics', 'http://127.0.0.1:8265');
-- an unreachable dashboard is an error that says what was tried
\set VERBOSITY terse
SELECT ray.register_cluster('ext', 'http://127.0.0.1:1');
\set VERBOSITY default
SELECT count(*) AS nothing_registered FROM ray.resource_group WHERE provider = 'external';
SELECT ray.alter_cluster('analytics', token => 'x');
SELECT ray.alter_cluster('nope', token => 'x');
SELECT ray.add_worker_group('analytics', 'cpu', 'CPU', 'small', 1, 1);
