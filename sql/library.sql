/*
 * sql/library.sql
 *		The SQL functions written in C, in the pg_ray library.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

CREATE OR REPLACE FUNCTION ray._calling_role()
RETURNS oid
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'pg_ray_calling_role';
COMMENT ON FUNCTION ray._calling_role() IS
'The role the API call in progress was made as (the current user at the call, recorded by pg_ray_api).';

CREATE OR REPLACE FUNCTION ray._wakeup_trigger()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_wakeup_trigger';
COMMENT ON FUNCTION ray._wakeup_trigger() IS
'Statement trigger: wake the pg_ray worker when this transaction commits.';

CREATE OR REPLACE FUNCTION ray.worker_status(
	OUT running boolean,
	OUT pid integer,
	OUT started_at timestamptz,
	OUT last_wakeup_at timestamptz,
	OUT last_round_at timestamptz,
	OUT wakeup_requests bigint,
	OUT latch_wakeups bigint,
	OUT timeout_wakeups bigint,
	OUT rounds bigint,
	OUT round_errors bigint,
	OUT last_error text)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_worker_status';
COMMENT ON FUNCTION ray.worker_status() IS
'Whether the pg_ray background worker runs, and what it has done since it started.';

CREATE OR REPLACE FUNCTION ray._check_dashboard_url(url text)
RETURNS text
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'pg_ray_check_dashboard_url';
COMMENT ON FUNCTION ray._check_dashboard_url(text) IS
'The dashboard URL normalized, or an error: http(s) only, plain http only to a loopback address.';

CREATE OR REPLACE FUNCTION ray._http_ray_version(url text, token text, ca_file text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_http_ray_version';
COMMENT ON FUNCTION ray._http_ray_version(text, text, text) IS
'GET /api/version of a Ray dashboard, in this backend: the Ray version, or an error saying what was tried.';

CREATE OR REPLACE FUNCTION ray._http_job_logs(url text, token text, ca_file text, submission_id text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_http_job_logs';
COMMENT ON FUNCTION ray._http_job_logs(text, text, text, text) IS
'GET /api/jobs/{id}/logs of a Ray dashboard, in this backend, bounded by pg_ray.max_log_bytes.';

CREATE OR REPLACE FUNCTION ray._http_cluster_status(url text, token text, ca_file text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_http_cluster_status';
COMMENT ON FUNCTION ray._http_cluster_status(text, text, text) IS
'GET /api/cluster_status?format=1 of a Ray dashboard, in this backend: the JSON text of the autoscaler''s report.';

CREATE OR REPLACE FUNCTION ray.zip_directory(path text)
RETURNS bytea
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_zip_directory';
COMMENT ON FUNCTION ray.zip_directory(text) IS
'Zip a directory on the database server, files at the root, for submit_job''s working_dir. Superusers and members of pg_read_server_files only.';

CREATE OR REPLACE FUNCTION ray._describe_query(query text)
RETURNS TABLE (column_name text, data_type text)
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'pg_ray_describe_query';
COMMENT ON FUNCTION ray._describe_query(text) IS
'The columns (name, type) a source query yields, without running it; an error unless it is one SELECT.';

CREATE OR REPLACE FUNCTION ray._canonical_type(type_name text)
RETURNS text
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'pg_ray_canonical_type';
COMMENT ON FUNCTION ray._canonical_type(text) IS
'A type name written again by format_type, or an error unless it is one type name a column can have.';

CREATE OR REPLACE FUNCTION ray._format_type(type oid, typmod integer)
RETURNS text
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'pg_ray_format_type';
COMMENT ON FUNCTION ray._format_type(oid, integer) IS
'format_type, with the schema of every type not in pg_catalog: how a batch inference plan names types, the same under any search_path.';

CREATE OR REPLACE FUNCTION ray._scram_verifier(password text)
RETURNS text
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'pg_ray_scram_verifier';
COMMENT ON FUNCTION ray._scram_verifier(text) IS
'The SCRAM-SHA-256 verifier of a password, as CREATE ROLE takes it, so that the password is in no SQL text.';

CREATE OR REPLACE FUNCTION ray._runner_package(credentials text DEFAULT NULL)
RETURNS bytea
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_runner_package';
COMMENT ON FUNCTION ray._runner_package(text) IS
'The batch inference runner installed with the extension, zipped as the working directory of a run; with a run''s credentials (JSON) as pg_ray_run_credentials.json.';

CREATE OR REPLACE FUNCTION ray.wait_job(job_id bigint, timeout interval DEFAULT '1 hour')
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_wait_job';
COMMENT ON FUNCTION ray.wait_job(bigint, interval) IS
'Wait until a job has finished or the timeout has passed, and return its state; reports state changes as NOTICEs. Cancel with the usual query cancel.';

CREATE OR REPLACE FUNCTION ray._run_read(lo_page bigint, hi_page bigint, shard integer, shards integer)
RETURNS SETOF record
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_run_read';
COMMENT ON FUNCTION ray._run_read(bigint, bigint, integer, integer) IS
'For a runner: the rows of a partition of its source (pages of a table, or a shard of a query), read as the run''s owner, columns as text.';

CREATE OR REPLACE FUNCTION ray._run_count()
RETURNS bigint
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_run_count';
COMMENT ON FUNCTION ray._run_count() IS
'For a runner: the rows of its source in the transaction''s snapshot, counted as the run''s owner.';

CREATE OR REPLACE FUNCTION ray._row_held_here(rel regclass, row_tid tid)
RETURNS text
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'pg_ray_row_held_here';
COMMENT ON FUNCTION ray._row_held_here(regclass, tid) IS
'changed if this transaction made the row version at row_tid, locked if it locks, updated or deleted it, else NULL.';
