/*
 * sql/models.sql
 *		Models for batch inference.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* The rules of a model's kind and location; errors in PostgreSQL's style. */
CREATE OR REPLACE FUNCTION ray._check_model(kind text, data bytea, uri text, options jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF kind IS NULL THEN
		RAISE EXCEPTION 'model kind must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Model kinds: sklearn, onnx, python, http, vllm.';
	END IF;
	IF kind NOT IN ('sklearn', 'onnx', 'python', 'http', 'vllm') THEN
		RAISE EXCEPTION 'unknown model kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Model kinds: sklearn, onnx, python, http, vllm.';
	END IF;
	IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'model options must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"batch_size": 1024}.';
	END IF;
	IF data IS NULL AND uri IS NULL THEN
		RAISE EXCEPTION 'a model needs its data or a uri'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the model''s bytes as data, or where it lives as uri.';
	END IF;
	IF data IS NOT NULL THEN
		IF kind NOT IN ('sklearn', 'onnx', 'python') THEN
			RAISE EXCEPTION 'a model of kind "%" cannot be stored in the database', kind
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = CASE kind WHEN 'http' THEN 'Give its endpoint as uri => ''https://...''.'
									   ELSE 'Give the model id or path as uri.' END;
		END IF;
		IF kind = 'python' AND coalesce(options ->> 'class', '') !~ '^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$' THEN
			RAISE EXCEPTION 'a python model kept in the database needs its class in options'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Its data is the zip of its working directory, such as ray.zip_directory returns.',
					  HINT = 'Add "class": "module:Class" to options, such as {"class": "scoring.model:ClickModel"}.';
		END IF;
		IF length(data) = 0 THEN
			RAISE EXCEPTION 'model data must not be empty'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN;
	END IF;
	IF kind = 'python' AND uri !~ '^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$' THEN
		RAISE EXCEPTION 'invalid Python class "%"', uri
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A python model is named as module:Class, such as scoring.model:ClickModel.';
	END IF;
	IF kind = 'python' AND options ? 'working_dir' AND coalesce(options ->> 'working_dir', '') !~ '^/' THEN
		RAISE EXCEPTION 'invalid working_dir "%"', options ->> 'working_dir'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The working directory of a python model is an absolute path that every node of the cluster can read.';
	END IF;
	IF kind = 'http' AND uri !~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$' THEN
		RAISE EXCEPTION 'invalid endpoint URL "%"', uri
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'An http model is the base URL of an OpenAI-compatible endpoint, such as http://127.0.0.1:8000/v1, without credentials or a query.',
				  HINT = 'Pass an API key in options as "api_key_env", the name of an environment variable of the cluster.';
	END IF;
	IF kind IN ('sklearn', 'onnx', 'vllm') AND (uri = '' OR uri ~ '[[:cntrl:]]') THEN
		RAISE EXCEPTION 'invalid model location "%"', uri
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Give a path or URI the cluster can read, such as /models/ctr.onnx or s3://bucket/ctr.skops.';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_model(text, bytea, text, jsonb) IS
'Raise an error unless kind, data or uri, and options describe a model pg_ray can run.';

/* Store a new version of a model; the owner of its first version keeps the name. */
CREATE OR REPLACE FUNCTION ray._register_model(model_name text, kind text, data bytea, uri text, options jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller name := ray._caller();
	first_owner name;
	next_version integer;
BEGIN
	PERFORM ray._check_name('model', model_name);
	PERFORM ray._check_model(kind, data, uri, coalesce(options, '{}'));
	-- one registration of a name at a time, so versions never collide
	PERFORM pg_advisory_xact_lock(hashtext('pg_ray model ' || model_name));
	SELECT owner, max(version) OVER () + 1 INTO first_owner, next_version
	FROM ray.model WHERE name = model_name ORDER BY version LIMIT 1;
	IF first_owner IS NOT NULL AND first_owner <> caller AND NOT ray._is_admin(ray._calling_role()) THEN
		RAISE EXCEPTION 'model "%" belongs to another role', model_name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Choose another name.';
	END IF;
	INSERT INTO ray.model (name, version, kind, data, uri, options, owner)
	VALUES (model_name, coalesce(next_version, 1), kind, data, uri, coalesce(options, '{}'),
			coalesce(first_owner, caller));
	RETURN coalesce(next_version, 1);
END
$$;
COMMENT ON FUNCTION ray._register_model(text, text, bytea, text, jsonb) IS
'Store a new version of a model (bytes or location) after checking it; returns its version.';

CREATE OR REPLACE FUNCTION ray.register_model(name text, kind text, data bytea, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._register_model(register_model.name, register_model.kind, register_model.data, NULL,
							   register_model.options)
$$;
COMMENT ON FUNCTION ray.register_model(text, text, bytea, jsonb) IS
'Register a model kept in the database (sklearn or onnx bytes); a known name gets a new version, which is returned.';

CREATE OR REPLACE FUNCTION ray.register_model(name text, kind text, uri text, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._register_model(register_model.name, register_model.kind, NULL, register_model.uri,
							   register_model.options)
$$;
COMMENT ON FUNCTION ray.register_model(text, text, text, jsonb) IS
'Register a model by where it lives: a path or URI, module:Class, an endpoint URL or a vLLM model id; returns its version.';

CREATE OR REPLACE FUNCTION ray.drop_model(name text, version integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	dropped integer;
BEGIN
	PERFORM ray._check_name('model', drop_model.name);
	IF NOT EXISTS (SELECT FROM ray.model m WHERE m.name = drop_model.name
				   AND (m.owner = ray._caller() OR ray._is_admin(ray._calling_role()))) THEN
		RAISE EXCEPTION 'model "%" does not exist', drop_model.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'List your models with SELECT name, version FROM ray.models.';
	END IF;
	DELETE FROM ray.model m
	WHERE m.name = drop_model.name AND (drop_model.version IS NULL OR m.version = drop_model.version);
	GET DIAGNOSTICS dropped = ROW_COUNT;
	IF dropped = 0 THEN
		RAISE EXCEPTION 'model "%" has no version %', drop_model.name, drop_model.version
			USING ERRCODE = 'undefined_object';
	END IF;
	RETURN dropped;
END
$$;
COMMENT ON FUNCTION ray.drop_model(text, integer) IS
'Drop a model (every version, or one); returns how many versions were dropped. Owners and admins only.';
