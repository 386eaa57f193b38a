/*-------------------------------------------------------------------------
 *
 * schema_version.h
 *		The schema version the library was built for (schema_version.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/schema_version.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_SCHEMA_VERSION_H
#define PG_RAY_SCHEMA_VERSION_H

extern char *pg_ray_installed_version(void);
extern bool pg_ray_schema_is_current(const char *installed);
extern void pg_ray_report_old_schema(int elevel, const char *installed);
extern void pg_ray_require_current_schema(void);

#endif							/* PG_RAY_SCHEMA_VERSION_H */
