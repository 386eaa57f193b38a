/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The background worker: registration and main loop (worker.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_WORKER_H
#define PG_RAY_WORKER_H

/* The name the background worker reports as its actor in event rows. */
#define PG_RAY_WORKER_ACTOR "pg_ray worker"

extern void pg_ray_register_worker(void);
extern PGDLLEXPORT void pg_ray_worker_main(Datum main_arg);

#endif							/* PG_RAY_WORKER_H */
