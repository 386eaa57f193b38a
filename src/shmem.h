/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		The background worker's state in shared memory (shmem.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_SHMEM_H
#define PG_RAY_SHMEM_H

#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* Length of the last error message kept in shared memory, with its NUL. */
#define PG_RAY_ERROR_LEN 256

/*
 * State of the background worker, in shared memory.  The worker writes it;
 * any backend reads it for ray.worker_status() and uses worker_procno to set
 * the worker's latch when a transaction that changed desired state commits.
 * Everything is protected by the spinlock.
 */
typedef struct PgRaySharedState
{
	slock_t		mutex;
	pid_t		worker_pid;		/* 0 when no worker runs */
	int			worker_procno;	/* index in ProcGlobal->allProcs, or -1 */
	TimestampTz started_at;
	TimestampTz last_wakeup_at;
	TimestampTz last_round_at;
	uint64		latch_wakeups;	/* wakeups caused by a SetLatch */
	uint64		timeout_wakeups;	/* wakeups caused by a timeout */
	uint64		rounds;			/* rounds of work completed */
	uint64		round_errors;	/* rounds that ended in an error */
	uint64		wakeup_requests;	/* commits that asked for a wakeup */
	char		last_error[PG_RAY_ERROR_LEN];
	ConditionVariable jobs_changed; /* broadcast when the worker moved jobs */
} PgRaySharedState;

extern void pg_ray_shmem_request(void);
extern void pg_ray_shmem_startup(void);
extern PgRaySharedState *pg_ray_shared_state(void);
extern void pg_ray_shared_attach_worker(void);
extern void pg_ray_shared_note_wakeup(bool by_latch);
extern void pg_ray_shared_note_round(const char *error_message);
extern void pg_ray_jobs_changed(void);

#endif							/* PG_RAY_SHMEM_H */
