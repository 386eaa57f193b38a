/*
 * sql/external_clusters.sql
 *		Ray clusters registered from outside (the external provider).
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* ------------------------------------------------------------------------
 * External clusters (ray_admin)
 * ------------------------------------------------------------------------
 */

/* A bearer token goes into an HTTP header: printable ASCII, no spaces. */
CREATE OR REPLACE FUNCTION ray._check_token(token text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF token IS NOT NULL AND token !~ '^[\x21-\x7e]+$' THEN
		RAISE EXCEPTION 'token must be printable ASCII without spaces'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION ray._check_token(text) IS
'Raise an error unless a bearer token can travel in an HTTP header.';

CREATE OR REPLACE FUNCTION ray._register_cluster_impl(
	name text,
	dashboard_url text,
	token text DEFAULT NULL,
	options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller name := ray._caller();
	url text;
	version text;
BEGIN
	PERFORM ray._check_name('resource group', _register_cluster_impl.name);
	IF EXISTS (SELECT FROM ray.resource_group g WHERE g.name = _register_cluster_impl.name
			   AND g.delete_requested_at IS NOT NULL) THEN
		RAISE EXCEPTION 'resource group "%" is being dropped', _register_cluster_impl.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Register it again once it is gone from ray.resource_groups.';
	END IF;
	IF EXISTS (SELECT FROM ray.resource_group g WHERE g.name = _register_cluster_impl.name) THEN
		RAISE EXCEPTION 'resource group "%" already exists', _register_cluster_impl.name
			USING ERRCODE = 'duplicate_object';
	END IF;
	PERFORM ray._check_token(token);
	PERFORM ray._check_group_options(coalesce(_register_cluster_impl.options, '{}'), 'external');
	url := ray._check_dashboard_url(dashboard_url);
	-- a wrong URL or token is an error now, never a group that silently fails later
	version := ray._http_ray_version(url, token, _register_cluster_impl.options ->> 'ca_file');

	INSERT INTO ray.resource_group (name, provider, head_spec, endpoint, options, owner, ray_version)
	VALUES (_register_cluster_impl.name, 'external', NULL, url,
			coalesce(_register_cluster_impl.options, '{}'), caller, version);
	IF token IS NOT NULL THEN
		INSERT INTO ray.resource_group_secret (resource_group, token)
		VALUES (_register_cluster_impl.name, token);
	END IF;
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	VALUES (_register_cluster_impl.name, NULL, 'CREATING', 1, caller,
			format('registered Ray %s at %s', version, url));
	RETURN _register_cluster_impl.name;
END
$$;
COMMENT ON FUNCTION ray._register_cluster_impl(text, text, text, jsonb) IS
'The work of ray.register_cluster, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.register_cluster(
	name text,
	dashboard_url text,
	token text DEFAULT NULL,
	options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.register_cluster(text, text, text, jsonb) IS
'Attach an existing Ray cluster by its dashboard URL (and bearer token) as a resource group; checks GET /api/version first.';

/*
 * Point an external group at a new URL, token or options.  The new settings
 * are checked against the dashboard before they replace the old ones, so a
 * typo never disconnects a working group.
 */
CREATE OR REPLACE FUNCTION ray._alter_cluster_impl(
	name text,
	dashboard_url text DEFAULT NULL,
	token text DEFAULT NULL,
	options jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_alter_cluster_impl.name);
	old_token text;
	new_token text;
	new_url text;
	new_options jsonb;
	changed text[] := '{}';
	version text;
BEGIN
	IF rg.provider <> 'external' THEN
		RAISE EXCEPTION 'resource group "%" is not an external cluster', rg.name
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Change it with ray.alter_resource_group.';
	END IF;
	SELECT s.token INTO old_token FROM ray.resource_group_secret s WHERE s.resource_group = rg.name;
	new_url := CASE WHEN dashboard_url IS NULL THEN rg.endpoint
					ELSE ray._check_dashboard_url(dashboard_url) END;
	-- the token belongs to its dashboard: whoever may change the URL, or the
	-- CA that says which server is the dashboard, must not be able to have it
	-- sent to a server of theirs
	IF (new_url IS DISTINCT FROM rg.endpoint
		OR (_alter_cluster_impl.options ? 'ca_file' AND _alter_cluster_impl.options -> 'ca_file' IS DISTINCT FROM rg.options -> 'ca_file'))
		AND token IS NULL AND old_token IS NOT NULL THEN
		RAISE EXCEPTION 'the token of resource group "%" is not sent to another dashboard', rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The stored token was given for the dashboard the group points at now, as its CA file names it.',
				  HINT = 'Pass the new dashboard''s token as token, or '''' if it needs none.';
	END IF;
	-- an empty token removes it
	new_token := CASE WHEN token IS NULL THEN old_token ELSE nullif(token, '') END;
	PERFORM ray._check_token(new_token);
	new_options := rg.options;
	IF _alter_cluster_impl.options IS NOT NULL THEN
		IF jsonb_typeof(_alter_cluster_impl.options) <> 'object' THEN
			PERFORM ray._check_group_options(_alter_cluster_impl.options, 'external');
		END IF;
		new_options := jsonb_strip_nulls(rg.options || _alter_cluster_impl.options);
		PERFORM ray._check_group_options(new_options, 'external');
	END IF;

	IF new_url IS DISTINCT FROM rg.endpoint THEN
		changed := changed || 'dashboard URL'::text;
	END IF;
	IF new_token IS DISTINCT FROM old_token THEN
		changed := changed || 'token'::text;
	END IF;
	IF new_options IS DISTINCT FROM rg.options THEN
		changed := changed || 'options'::text;
	END IF;
	IF cardinality(changed) = 0 THEN
		RAISE NOTICE 'resource group "%" already has those settings; nothing changes', rg.name;
		RETURN;
	END IF;
	-- runs in the old cluster could be neither followed nor stopped any more
	IF new_url IS DISTINCT FROM rg.endpoint THEN
		PERFORM ray._guard_interruption(rg.name, 'pointing the group at another dashboard', NULL);
	END IF;

	version := ray._http_ray_version(new_url, new_token, new_options ->> 'ca_file');
	UPDATE ray.resource_group g SET endpoint = new_url, options = new_options, ray_version = version,
		unreachable_since = NULL, last_error = NULL
	WHERE g.name = rg.name;
	DELETE FROM ray.resource_group_secret s WHERE s.resource_group = rg.name;
	IF new_token IS NOT NULL THEN
		INSERT INTO ray.resource_group_secret (resource_group, token) VALUES (rg.name, new_token);
	END IF;
	PERFORM ray._spec_changed(rg.name, format('%s changed; Ray %s answers', array_to_string(changed, ', '), version));
END
$$;
COMMENT ON FUNCTION ray._alter_cluster_impl(text, text, text, jsonb) IS
'The work of ray.alter_cluster, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.alter_cluster(
	name text,
	dashboard_url text DEFAULT NULL,
	token text DEFAULT NULL,
	options jsonb DEFAULT NULL)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.alter_cluster(text, text, text, jsonb) IS
'Change an external group''s dashboard URL, token ('''' removes it) or options; the new settings are checked with GET /api/version first.';
