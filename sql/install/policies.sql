/*
 * sql/install/policies.sql
 *		Row-level security of the tables users read.
 *
 * This file runs once, in a fresh install (the install script); an update
 * script changes what it made with statements of its own in sql/updates/.
 *
 * Owners and grantees are matched by OID (see ray._bind_roles): a role
 * created under the name of a dropped one sees nothing of it, and a role
 * renamed keeps what it had.  Whoever has ray_monitor (ray_admin has it)
 * sees every row.
 *
 * Copyright (c) 2026, pg_ray developers
 */

ALTER TABLE ray.job ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_owner_or_admin ON ray.job FOR SELECT
	USING (owner_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
		   OR pg_has_role(current_user, 'ray_monitor', 'USAGE'));

ALTER TABLE ray.job_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_event_of_visible_job ON ray.job_event FOR SELECT
	USING (job_id IN (SELECT job_id FROM ray.job));

ALTER TABLE ray.model ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_owner_grantee_or_admin ON ray.model FOR SELECT
	USING (owner_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
		   OR pg_has_role(current_user, 'ray_monitor', 'USAGE')
		   OR EXISTS (SELECT FROM ray.model_grant g WHERE g.model = name AND g.granted_by_oid = owner_oid));

ALTER TABLE ray.model_grant ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_grant_of_party_or_admin ON ray.model_grant FOR SELECT
	USING (granted_by_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user) OR grantee_oid = 0
		   OR EXISTS (SELECT FROM pg_roles r WHERE r.oid = grantee_oid AND pg_has_role(current_user, r.oid, 'USAGE'))
		   OR pg_has_role(current_user, 'ray_monitor', 'USAGE'));

ALTER TABLE ray.job_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_log_of_visible_job ON ray.job_log FOR SELECT
	USING (job_id IN (SELECT job_id FROM ray.job));
