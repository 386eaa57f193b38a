/*
 * sql/updates/0.1--0.2.sql
 *		What changes in the objects made once when pg_ray 0.1 becomes 0.2.
 *
 * The update script from 0.1 runs this first, then every file that is run
 * again on each update (the Makefile's SQL_UPDATE), so functions, triggers,
 * views and privileges need nothing here unless one is dropped or changes
 * its signature.  The same changes are in sql/install/, for a fresh install;
 * test/integration/test_upgrade.py checks that both give the same catalog.
 *
 * Copyright (c) 2026, pg_ray developers
 */

-- batch runs are dumped with their jobs (0.1 left them out of a backup)
SELECT pg_catalog.pg_extension_config_dump('ray.batch_run', '');
