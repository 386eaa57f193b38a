/*-------------------------------------------------------------------------
 *
 * purge.h
 *		History retention in the background worker (purge.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/purge.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_PURGE_H
#define PG_RAY_PURGE_H

extern bool pg_ray_purge_step(bool unused);
extern long pg_ray_purge_next_ms(void);

#endif							/* PG_RAY_PURGE_H */
