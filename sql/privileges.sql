/*
 * sql/privileges.sql
 *		Who may read which table and call which function.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

REVOKE ALL ON ALL TABLES IN SCHEMA ray FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ray FROM PUBLIC;
-- procedures too (ray.purge_history): ALL FUNCTIONS leaves them out
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA ray FROM PUBLIC;

GRANT SELECT ON ray.job, ray.job_event, ray.job_log, ray.node_spec, ray.worker_group,
	ray.jobs, ray.job_events, ray.resource_groups, ray.worker_groups, ray.nodes,
	ray.model, ray.models, ray.model_grant, ray.queue, ray.quotas, ray.resource_group_events,
	ray.usage, ray.job_usage, ray.usage_by_role TO ray_user;
GRANT SELECT ON ALL TABLES IN SCHEMA ray TO ray_admin;
-- tokens are written by ray.register_cluster and read by the worker only
REVOKE ALL ON ray.resource_group_secret FROM ray_admin;
-- and the passwords of batch inference runs, by the worker only
REVOKE ALL ON ray.batch_run_secret FROM ray_admin;

GRANT INSERT, UPDATE, DELETE ON ray.node_spec TO ray_admin;

GRANT EXECUTE ON FUNCTION
	ray.submit_job(text, text, jsonb, jsonb, numeric, numeric, bigint, jsonb, integer, boolean, bytea, integer, text),
	ray.stop_job(bigint),
	ray.wait_job(bigint, interval),
	ray.job_logs(bigint),
	ray.worker_status(),
	ray.cluster_status(text),
	ray.register_model(text, text, bytea, jsonb),
	ray.register_model(text, text, text, jsonb),
	ray.drop_model(text, integer),
	ray.grant_model(text, name),
	ray.revoke_model(text, name)
TO ray_user;
-- it reads server files: for superusers and pg_read_server_files, checked inside
GRANT EXECUTE ON FUNCTION ray.zip_directory(text) TO ray_admin;
-- batch inference is planned as the caller, then queued by the definer
GRANT EXECUTE ON FUNCTION
	ray.batch_inference(text, text, text, text, text[], text[], text, text, boolean, jsonb, integer),
	ray.batch_inference_plan(text, text, text, text, text[], text[], text, text, boolean, jsonb),
	ray._plan_batch_inference(text, text, text, text[], text[], text, text, boolean, jsonb),
	ray._batch_options(jsonb, text),
	ray._describe_query(text),
	ray._is_numeric_type(text),
	ray._target_create_statement(text, text, jsonb, text[], text, text, text),
	ray._format_type(oid, integer),
	ray._submit_batch_inference(text, jsonb, integer)
TO ray_user;
-- the views of the queue and the quotas ask it for the role that reads them (it reads public catalogs)
GRANT EXECUTE ON FUNCTION ray._quota_applies(oid, oid) TO ray_user;
-- ray.wait_job, which runs as its caller, asks it about the caller's own transaction
GRANT EXECUTE ON FUNCTION ray._wait_job_obstacle(bigint) TO ray_user;
-- a run's login role asks for its run; they check that it is one
GRANT EXECUTE ON FUNCTION ray._run_spec(), ray._run_model_data(), ray._run_progress(bigint, bigint),
	ray._run_read(bigint, bigint, integer, integer), ray._run_read_query(bigint, bigint, integer, integer),
	ray._run_count(), ray._run_source_size()
TO ray_run;
GRANT EXECUTE ON FUNCTION
	ray.create_resource_group(text, text, text, jsonb),
	ray.register_cluster(text, text, text, jsonb),
	ray.alter_cluster(text, text, text, jsonb),
	ray.alter_resource_group(text, text, jsonb, boolean),
	ray.drop_resource_group(text, boolean),
	ray.add_worker_group(text, text, text, text, integer, integer, integer, numeric),
	ray.alter_worker_group(text, text, text, text, integer, integer, integer, numeric, boolean),
	ray.drop_worker_group(text, text, boolean),
	ray.grant_usage(text, name),
	ray.revoke_usage(text, name),
	ray.set_quota(text, name, integer, numeric, numeric, integer, numeric, integer),
	ray.drop_quota(text, name)
TO ray_admin;
-- the purge runs as its caller (it commits), and its batches as the extension's owner
GRANT EXECUTE ON PROCEDURE ray.purge_history(interval, bigint, bigint) TO ray_admin;
GRANT EXECUTE ON FUNCTION ray._purge_history_batch(timestamptz, integer) TO ray_admin;

-- a run's login role reaches its functions through ray_run, never with grants of its own (which an
-- update would record among the extension's initial privileges, for a role that soon goes)
GRANT USAGE ON SCHEMA ray TO ray_run;
-- ray_monitor reads what an admin reads, and changes nothing (granted last: an update from 0.1
-- appends it to the privileges 0.1 granted, and a fresh install must list them in that order)
-- It reads the views, and of the tables only what they and the usage need: not what users hand
-- in (runtime_env, metadata, working directories, models, logs) nor groups' options, which may
-- hold secrets, as a monitoring login's password is kept in more places than an admin's.
GRANT USAGE ON SCHEMA ray TO ray_monitor;
GRANT SELECT ON ray.jobs, ray.job_events, ray.resource_groups, ray.worker_groups, ray.nodes, ray.queue,
	ray.quotas, ray.resource_group_events, ray.usage, ray.job_usage, ray.usage_by_role,
	ray.node_spec, ray.worker_group, ray.node_lifetime, ray.job_run_usage, ray.job_event
TO ray_monitor;
-- (ray.jobs and ray.job_events read ray.job as their caller)
GRANT SELECT (job_id, owner, owner_oid, resource_group, kind, state, attempts, max_attempts, submitted_at,
			  started_at, finished_at, message, entrypoint, ray_submission_id, error_type, driver_exit_code,
			  rows_processed, rows_total, target_table, rows_written, stop_requested_at, stopped_by, priority,
			  cpus_asked, gpus_asked, ray_requeues)
ON ray.job TO ray_monitor;
GRANT EXECUTE ON FUNCTION ray.worker_status(), ray._quota_applies(oid, oid) TO ray_monitor;
