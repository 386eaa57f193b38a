/*-------------------------------------------------------------------------
 *
 * publish.h
 *		Publishing the results of batch inference runs (publish.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/publish.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_PUBLISH_H
#define PG_RAY_PUBLISH_H

extern void pg_ray_publish_round(void);
extern long pg_ray_publish_next_ms(void);

#endif							/* PG_RAY_PUBLISH_H */
