/*
 * sql/publish.sql
 *		Batch inference: publishing a run's rows into its target.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * What publishing a job runs as its owner: create the target if it is to be
 * created, clear it for overwrite, move the staged rows.  A stop asked for
 * before publishing wins: nothing is published.
 */
CREATE OR REPLACE FUNCTION ray._publish_plan(id bigint, attempt integer,
								  OUT owner_oid oid, OUT statements text[], OUT rows_moved bigint)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['PUBLISHING']);
	plan jsonb;
	secret ray.batch_run_secret := (SELECT s FROM ray.batch_run_secret s
									WHERE s.job_id = id AND s.attempt = _publish_plan.attempt);
	target_name text;
	written text;
	keys text;
BEGIN
	IF job.job_id IS NULL THEN
		RETURN;
	END IF;
	-- every statement below is built from the plan's checked parts, never from its text
	BEGIN
		plan := ray._canonical_plan((SELECT b.plan FROM ray.batch_run b WHERE b.job_id = id));
	EXCEPTION WHEN OTHERS THEN
		PERFORM ray._job_transition(id, 'FAILED', format('%s; nothing was published', SQLERRM), 'pg_ray worker');
		RETURN;
	END;
	target_name := plan -> 'target' ->> 'name';
	IF job.stop_requested_at IS NOT NULL THEN
		PERFORM ray._job_transition(id, 'STOPPED',
			format('stopped by %s before its results were published; nothing was published', job.stopped_by),
			'pg_ray worker');
		RETURN;
	END IF;
	-- the very role that submitted the run (ray._job_owner), or none
	owner_oid := (SELECT r.oid FROM pg_roles r WHERE r.oid = job.owner_oid);
	IF owner_oid IS NULL OR secret.staging_table IS NULL THEN
		PERFORM ray._job_transition(id, 'FAILED',
			CASE WHEN owner_oid IS NULL THEN format('role %s that submitted this run does not exist any more; nothing was published', job.owner)
				 ELSE 'the staging table of this attempt is gone; nothing was published' END,
			'pg_ray worker');
		owner_oid := NULL;
		RETURN;
	END IF;
	keys := (SELECT string_agg(quote_ident(k), ', ') FROM jsonb_array_elements_text(plan -> 'key') k);
	IF plan -> 'target' ? 'create_statement' AND to_regclass(target_name) IS NULL THEN
		EXECUTE format('SELECT count(*) FROM %s', secret.staging_table) INTO rows_moved;
		statements := ray._adopt_staging_table(plan, secret, owner_oid);
		IF statements IS NOT NULL THEN
			RETURN;
		END IF;
		rows_moved := NULL;
	END IF;
	written := (SELECT string_agg(quote_ident(k), ', ')
				FROM jsonb_array_elements_text((plan -> 'key') || jsonb_build_array(plan -> 'output' ->> 'name')) k);
	-- the owner reads the staged rows in this transaction only, which drops them at its end: no
	-- session of the owner ever could, nor hold a lock on them that the worker would wait for
	EXECUTE format('GRANT SELECT ON %s TO %I', secret.staging_table, (SELECT r.rolname FROM pg_roles r WHERE r.oid = owner_oid));
	statements := ARRAY[]::text[];
	IF plan -> 'target' ? 'create_statement' THEN
		statements := statements || regexp_replace(plan -> 'target' ->> 'create_statement',
												   '^CREATE TABLE ', 'CREATE TABLE IF NOT EXISTS ');
	END IF;
	IF plan ->> 'mode' = 'overwrite' THEN
		statements := statements || format('DELETE FROM %s', target_name);
	END IF;
	statements := statements || (format('INSERT INTO %s (%s) SELECT %s FROM %s', target_name, written, written,
										secret.staging_table)
		|| CASE WHEN plan ->> 'mode' = 'upsert'
				THEN format(' ON CONFLICT (%s) DO UPDATE SET %I = EXCLUDED.%I', keys,
							plan -> 'output' ->> 'name', plan -> 'output' ->> 'name')
				ELSE '' END);
END
$$;
COMMENT ON FUNCTION ray._publish_plan(bigint, integer) IS
'The statements that publish a job''s staged rows, to be run as its owner, and the rows they publish when known in advance; no owner when there is nothing to publish.';

/*
 * A target the run is to create, and that still does not exist, is made of
 * the staging table itself rather than by copying every staged row into a
 * new table: the staging table is renamed and given to the owner here (as
 * the worker: only it may rename in ray_staging), and the statements
 * returned, run as the owner, move it into the target's schema (the
 * owner's CREATE privilege there is checked then, as for CREATE TABLE),
 * add what the CREATE TABLE of the plan has and the staging table lacks
 * (NOT NULL keys, the primary key of overwrite and upsert) and give it the
 * privileges a table the owner creates there gets (its default
 * privileges).  The result is the table create_statement describes, in one
 * pass over the rows instead of a copy of all of them.  NULL when the name
 * is taken in ray_staging (by another run's staging table): the rows are
 * then copied.
 */
CREATE OR REPLACE FUNCTION ray._adopt_staging_table(plan jsonb, secret ray.batch_run_secret, owner_oid oid)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	target_parts text[] := parse_ident(plan -> 'target' ->> 'name');
	target_name text := plan -> 'target' ->> 'name';
	target_schema oid := to_regnamespace(quote_ident(target_parts[1]));
	owner_name text := (SELECT r.rolname FROM pg_roles r WHERE r.oid = owner_oid);
	adopted text := format('ray_staging.%I', target_parts[2]);
	default_acl aclitem[];
	schema_acl aclitem[];
	statements text[];
BEGIN
	IF to_regclass(adopted) IS NOT NULL OR target_schema IS NULL THEN
		RETURN NULL;
	END IF;
	EXECUTE format('ALTER TABLE %s RENAME TO %I', secret.staging_table, target_parts[2]);
	EXECUTE format('ALTER TABLE %s RESET (autovacuum_enabled)', adopted);
	EXECUTE format('ALTER TABLE %s OWNER TO %I', adopted, owner_name);
	statements := ARRAY[format('ALTER TABLE %s SET SCHEMA %I', adopted, target_parts[1]),
		format('ALTER TABLE %s %s', target_name,
			   (SELECT string_agg(format('ALTER COLUMN %I SET NOT NULL', k), ', ')
				FROM jsonb_array_elements_text(plan -> 'key') k)
			   || CASE WHEN plan ->> 'mode' IN ('overwrite', 'upsert')
					   THEN format(', ADD PRIMARY KEY (%s)',
								   (SELECT string_agg(quote_ident(k), ', ') FROM jsonb_array_elements_text(plan -> 'key') k))
					   ELSE '' END),
		format('REVOKE ALL ON %s FROM %I, %I', target_name, owner_name, secret.role_name)];

	/*
	 * The privileges of a new table, as PostgreSQL works them out: the
	 * owner's default privileges for all schemas, or else the built-in
	 * ones, merged with its default privileges for this schema.
	 */
	default_acl := coalesce((SELECT d.defaclacl FROM pg_default_acl d
							 WHERE d.defaclrole = owner_oid AND d.defaclnamespace = 0 AND d.defaclobjtype = 'r'),
							acldefault('r', owner_oid));
	schema_acl := (SELECT d.defaclacl FROM pg_default_acl d
				   WHERE d.defaclrole = owner_oid AND d.defaclnamespace = target_schema AND d.defaclobjtype = 'r');
	RETURN statements || ARRAY(
		SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, target_name,
					  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,
					  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
		FROM (SELECT * FROM aclexplode(default_acl)
			  UNION SELECT * FROM aclexplode(schema_acl)) a
		LEFT JOIN pg_roles r ON r.oid = a.grantee
		ORDER BY a.grantee, a.privilege_type);
END
$$;
COMMENT ON FUNCTION ray._adopt_staging_table(jsonb, ray.batch_run_secret, oid) IS
'Make a run''s staging table its new target: renamed and given to the owner here, moved and completed by the statements returned, to be run as the owner.';

/* The staged rows are in the target: the job succeeded, in this transaction. */
CREATE OR REPLACE FUNCTION ray._published(id bigint, attempt integer, rows_moved bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job ray.job := ray._current_attempt(id, attempt, ARRAY['PUBLISHING']);
BEGIN
	IF job.job_id IS NULL THEN
		RETURN;
	END IF;
	UPDATE ray.job SET rows_written = rows_moved WHERE job_id = id;
	PERFORM ray._job_transition(id, 'SUCCEEDED',
		format('published %s rows into %s (%s)', rows_moved, job.target_table,
			   (SELECT b.plan ->> 'mode' FROM ray.batch_run b WHERE b.job_id = id)),
		'pg_ray worker');
END
$$;
COMMENT ON FUNCTION ray._published(bigint, integer, bigint) IS
'Record that a job''s rows were published: rows written and SUCCEEDED, in the publishing transaction.';

CREATE OR REPLACE FUNCTION ray._publish_deferred(id bigint, attempt integer, error text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	UPDATE ray.job SET message = format('waiting to publish into %s, tried again in a few seconds: %s',
										 target_table, error)
	WHERE job_id = id AND attempts = attempt AND state = 'PUBLISHING'
$$;
COMMENT ON FUNCTION ray._publish_deferred(bigint, integer, text) IS
'A job''s rows could not be published because of a passing conflict (a lock held on the target): say so; it is tried again.';

CREATE OR REPLACE FUNCTION ray._publish_failed(id bigint, attempt integer, error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF (ray._current_attempt(id, attempt, ARRAY['PUBLISHING'])).job_id IS NOT NULL THEN
		PERFORM ray._job_transition(id, 'FAILED',
			format('could not publish into %s: %s; nothing was published',
				   (SELECT target_table FROM ray.job WHERE job_id = id), error),
			'pg_ray worker');
	END IF;
END
$$;
COMMENT ON FUNCTION ray._publish_failed(bigint, integer, text) IS
'A job''s rows could not be published (a constraint, a privilege): it fails and publishes nothing.';
