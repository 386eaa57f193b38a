/*-------------------------------------------------------------------------
 *
 * wakeup.h
 *		Waking the background worker at commit (wakeup.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/wakeup.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_WAKEUP_H
#define PG_RAY_WAKEUP_H

extern void pg_ray_wakeup_init(void);
extern bool pg_ray_is_worker;

#endif							/* PG_RAY_WAKEUP_H */
