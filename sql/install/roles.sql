/*
 * sql/install/roles.sql
 *		The database guard, the roles ray_user, ray_admin and ray_run, and
 *		the schema's usage grant.
 *
 * This file runs once, in a fresh install (the install script); an update
 * script changes what it made with statements of its own in sql/updates/.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * The background worker runs in one database, so the extension lives there
 * and nowhere else.
 */
DO $guard$
DECLARE
	worker_db text := current_setting('pg_ray.database_name', true);
BEGIN
	IF worker_db IS NULL THEN
		RAISE EXCEPTION 'pg_ray must be loaded via shared_preload_libraries'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Add pg_ray to shared_preload_libraries in postgresql.conf and restart the server.';
	END IF;
	IF current_database() <> worker_db THEN
		RAISE EXCEPTION 'pg_ray can only be created in database "%"', worker_db
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'The pg_ray background worker runs in the database named by pg_ray.database_name.',
				  HINT = format('Connect to database "%s", or set pg_ray.database_name to "%s" and restart the server.',
								worker_db, current_database());
	END IF;
END
$guard$;

/*
 * Roles.  ray_admin manages resource groups and sees every job; ray_user
 * submits jobs on the groups it was granted; ray_monitor sees what an admin
 * sees and changes nothing (monitoring, BI tools), and ray_admin has it.
 * Roles are cluster-wide, so a second database's extension (or a
 * re-creation) finds them already there.
 */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ray_user') THEN
		CREATE ROLE ray_user NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ray_admin') THEN
		CREATE ROLE ray_admin NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('ray_admin', 'ray_user', 'MEMBER') THEN
		GRANT ray_user TO ray_admin;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ray_monitor') THEN
		CREATE ROLE ray_monitor NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('ray_admin', 'ray_monitor', 'MEMBER') THEN
		GRANT ray_monitor TO ray_admin;
	END IF;
	-- every batch inference run's login role, for pg_hba.conf (+ray_run)
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ray_run') THEN
		CREATE ROLE ray_run NOLOGIN;
	END IF;
END
$roles$;

GRANT USAGE ON SCHEMA ray TO ray_user;
