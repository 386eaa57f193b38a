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
	-- an untyped literal picks the text overload: '\x01...' meant as bytes becomes a uri
	IF uri ~ '^\\x([0-9A-Fa-f]{2})*$' THEN
		RAISE EXCEPTION 'model location "%" looks like bytes written as text', left(uri, 40)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass bytes as bytea, such as ''\x0102''::bytea or pg_read_binary_file(...).';
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
	first_owner oid;
	next_version integer;
BEGIN
	PERFORM ray._check_name('model', model_name);
	PERFORM ray._check_model(kind, data, uri, coalesce(options, '{}'));
	-- one registration of a name at a time, so versions never collide: its rows are
	-- locked (no user can lock them: that needs UPDATE on ray.model), and two first
	-- registrations of a new name meet at the primary key
	PERFORM FROM ray.model WHERE name = model_name FOR UPDATE;
	SELECT owner_oid, max(version) OVER () + 1 INTO first_owner, next_version
	FROM ray.model WHERE name = model_name ORDER BY version LIMIT 1;
	-- not even an admin adds versions to another role's model: its owner would run them
	IF next_version IS NOT NULL AND first_owner IS DISTINCT FROM ray._calling_role() THEN
		RAISE EXCEPTION 'model "%" belongs to another role', model_name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Choose another name.';
	END IF;
	BEGIN
		INSERT INTO ray.model (name, version, kind, data, uri, options, owner, owner_oid)
		VALUES (model_name, coalesce(next_version, 1), kind, data, uri, coalesce(options, '{}'), caller,
				ray._calling_role());
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'model "%" was registered by another session at the same time', model_name
			USING ERRCODE = 'serialization_failure',
				  HINT = 'Register it again.';
	END;
	RETURN coalesce(next_version, 1);
END
$$;
COMMENT ON FUNCTION ray._register_model(text, text, bytea, text, jsonb) IS
'Store a new version of a model (bytes or location) after checking it; returns its version.';

CREATE OR REPLACE FUNCTION ray._register_model_impl(name text, kind text, data bytea, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._register_model(_register_model_impl.name, _register_model_impl.kind, _register_model_impl.data, NULL,
							   _register_model_impl.options)
$$;
COMMENT ON FUNCTION ray._register_model_impl(text, text, bytea, jsonb) IS
'The work of ray.register_model, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.register_model(name text, kind text, data bytea, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.register_model(text, text, bytea, jsonb) IS
'Register a model kept in the database (sklearn or onnx bytes); a known name gets a new version, which is returned.';

CREATE OR REPLACE FUNCTION ray._register_model_impl(name text, kind text, uri text, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ray._register_model(_register_model_impl.name, _register_model_impl.kind, NULL, _register_model_impl.uri,
							   _register_model_impl.options)
$$;
COMMENT ON FUNCTION ray._register_model_impl(text, text, text, jsonb) IS
'The work of ray.register_model, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.register_model(name text, kind text, uri text, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.register_model(text, text, text, jsonb) IS
'Register a model by where it lives: a path or URI, module:Class, an endpoint URL or a vLLM model id; returns its version.';

CREATE OR REPLACE FUNCTION ray._drop_model_impl(name text, version integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	dropped integer;
BEGIN
	PERFORM ray._check_name('model', _drop_model_impl.name);
	IF NOT EXISTS (SELECT FROM ray.model m WHERE m.name = _drop_model_impl.name
				   AND (m.owner_oid = ray._calling_role() OR ray._is_admin(ray._calling_role()))) THEN
		RAISE EXCEPTION 'model "%" does not exist', _drop_model_impl.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'List your models with SELECT name, version FROM ray.models.';
	END IF;
	DELETE FROM ray.model m
	WHERE m.name = _drop_model_impl.name AND (_drop_model_impl.version IS NULL OR m.version = _drop_model_impl.version)
	  AND (m.owner_oid = ray._calling_role() OR ray._is_admin(ray._calling_role()));
	GET DIAGNOSTICS dropped = ROW_COUNT;
	IF dropped = 0 THEN
		RAISE EXCEPTION 'model "%" has no version %', _drop_model_impl.name, _drop_model_impl.version
			USING ERRCODE = 'undefined_object';
	END IF;
	-- a grant covers its granter's versions: with none left, it goes
	DELETE FROM ray.model_grant g
	WHERE g.model = _drop_model_impl.name
	  AND NOT EXISTS (SELECT FROM ray.model m WHERE m.name = g.model AND m.owner_oid = g.granted_by_oid);
	RETURN dropped;
END
$$;
COMMENT ON FUNCTION ray._drop_model_impl(text, integer) IS
'The work of ray.drop_model, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.drop_model(name text, version integer DEFAULT NULL)
RETURNS integer
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.drop_model(text, integer) IS
'Drop a model (every version, or one); returns how many versions were dropped. Owners and admins only.';

/*
 * May the role run this version of a model: its own, or granted to it (or
 * to a role whose privileges it inherits, or to public) by the version's
 * owner.  Membership is followed through pg_auth_members rather than
 * pg_has_role, which says yes to a superuser for every role: a model is
 * code, and a superuser or admin runs only what is theirs or granted.
 */
CREATE OR REPLACE FUNCTION ray._may_run_model(model_name text, model_version integer, role oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE held(roleid) AS (
		SELECT role
		UNION
		SELECT a.roleid FROM pg_auth_members a JOIN held h ON a.member = h.roleid
		JOIN pg_roles r ON r.oid = a.member AND r.rolinherit)
	SELECT EXISTS (
		SELECT FROM ray.model m
		WHERE m.name = model_name AND m.version = model_version
		  AND (m.owner_oid = role
			   OR EXISTS (SELECT FROM ray.model_grant g
						  WHERE g.model = m.name AND g.granted_by_oid = m.owner_oid
							AND (g.grantee_oid = 0 OR g.grantee_oid IN (SELECT roleid FROM held)))))
$$;
COMMENT ON FUNCTION ray._may_run_model(text, integer, oid) IS
'True if the role owns this model version or its owner granted the model to the role, a role it inherits from, or public.';

/* An error unless the role may run the model version (see ray._may_run_model). */
CREATE OR REPLACE FUNCTION ray._check_may_run_model(model_name text, model_version integer, role oid)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	model_owner name := (SELECT m.owner FROM ray.model m WHERE m.name = model_name AND m.version = model_version);
BEGIN
	IF model_owner IS NULL THEN
		RAISE EXCEPTION 'model "%" version % does not exist', model_name, model_version
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT ray._may_run_model(model_name, model_version, role) THEN
		RAISE EXCEPTION 'permission denied for model "%"', model_name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Version %s belongs to role %s, who has not granted it to role %s. A model is code: it runs with the identity and data of whoever runs it.',
								  model_version, model_owner, (SELECT rolname FROM pg_roles WHERE oid = role)),
				  HINT = format('Its owner can grant it with SELECT ray.grant_model(%L, %L).', model_name,
								(SELECT rolname FROM pg_roles WHERE oid = role));
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_may_run_model(text, integer, oid) IS
'Raise an error unless the role may run the model version: its own, or granted to it by the version''s owner.';

/* The model named, if the caller owns a version of it; errors otherwise. */
CREATE OR REPLACE FUNCTION ray._owned_model(model_name text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM ray._check_name('model', model_name);
	-- what the caller cannot see does not exist for it; what it may run or oversee, it sees
	IF NOT EXISTS (SELECT FROM ray.model m WHERE m.name = model_name
				   AND (m.owner_oid = ray._calling_role() OR ray._is_admin(ray._calling_role())
						OR ray._may_run_model(m.name, m.version, ray._calling_role()))) THEN
		RAISE EXCEPTION 'model "%" does not exist', model_name
			USING ERRCODE = 'undefined_object',
				  HINT = 'List your models with SELECT name, version FROM ray.models.';
	END IF;
	IF NOT EXISTS (SELECT FROM ray.model m WHERE m.name = model_name AND m.owner_oid = ray._calling_role()) THEN
		RAISE EXCEPTION 'permission denied for model "%"', model_name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Only the owner of a model''s versions grants them.';
	END IF;
	RETURN model_name;
END
$$;
COMMENT ON FUNCTION ray._owned_model(text) IS
'The model''s name if the caller owns a version of it; "does not exist" or "permission denied" otherwise.';

CREATE OR REPLACE FUNCTION ray._grant_model_impl(model text, role name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	model_name text := ray._owned_model(_grant_model_impl.model);
BEGIN
	PERFORM ray._check_grantee(role);
	-- a grant that bears the name of a role renamed since is that role's: it takes its name now
	PERFORM ray._sync_role_names_of_grants();
	-- one left by a dropped role of either name is nobody's: this one replaces it
	INSERT INTO ray.model_grant AS g (model, grantee, granted_by, grantee_oid, granted_by_oid)
	VALUES (model_name, role, ray._caller(), ray._role_oid(role), ray._calling_role())
	ON CONFLICT ON CONSTRAINT model_grant_pkey DO UPDATE
		SET grantee_oid = excluded.grantee_oid, granted_by_oid = excluded.granted_by_oid, granted_at = now()
		WHERE (g.grantee_oid, g.granted_by_oid) IS DISTINCT FROM (excluded.grantee_oid, excluded.granted_by_oid);
	IF NOT FOUND THEN
		RAISE NOTICE 'role "%" can already run model "%"', role, model_name;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._grant_model_impl(text, name) IS
'The work of ray.grant_model, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.grant_model(model text, role name)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.grant_model(text, name) IS
'Let a role (and its members), or ''public'', run the versions of a model that the caller owns.';

CREATE OR REPLACE FUNCTION ray._revoke_model_impl(model text, role name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	model_name text := ray._owned_model(_revoke_model_impl.model);
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	DELETE FROM ray.model_grant g
	WHERE g.model = model_name AND g.granted_by_oid = ray._calling_role()
	  AND (g.grantee_oid = ray._role_oid(role)
		   -- a grant to a dropped role of that name
		   OR (g.grantee = role AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.grantee_oid)));
	IF NOT FOUND THEN
		RAISE NOTICE 'role "%" had no grant of model "%"', role, model_name;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._revoke_model_impl(text, name) IS
'The work of ray.revoke_model, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.revoke_model(model text, role name)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.revoke_model(text, name) IS
'Take back a grant of a model; runs already queued check again when they start.';

/*
 * The model a stored plan runs: the registration it was submitted with.
 * A model dropped and registered again under the same name and version
 * (by its owner, or by an admin who dropped it) is another model, and the
 * run fails rather than run it.  Plans queued by 0.1 name no registration.
 */
CREATE OR REPLACE FUNCTION ray._plan_model(plan jsonb)
RETURNS ray.model
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m ray.model;
BEGIN
	SELECT * INTO m FROM ray.model
	WHERE name = plan -> 'model' ->> 'name' AND version::text = plan -> 'model' ->> 'version';
	IF m.name IS NULL OR (plan -> 'model' ? 'registered_at' AND (
		m.owner IS DISTINCT FROM plan -> 'model' ->> 'owner'
		OR m.created_at IS DISTINCT FROM (plan -> 'model' ->> 'registered_at')::timestamptz)) THEN
		RAISE EXCEPTION 'model %:% was dropped or replaced since the run was submitted',
			plan -> 'model' ->> 'name', plan -> 'model' ->> 'version'
			USING ERRCODE = 'undefined_object';
	END IF;
	RETURN m;
END
$$;
COMMENT ON FUNCTION ray._plan_model(jsonb) IS
'The model row a stored batch inference plan was submitted with; an error if it was dropped or registered again since.';
