/*
 * sql/batch_runs.sql
 *		Batch inference: each attempt's role, staging table and package,
 *		and what the runner asks for.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * An attempt of a batch inference job begins: its login role and its
 * staging table.  The role's password is known to the worker and the run
 * only.  The role is no member of the owner (a member could SET ROLE to
 * it): it reads the source through ray._run_read, as the owner, and can
 * write only its staging table.  It lives as long as its attempt, however
 * long that runs: the attempt's end drops it, and a crash's leftovers are
 * dropped by ray._drop_stray_run_roles.
 */
CREATE OR REPLACE FUNCTION ray._begin_batch_attempt(id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job;
	-- its statements are built from the plan's checked parts only
	plan jsonb := ray._canonical_plan((SELECT b.plan FROM ray.batch_run b WHERE b.job_id = id));
	run_role text;
	run_password text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
	staging text;
	runner bytea;
BEGIN
	SELECT * INTO job FROM ray.job WHERE job_id = id;
	-- the model must be the one submitted, and a grant of it may have been taken back since
	PERFORM ray._plan_model(plan);
	PERFORM ray._check_may_run_model(plan -> 'model' ->> 'name', (plan -> 'model' ->> 'version')::integer,
									 ray._job_owner(id));
	PERFORM ray._end_batch_attempt(id);
	run_role := format('pgray_run_%s_%s_%s', (SELECT oid FROM pg_database WHERE datname = current_database()),
					   id, job.attempts);
	staging := format('ray_staging.%I', format('job_%s_%s', id, job.attempts));
	-- the verifier, not the password: a statement's text can reach the log
	EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE ray_run',
				   run_role, ray._scram_verifier(run_password));
	-- (the schema it reaches through ray_run: a grant of its own would be caught in the extension's
	-- initial privileges by an update that ran meanwhile, and outlive the role in every dump)
	-- the columns in the order of the target that the run may create, so that it can be this table
	-- not analyzed by autovacuum: it would run as the table's owner, this superuser
	EXECUTE format('CREATE TABLE %s (%s, %I %s) WITH (autovacuum_enabled = off)', staging,
				   (SELECT string_agg(format('%I %s', e ->> 'name', e ->> 'type'), ', ' ORDER BY k.ord)
					FROM jsonb_array_elements_text(plan -> 'key') WITH ORDINALITY k(name, ord)
					JOIN jsonb_array_elements(plan -> 'columns') e ON e ->> 'name' = k.name),
				   plan -> 'output' ->> 'name', plan -> 'output' ->> 'type');
	-- and to the run's role only: the owner reads it only while its rows are published
	EXECUTE format('GRANT SELECT, INSERT ON %s TO %I', staging, run_role);
	-- the password goes in the run's package, not in its runtime_env (see ray._runner_package)
	runner := ray._runner_package(jsonb_build_object('password', run_password)::text);
	INSERT INTO ray.batch_run_secret (job_id, attempt, role_name, password, staging_table, package, content)
	VALUES (id, job.attempts, run_role, run_password, staging,
			'_ray_pkg_' || left(encode(sha256(runner), 'hex'), 40) || '.zip', runner);
	UPDATE ray.job SET rows_processed = NULL, rows_total = NULL, rows_written = NULL WHERE job_id = id;
END
$$;
COMMENT ON FUNCTION ray._begin_batch_attempt(bigint) IS
'Make the login role and the staging table of a batch inference job''s new attempt.';

/*
 * A run's login role goes: its sessions end, its grants and the role itself
 * are dropped.  The job's owner can make a role undroppable (a grant to it
 * in another database, which DROP OWNED here cannot reach); then it is made
 * unable to log in, a WARNING says why, and false is returned: the attempt
 * ends all the same, and ray._drop_stray_run_roles tries again when the
 * worker starts.
 */
CREATE OR REPLACE FUNCTION ray._drop_run_role(role_name name)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM pg_terminate_backend(a.pid) FROM pg_stat_activity a WHERE a.usename = role_name;
	IF EXISTS (SELECT FROM pg_roles r WHERE r.rolname = role_name) THEN
		BEGIN
			EXECUTE format('DROP OWNED BY %I', role_name);
			EXECUTE format('DROP ROLE %I', role_name);
		EXCEPTION WHEN dependent_objects_still_exist OR object_in_use THEN
			EXECUTE format('ALTER ROLE %I NOLOGIN PASSWORD NULL', role_name);
			RAISE WARNING 'batch inference run role "%" cannot be dropped; it can no longer log in', role_name
				USING DETAIL = SQLERRM,
					  HINT = 'Revoke what was granted to it in other databases; pg_ray drops it then.';
			RETURN false;
		END;
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION ray._drop_run_role(name) IS
'Drop a batch inference run''s login role after ending its sessions; if it cannot be, disable its login and return false.';

/*
 * An attempt ends (published, failed, stopped or lost): its sessions are
 * ended, its staging table and its role dropped.  What it staged is never
 * published by a later attempt, which is why a retry cannot duplicate rows.
 */
CREATE OR REPLACE FUNCTION ray._end_batch_attempt(id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret;
BEGIN
	FOR s IN DELETE FROM ray.batch_run_secret WHERE job_id = id RETURNING * LOOP
		-- the run's sessions end first: one still writing would hold the staging table
		PERFORM ray._drop_run_role(s.role_name);
		EXECUTE format('DROP TABLE IF EXISTS %s', s.staging_table);
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._end_batch_attempt(bigint) IS
'End a batch inference attempt: its sessions, staging table and login role go.';

/*
 * The environment a run connects to this server with: libpq's variables and
 * its login role.  Its password is in its package (ray._runner_package), not
 * here: Ray writes a job's environment variables on the command line of each
 * of its worker processes, for any user of the host to read.
 */
CREATE OR REPLACE FUNCTION ray._run_connection_env(job ray.job)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((
		SELECT jsonb_build_object('env_vars', coalesce(job.runtime_env -> 'env_vars', '{}') || jsonb_build_object(
			'PGHOST', current_setting('pg_ray.runner_host'),
			'PGPORT', current_setting('port'),
			'PGDATABASE', current_database(),
			'PGUSER', s.role_name,
			'PGAPPNAME', format('pg_ray run %s/%s', s.job_id, s.attempt),
			'PGCONNECT_TIMEOUT', '10',
			'PGSSLMODE', current_setting('pg_ray.runner_sslmode'))
			|| CASE WHEN current_setting('pg_ray.runner_sslrootcert') <> ''
					THEN jsonb_build_object('PGSSLROOTCERT', current_setting('pg_ray.runner_sslrootcert'))
					ELSE '{}' END)
		FROM ray.batch_run_secret s
		WHERE s.job_id = job.job_id AND s.attempt = job.attempts), '{}')
$$;
COMMENT ON FUNCTION ray._run_connection_env(ray.job) IS
'The runtime_env part that lets a batch inference run connect back: libpq variables with its role and TLS settings (the password is in its package).';

/*
 * The package a job's attempt is submitted with: a batch inference
 * attempt's own (the runner and the attempt's credentials), else the
 * working directory the job was submitted with, if any.
 */
CREATE OR REPLACE FUNCTION ray._submission_package(id bigint, attempt integer, OUT package text, OUT content bytea)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(s.package, p.package), coalesce(s.content, p.content)
	FROM (SELECT) one
	LEFT JOIN ray.batch_run_secret s ON s.job_id = id AND s.attempt = _submission_package.attempt
	LEFT JOIN ray.job_package p ON p.job_id = id
$$;
COMMENT ON FUNCTION ray._submission_package(bigint, integer) IS
'The working directory package an attempt is submitted with (name and zip), or NULLs if it has none.';

/* Run roles left by a server crash between their creation and their job's end. */
CREATE OR REPLACE FUNCTION ray._drop_stray_run_roles()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r name;
	n integer := 0;
BEGIN
	FOR r IN
		SELECT rolname FROM pg_roles
		WHERE rolname LIKE format('pgray\_run\_%s\_%%', (SELECT oid FROM pg_database WHERE datname = current_database()))
		  AND rolname NOT IN (SELECT role_name FROM ray.batch_run_secret)
	LOOP
		IF ray._drop_run_role(r) THEN
			n := n + 1;
		END IF;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION ray._drop_stray_run_roles() IS
'Drop login roles of batch inference runs that no attempt owns any more; returns how many were dropped.';

/* The run a runner's session belongs to, if that run is still current. */
CREATE OR REPLACE FUNCTION ray._current_run()
RETURNS ray.batch_run_secret
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret;
BEGIN
	SELECT r.* INTO s FROM ray.batch_run_secret r JOIN ray.job j ON j.job_id = r.job_id
	WHERE r.role_name = session_user AND j.attempts = r.attempt
	  AND j.state IN ('SUBMITTING', 'PENDING', 'RUNNING');
	IF s.job_id IS NULL THEN
		RAISE EXCEPTION 'not a current batch inference run'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Only the login role of a running batch inference attempt may ask for its run.';
	END IF;
	RETURN s;
END
$$;
COMMENT ON FUNCTION ray._current_run() IS
'The attempt whose login role this session is, while the attempt runs; an error otherwise.';

/* What the runner is to do, for the run whose login role asks. */
CREATE OR REPLACE FUNCTION ray._run_spec()
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret := ray._current_run();
	plan jsonb := (SELECT b.plan FROM ray.batch_run b WHERE b.job_id = s.job_id);
	m ray.model;
	model_options jsonb;
	model_uri text;
BEGIN
	m := ray._plan_model(plan);
	-- the runner's view of a model: python code as a directory, endpoints as base_url
	model_options := m.options;
	model_uri := m.uri;
	IF m.kind = 'python' AND m.data IS NULL THEN
		model_options := model_options || jsonb_build_object('class', m.uri);
		model_uri := m.options ->> 'working_dir';
	ELSIF m.kind = 'http' THEN
		model_options := model_options || jsonb_build_object('base_url', m.uri);
	END IF;
	RETURN jsonb_build_object(
		'job_id', s.job_id,
		'attempt', s.attempt,
		'source', plan -> 'source',
		'columns', plan -> 'columns',
		'key', plan -> 'key',
		'inputs', plan -> 'inputs',
		'output', plan -> 'output',
		'staging_table', s.staging_table,
		'staging_columns', (plan -> 'key') || jsonb_build_array(plan -> 'output' ->> 'name'),
		'model', jsonb_build_object('name', m.name, 'version', m.version, 'kind', m.kind,
									'options', model_options, 'uri', model_uri,
									'has_data', m.data IS NOT NULL),
		'options', plan -> 'options');
END
$$;
COMMENT ON FUNCTION ray._run_spec() IS
'For a runner: what its run reads, runs and writes (source, columns, model, staging table, options).';

CREATE OR REPLACE FUNCTION ray._run_model_data()
RETURNS bytea
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT (ray._plan_model(b.plan)).data FROM ray.batch_run b
	WHERE b.job_id = (ray._current_run()).job_id
$$;
COMMENT ON FUNCTION ray._run_model_data() IS
'For a runner: the bytes of its model, when the model is kept in the database.';

CREATE OR REPLACE FUNCTION ray._run_progress(rows_done bigint, rows_total bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret := ray._current_run();
BEGIN
	IF rows_done < 0 OR rows_total < 0 THEN
		RAISE EXCEPTION 'row counts must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE ray.job SET
		rows_processed = coalesce(rows_processed, 0) + coalesce(_run_progress.rows_done, 0),
		rows_total = coalesce(_run_progress.rows_total, ray.job.rows_total)
	WHERE job_id = s.job_id AND attempts = s.attempt;
END
$$;
COMMENT ON FUNCTION ray._run_progress(bigint, bigint) IS
'For a runner: add rows scored and staged, and set the total to score, for ray.jobs and ray.wait_job.';

/*
 * The role a batch run reads and publishes as: its job's owner, by the OID
 * bound when the job was submitted (ray._bind_roles).  A role dropped since,
 * or one created later under its name, is not it: the run fails rather than
 * read with another role's privileges.
 */
CREATE OR REPLACE FUNCTION ray._job_owner(id bigint)
RETURNS oid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := (SELECT j FROM ray.job j WHERE j.job_id = id);
	role oid := (SELECT r.oid FROM pg_roles r WHERE r.oid = job.owner_oid);
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role "%" that submitted job % does not exist any more', job.owner, id
			USING ERRCODE = 'undefined_object',
				  DETAIL = 'The role was dropped since; a role of the same name made later is another role.',
				  HINT = 'Submit the run again as the role that should own it.';
	END IF;
	RETURN role;
END
$$;
COMMENT ON FUNCTION ray._job_owner(bigint) IS
'The OID of the role that submitted a job, if it still exists; an error otherwise.';

/*
 * The query ray._run_read runs for a partition of the calling run's source,
 * as whom and with which search_path.  Built here from the stored plan's
 * checked parts and the bounds, which are numbers: nothing the run hands in
 * becomes SQL.  Each column is read as text (see src/run_read.c).
 */
CREATE OR REPLACE FUNCTION ray._run_read_query(lo_page bigint, hi_page bigint, shard integer, shards integer,
											   OUT owner oid, OUT query text, OUT search_path text)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret := ray._current_run();
	plan jsonb := ray._canonical_plan((SELECT b.plan FROM ray.batch_run b WHERE b.job_id = s.job_id));
	source jsonb := (SELECT b.plan -> 'source' FROM ray.batch_run b WHERE b.job_id = s.job_id);
	select_list text;
	read_from text;
	filters text[] := '{}';
BEGIN
	IF lo_page < 0 OR hi_page < 0 OR hi_page <= lo_page OR hi_page > 4294967295 THEN
		RAISE EXCEPTION 'invalid page range [%, %)', lo_page, hi_page
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (shard IS NULL) <> (shards IS NULL) OR shards < 1 OR shard < 0 OR shard >= shards THEN
		RAISE EXCEPTION 'invalid shard % of %', shard, shards
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	owner := ray._job_owner(s.job_id);
	select_list := (SELECT string_agg(format('(%I)::text', e ->> 'name'), ', ' ORDER BY ord)
					FROM jsonb_array_elements(plan -> 'columns') WITH ORDINALITY c(e, ord));
	IF jsonb_typeof(source -> 'table') = 'string' THEN
		IF shards IS NOT NULL THEN
			RAISE EXCEPTION 'a table source is read in page ranges, not shards'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		read_from := (SELECT format('%I.%I', p[1], p[2]) FROM parse_ident(source ->> 'table') p
					  WHERE cardinality(p) = 2);
		IF lo_page IS NOT NULL THEN
			filters := filters || format('ctid >= %L::tid', format('(%s,0)', lo_page));
		END IF;
		IF hi_page IS NOT NULL THEN
			filters := filters || format('ctid < %L::tid', format('(%s,0)', hi_page));
		END IF;
	ELSE
		IF lo_page IS NOT NULL OR hi_page IS NOT NULL THEN
			RAISE EXCEPTION 'a query source is read in shards, not page ranges'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF shards IS NOT NULL AND source -> 'shard_key' IS NULL THEN
			RAISE EXCEPTION 'this batch inference source has no shard key'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		read_from := format('(%s) source_query', source ->> 'query');
		IF shards IS NOT NULL THEN
			-- NULL keys go with hash 0 rather than nowhere
			filters := filters || format('mod(coalesce(hashtext((%s)::text), 0)::bigint + 2147483648, %s) = %s',
										 source ->> 'shard_key', shards, shard);
		END IF;
	END IF;
	IF read_from IS NULL THEN
		RAISE EXCEPTION 'invalid batch inference plan: it names no source'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	query := format('SELECT %s FROM %s', select_list, read_from)
		|| CASE WHEN cardinality(filters) > 0 THEN ' WHERE ' || array_to_string(filters, ' AND ') ELSE '' END;
	search_path := source ->> 'search_path';
END
$$;
COMMENT ON FUNCTION ray._run_read_query(bigint, bigint, integer, integer) IS
'For ray._run_read: the owner of the calling run, the query of one partition of its source, and its search_path.';

/* For a runner: the size of its table source in pages and bytes (NULLs for a query). */
CREATE OR REPLACE FUNCTION ray._run_source_size(OUT pages bigint, OUT bytes bigint)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s ray.batch_run_secret := ray._current_run();
	source jsonb := (SELECT b.plan -> 'source' FROM ray.batch_run b WHERE b.job_id = s.job_id);
	relation regclass;
BEGIN
	IF jsonb_typeof(source -> 'table') = 'string' THEN
		relation := to_regclass(source ->> 'table');
		bytes := pg_relation_size(relation);
		pages := bytes / current_setting('block_size')::bigint;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._run_source_size() IS
'For a runner: how many pages and bytes its table source has, to size its partitions; NULLs for a query source.';
