/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *		Wake the background worker when a transaction that changed desired
 *		state commits.
 *
 * The worker sleeps on its latch and runs no queries while there is nothing
 * to do.  Triggers on the catalog tables that hold desired state note that
 * the current transaction changed something; a transaction callback then sets
 * the worker's latch at commit, and only at commit, so the worker never wakes
 * to look at rows it cannot see yet, and a rolled-back change wakes nobody.
 * This is the same idea as pg_net's commit-time wakeup.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/wakeup.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "storage/latch.h"
#include "storage/proc.h"

#include "shmem.h"
#include "wakeup.h"

/* True in the pg_ray worker itself: its own writes need no wakeup. */
bool		pg_ray_is_worker = false;

/* Set by the trigger, consumed at the end of the transaction. */
static bool wakeup_pending = false;

static void pg_ray_wakeup_xact_callback(XactEvent event, void *arg);

PG_FUNCTION_INFO_V1(pg_ray_wakeup_trigger);

/*
 * pg_ray_wakeup_init
 *		Install the transaction callback in every backend that loads the
 *		library (all of them, since it is preloaded).
 */
void
pg_ray_wakeup_init(void)
{
	RegisterXactCallback(pg_ray_wakeup_xact_callback, NULL);
}

/*
 * pg_ray_wakeup_trigger
 *		Statement-level AFTER trigger on the desired-state tables: remember
 *		that this transaction must wake the worker when it commits.
 */
Datum
pg_ray_wakeup_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ray._wakeup_trigger() must be called as a trigger")));

	if (!pg_ray_is_worker)
		wakeup_pending = true;

	return PointerGetDatum(NULL);
}

/*
 * pg_ray_wakeup_xact_callback
 *		At commit, set the worker's latch if the transaction asked for it.
 *		Any other end of the transaction just forgets the request.  Nothing
 *		here may fail: the transaction has already committed.
 */
static void
pg_ray_wakeup_xact_callback(XactEvent event, void *arg)
{
	PgRaySharedState *state;
	int			procno;

	if (!wakeup_pending)
		return;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wakeup_pending = false;
			return;
		default:
			return;
	}

	wakeup_pending = false;
	state = pg_ray_shared_state();

	SpinLockAcquire(&state->mutex);
	state->wakeup_requests++;
	procno = state->worker_procno;
	SpinLockRelease(&state->mutex);

	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}
