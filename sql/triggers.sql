/*
 * sql/triggers.sql
 *		Every trigger of the catalog's tables.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

CREATE OR REPLACE TRIGGER resource_group_validate
	BEFORE INSERT OR UPDATE OF name, provider, head_spec, endpoint, options ON ray.resource_group
	FOR EACH ROW EXECUTE FUNCTION ray._resource_group_validate();

CREATE OR REPLACE TRIGGER worker_group_validate
	BEFORE INSERT OR UPDATE OF name, resource_type, spec, min_workers, max_workers,
		disk_gb, gpu_distribution_unit ON ray.worker_group
	FOR EACH ROW EXECUTE FUNCTION ray._worker_group_validate();

CREATE OR REPLACE TRIGGER job_validate
	BEFORE INSERT OR UPDATE OF resource_group, entrypoint, runtime_env, metadata,
		entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory,
		entrypoint_resources, max_attempts ON ray.job
	FOR EACH ROW EXECUTE FUNCTION ray._job_validate();

CREATE OR REPLACE TRIGGER node_spec_validate
	BEFORE UPDATE OF resource_type ON ray.node_spec
	FOR EACH ROW EXECUTE FUNCTION ray._node_spec_validate();

-- the role each row names is the one that has the name when the row is made
CREATE OR REPLACE TRIGGER bind_roles BEFORE INSERT ON ray.job
	FOR EACH ROW EXECUTE FUNCTION ray._bind_roles('owner', 'owner_oid');
CREATE OR REPLACE TRIGGER bind_roles BEFORE INSERT ON ray.model
	FOR EACH ROW EXECUTE FUNCTION ray._bind_roles('owner', 'owner_oid');
CREATE OR REPLACE TRIGGER bind_roles BEFORE INSERT ON ray.resource_group_grant
	FOR EACH ROW EXECUTE FUNCTION ray._bind_roles('grantee', 'grantee_oid');
CREATE OR REPLACE TRIGGER bind_roles BEFORE INSERT ON ray.model_grant
	FOR EACH ROW EXECUTE FUNCTION ray._bind_roles('grantee', 'grantee_oid', 'granted_by', 'granted_by_oid');
CREATE OR REPLACE TRIGGER bind_roles BEFORE INSERT ON ray.quota
	FOR EACH ROW EXECUTE FUNCTION ray._bind_roles('role', 'role_oid');
CREATE OR REPLACE TRIGGER bind_roles BEFORE INSERT ON ray.job_run_usage
	FOR EACH ROW EXECUTE FUNCTION ray._bind_roles('owner', 'owner_oid');
-- rows that logical replication applies are bound as well (it runs replica triggers only)
ALTER TABLE ray.job ENABLE ALWAYS TRIGGER bind_roles;
ALTER TABLE ray.model ENABLE ALWAYS TRIGGER bind_roles;
ALTER TABLE ray.resource_group_grant ENABLE ALWAYS TRIGGER bind_roles;
ALTER TABLE ray.model_grant ENABLE ALWAYS TRIGGER bind_roles;
ALTER TABLE ray.quota ENABLE ALWAYS TRIGGER bind_roles;
ALTER TABLE ray.job_run_usage ENABLE ALWAYS TRIGGER bind_roles;

/*
 * Wake the worker at commit whenever desired state changes.  The node spec
 * table has the trigger too: its seed rows below are then what wakes a worker
 * that waits for the extension to be created.
 */
CREATE OR REPLACE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.node_spec
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();
CREATE OR REPLACE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.resource_group
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();
CREATE OR REPLACE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.worker_group
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();
-- a quota raised or dropped lets waiting jobs start
CREATE OR REPLACE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.quota
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();
-- not for the progress a run reports, which asks nothing of the worker
CREATE OR REPLACE TRIGGER wake_worker AFTER INSERT OR UPDATE OF state, stop_requested_at OR DELETE ON ray.job
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();

CREATE OR REPLACE TRIGGER wake_worker AFTER INSERT OR UPDATE OR DELETE ON ray.node
	FOR EACH STATEMENT EXECUTE FUNCTION ray._wakeup_trigger();
