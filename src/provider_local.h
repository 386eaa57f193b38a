/*-------------------------------------------------------------------------
 *
 * provider_local.h
 *		The local cluster manager: Ray nodes as processes on this host.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/provider_local.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_PROVIDER_LOCAL_H
#define PG_RAY_PROVIDER_LOCAL_H

extern void pg_ray_local_round(bool first_round);
extern long pg_ray_local_next_check_ms(void);
extern bool pg_ray_local_check(void);
extern void pg_ray_local_forget(void);
extern void pg_ray_local_shutdown(void);

#endif							/* PG_RAY_PROVIDER_LOCAL_H */
