/*-------------------------------------------------------------------------
 *
 * settings.h
 *		Definition of the pg_ray.* settings; their variables are declared
 *		in pg_ray.h.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_SETTINGS_H
#define PG_RAY_SETTINGS_H

extern void pg_ray_define_gucs(void);

#endif							/* PG_RAY_SETTINGS_H */
