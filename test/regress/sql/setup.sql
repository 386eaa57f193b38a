-- Fresh extension and the roles the other regression tests use.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_ray CASCADE;
DROP ROLE IF EXISTS regress_admin;
DROP ROLE IF EXISTS regress_alice;
DROP ROLE IF EXISTS regress_bob;
DROP ROLE IF EXISTS regress_team;
RESET client_min_messages;

CREATE EXTENSION pg_ray;
SELECT extversion FROM pg_extension WHERE extname = 'pg_ray';

-- the extension creates its roles, ray_admin being a ray_user too
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('ray_admin', 'ray_user') ORDER BY 1;
SELECT pg_has_role('ray_admin', 'ray_user', 'MEMBER') AS admin_is_user;

CREATE ROLE regress_admin LOGIN IN ROLE ray_admin;
CREATE ROLE regress_team NOLOGIN IN ROLE ray_user;
CREATE ROLE regress_alice LOGIN IN ROLE ray_user, regress_team;
CREATE ROLE regress_bob LOGIN IN ROLE ray_user;

-- seeded node specs
SELECT name, resource_type, num_cpus, memory_mb, num_gpus, cpu_units, builtin
FROM ray.node_spec ORDER BY resource_type, num_cpus, name;

-- the worker runs and answers
SELECT running, pid IS NOT NULL AS has_pid FROM ray.worker_status();

-- settings of the extension
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'pg\_ray.%' ORDER BY name;

-- a misspelled setting under the reserved prefix is an error
SET pg_ray.max_worker_per_group = 3;
-- the pool's names must be names useradd takes, with room for a number
ALTER SYSTEM SET pg_ray.node_os_user_prefix = 'Pgray-';
ALTER SYSTEM SET pg_ray.node_os_user_prefix = 'pgray-group-of-a-long-name-';
