/*-------------------------------------------------------------------------
 *
 * package.h
 *		Zipping a directory on the server (package.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/package.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_PACKAGE_H
#define PG_RAY_PACKAGE_H

extern bytea *pg_ray_zip_path(const char *path, const char *extra_name,
							  const char *extra_content);

#endif							/* PG_RAY_PACKAGE_H */
