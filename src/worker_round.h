/*-------------------------------------------------------------------------
 *
 * worker_round.h
 *		One round of the background worker's work (worker_round.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/worker_round.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_WORKER_ROUND_H
#define PG_RAY_WORKER_ROUND_H

extern bool pg_ray_worker_round(bool first_round);

#endif							/* PG_RAY_WORKER_ROUND_H */
