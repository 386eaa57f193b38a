/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The pg_ray background worker: registration and main loop.
 *
 * One worker per cluster, connected to pg_ray.database_name.  Its loop is
 * the one worker_spi and autoprewarm use: do a round of work, then sleep on
 * the latch until a committing transaction wakes it (see wakeup.c), a signal
 * arrives, or a retry timeout after a failed round passes.  The sleep also
 * watches the sockets of the requests to Ray in flight (http.c) and the next
 * status poll, so answers are applied as they arrive.  While idle, with no
 * runs to follow, it runs no queries but the history purge's, once every
 * pg_ray.purge_interval (purge.c).  SIGTERM is PostgreSQL's own
 * die(), SIGHUP reloads the configuration, and the postmaster restarts the
 * worker after a crash.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"

#include "dispatch.h"
#include "fault.h"
#include "http.h"
#include "pg_ray.h"
#include "provider_local.h"
#include "publish.h"
#include "purge.h"
#include "shmem.h"
#include "wakeup.h"
#include "worker.h"
#include "worker_round.h"

static bool pg_ray_worker_try(bool (*work) (bool), bool arg);
static bool pg_ray_worker_apply(bool unused);

static bool pg_ray_worker_applied = false;

static void pg_ray_worker_at_exit(int code, Datum arg);

/*
 * pg_ray_register_worker
 *		Register the worker with the postmaster; called from _PG_init while
 *		shared_preload_libraries is processed.
 */
void
pg_ray_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = pg_ray_worker_restart_seconds;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_ray");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pg_ray_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_ray worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_ray worker");
	RegisterBackgroundWorker(&worker);
}

/*
 * pg_ray_worker_main
 *		Entry point of the background worker.
 */
void
pg_ray_worker_main(Datum main_arg)
{
	bool		recovered = false;
	bool		need_round = true;
	bool		last_failed = false;
	TimestampTz retry_at = 0;
	MemoryContext worker_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	pg_ray_is_worker = true;
	pg_ray_shared_attach_worker();
	before_shmem_exit(pg_ray_worker_at_exit, (Datum) 0);

	BackgroundWorkerInitializeConnection(pg_ray_database_name, NULL, 0);
	pgstat_report_appname("pg_ray worker");

	worker_context = AllocSetContextCreate(TopMemoryContext,
										   "pg_ray worker",
										   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_context);

	ereport(LOG,
			(errmsg("pg_ray worker started in database \"%s\"",
					pg_ray_database_name)));

	for (;;)
	{
		long		timeout_ms;
		long		retry_ms;
		long		local_ms;
		long		publish_ms;
		long		purge_ms;
		int			rc;

		MemoryContextReset(worker_context);

		/*
		 * The startup recovery is part of the first round; until a round
		 * that includes it succeeds, every round includes it.
		 */
		if (need_round || (last_failed && GetCurrentTimestamp() >= retry_at))
		{
			pg_ray_fault_point("before_round");
			last_failed = !pg_ray_worker_try(pg_ray_worker_round, !recovered);
			if (!last_failed)
				recovered = true;
			else
				retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   pg_ray_error_retry_seconds * 1000L);
			need_round = false;
		}

		/* a batch of the history purge, between rounds (purge.c) */
		if (!last_failed && pg_ray_purge_next_ms() == 0)
			(void) pg_ray_worker_try(pg_ray_purge_step, false);

		/* sleep until a commit, a socket of a request to Ray, a poll or a retry */
		timeout_ms = pg_ray_dispatch_next_poll_ms();
		local_ms = pg_ray_local_next_check_ms();
		if (local_ms >= 0 && (timeout_ms < 0 || local_ms < timeout_ms))
			timeout_ms = local_ms;
		publish_ms = pg_ray_publish_next_ms();
		if (publish_ms >= 0 && (timeout_ms < 0 || publish_ms < timeout_ms))
			timeout_ms = publish_ms;
		purge_ms = pg_ray_purge_next_ms();
		if (purge_ms >= 0 && (timeout_ms < 0 || purge_ms < timeout_ms))
			timeout_ms = purge_ms;
		if (last_failed)
		{
			/* polls and cool-downs wait for the retry: a round serves them */
			retry_ms = Max(0, (long) ((retry_at - GetCurrentTimestamp()) / 1000));
			timeout_ms = retry_ms;
		}
		pgstat_report_activity(STATE_IDLE, NULL);
		rc = pg_ray_http_wait(timeout_ms);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			need_round = true;
		}
		pg_ray_shared_note_wakeup((rc & WL_LATCH_SET) != 0);

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* answers from Ray, then whatever they make possible */
		if (pg_ray_worker_try(pg_ray_worker_apply, false) && pg_ray_worker_applied)
			need_round = true;
		if (pg_ray_dispatch_next_poll_ms() == 0)
			need_round = true;
		/* a local node's process ended, or one is starting or stopping */
		if (pg_ray_local_check())
			need_round = true;
		/* results whose target was locked are to be published again */
		if (pg_ray_publish_next_ms() == 0)
			need_round = true;
		/* after a failed round, nothing but the retry time brings the next */
		if (last_failed && GetCurrentTimestamp() < retry_at)
			need_round = false;
	}
}

/*
 * pg_ray_worker_at_exit
 *		before_shmem_exit callback: the local provider's say on its nodes.
 */
static void
pg_ray_worker_at_exit(int code, Datum arg)
{
	pg_ray_local_shutdown();
}

/*
 * pg_ray_worker_apply
 *		Apply the answers that arrived from Ray, if any.
 */
static bool
pg_ray_worker_apply(bool unused)
{
	pg_ray_worker_applied = pg_ray_dispatch_apply_done();
	if (pg_ray_worker_applied)
		pg_ray_shared_note_round(NULL);
	return true;
}

/*
 * pg_ray_worker_try
 *		Run one unit of work (a round, or applying answers) in its own
 *		transaction; false if it failed or could not be done (the work
 *		returned false: a round under another version's schema).  The work
 *		counts itself in ray.worker_status(); errors are counted here.  An
 *		error is logged and survived, so that one bad row does not put the
 *		worker into a crash-and-restart loop; the caller retries after a
 *		pause.
 */
static bool
pg_ray_worker_try(bool (*work) (bool), bool arg)
{
	MemoryContext loop_context = CurrentMemoryContext;
	volatile bool succeeded = false;

	PG_TRY();
	{
		succeeded = work(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/*
		 * As autovacuum's launcher does: report the error, abort the
		 * transaction and go on with a clean error state.  Requests the
		 * aborted transaction planned are never sent.
		 */
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(loop_context);
		EmitErrorReport();
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pg_ray_dispatch_discard_planned();
		RESUME_INTERRUPTS();

		pg_ray_shared_note_round(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();

	MemoryContextSwitchTo(loop_context);
	return succeeded;
}
