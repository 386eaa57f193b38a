/*-------------------------------------------------------------------------
 *
 * dispatch.h
 *		The background worker's traffic with Ray: planning requests in a
 *		round, sending them after commit, applying the answers.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_DISPATCH_H
#define PG_RAY_DISPATCH_H

extern void pg_ray_dispatch_plan(void);
extern void pg_ray_dispatch_start_planned(void);
extern void pg_ray_dispatch_discard_planned(void);
extern void pg_ray_dispatch_reset(void);
extern bool pg_ray_dispatch_apply_done(void);
extern long pg_ray_dispatch_next_poll_ms(void);

#endif							/* PG_RAY_DISPATCH_H */
