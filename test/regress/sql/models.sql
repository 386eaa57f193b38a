-- The model registry: versions, kinds, locations, owners.
\set SHOW_CONTEXT never

SET ROLE regress_alice;
-- kept in the database, or named by where it lives; a known name gets a new version
SELECT ray.register_model('ctr', 'sklearn', '\x80049501'::bytea);
SELECT ray.register_model('ctr', 'sklearn', data => '\x80049502'::bytea, options => '{"output": "label"}');
SELECT ray.register_model('ctr-onnx', 'onnx', '/models/ctr.onnx');
SELECT ray.register_model('scorer', 'python', uri => 'scoring.model:ClickModel');
SELECT ray.register_model('distill', 'http', uri => 'http://127.0.0.1:8000/v1',
                          options => '{"model": "qwen", "concurrency": 4}');
SELECT ray.register_model('llm', 'vllm', uri => 'Qwen/Qwen2.5-0.5B-Instruct');
SELECT name, version, kind, uri, data_bytes, options, owner FROM ray.models ORDER BY name, version;

-- bad input
SELECT ray.register_model(NULL, 'sklearn', '\x01'::bytea);
SELECT ray.register_model('Bad Name', 'sklearn', '\x01'::bytea);
SELECT ray.register_model('m', NULL, '\x01'::bytea);
SELECT ray.register_model('m', 'pytorch', '\x01'::bytea);
SELECT ray.register_model('m', 'sklearn', data => NULL);
SELECT ray.register_model('m', 'sklearn', ''::bytea);
SELECT ray.register_model('m', 'python', '\x01'::bytea);
SELECT ray.register_model('m', 'http', '\x01'::bytea);
SELECT ray.register_model('m', 'python', uri => 'scoring/model.py');
-- python code kept in the database names its class; a working directory is absolute
SELECT ray.register_model('m', 'python', '\x01'::bytea, '{"class": "scoring.model:ClickModel"}');
SELECT ray.drop_model('m');
SELECT ray.register_model('m', 'python', uri => 'scoring.model:ClickModel', options => '{"working_dir": "models"}');
SELECT ray.register_model('m', 'http', uri => 'ftp://host/v1');
SELECT ray.register_model('m', 'http', uri => 'https://user:secret@host/v1');
SELECT ray.register_model('m', 'onnx', uri => '');
SELECT ray.register_model('m', 'sklearn', '\x01'::bytea, options => '[]');
SELECT ray.register_model('m', 'sklearn', '\x01'::bytea, options => NULL);
-- an untyped literal is text, so a uri: one that is hex bytes is refused
SELECT ray.register_model('m', 'sklearn', '\x0102');
SELECT count(*) FROM ray.models WHERE name = 'm';
RESET ROLE;

-- others see none of alice's models and cannot take or drop them
SET ROLE regress_bob;
SELECT name FROM ray.models;
SELECT count(*) FROM ray.model;
SELECT ray.register_model('ctr', 'sklearn', '\x01'::bytea);
SELECT ray.drop_model('ctr');
UPDATE ray.model SET uri = 'x';
RESET ROLE;

-- admins see all, but add no version to alice's model (she would run it)
SET ROLE regress_admin;
SELECT name, version, owner FROM ray.models WHERE name = 'ctr' ORDER BY version;
SELECT ray.register_model('ctr', 'sklearn', '\x01'::bytea);
RESET ROLE;

-- grants: only the owner grants, to an existing role or public; bob then sees the model
SET ROLE regress_bob;
SELECT ray.grant_model('ctr', 'regress_bob');
RESET ROLE;
SET ROLE regress_alice;
SELECT ray.grant_model('ctr', 'nosuchrole');
SELECT ray.grant_model('ctr', NULL);
SELECT ray.grant_model('nosuch', 'regress_bob');
SELECT ray.grant_model('ctr', 'regress_bob');
SELECT ray.grant_model('ctr', 'regress_bob');
SELECT model, grantee, granted_by FROM ray.model_grant;
RESET ROLE;
SET ROLE regress_bob;
SELECT name, version, owner FROM ray.models ORDER BY version;
SELECT model, grantee, granted_by FROM ray.model_grant;
SELECT ray.revoke_model('ctr', 'regress_bob');
RESET ROLE;
SET ROLE regress_alice;
SELECT ray.revoke_model('ctr', 'regress_bob');
SELECT ray.revoke_model('ctr', 'regress_bob');
RESET ROLE;
SET ROLE regress_bob;
SELECT name FROM ray.models;
RESET ROLE;

-- dropping one version, then the rest
SET ROLE regress_alice;
SELECT ray.drop_model('ctr', 1);
SELECT ray.drop_model('ctr', 1);
SELECT name, version FROM ray.models WHERE name = 'ctr';
SELECT ray.register_model('ctr', 'sklearn', '\x01'::bytea);
SELECT ray.drop_model('ctr');
SELECT ray.drop_model('ctr');
SELECT ray.drop_model(NULL);
RESET ROLE;
-- direct writes obey the constraints
\set VERBOSITY terse
INSERT INTO ray.model (name, version, kind, data, uri, owner) VALUES ('x', 1, 'onnx', '\x01', '/m', 'postgres');
DELETE FROM ray.model;
