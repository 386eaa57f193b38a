/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *		SPI helpers of the background worker: one statement, and one piece
 *		of work in a subtransaction of its own.
 *
 * The round (worker_round.c), the dispatcher, the local provider and the
 * publishing of results all run their catalog statements through these,
 * inside the transaction of a round or of applying answers, which
 * pg_ray_worker_transaction_limits bounds (and each statement, by
 * pg_ray.worker_statement_timeout).  They call nothing else of
 * pg_ray, so that every module may use them.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/spi_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/timeout.h"

#include "pg_ray.h"
#include "spi_util.h"

/*
 * pg_ray_worker_transaction_limits
 *		At the start of each transaction of the worker: wait at most
 *		pg_ray.worker_lock_timeout for any lock.  A row a user's open
 *		transaction holds would otherwise hold up the round, and with it
 *		every user's jobs; with the limit that transaction fails and is
 *		retried.  Set for this transaction only (SET LOCAL).
 */
void
pg_ray_worker_transaction_limits(void)
{
	char		value[32];

	snprintf(value, sizeof(value), "%dms", pg_ray_worker_lock_timeout_ms);
	(void) set_config_option("lock_timeout", value, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * pg_ray_spi_exec
 *		Run one statement of the worker through SPI, with parameters (nulls
 *		as SPI_execute_with_args takes them, NULL for none), within
 *		pg_ray.worker_statement_timeout; any failure is an error that aborts
 *		what the worker is doing.
 */
void
pg_ray_spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	pg_ray_spi_exec_within(pg_ray_worker_statement_timeout_ms, sql, nargs, types, values, nulls);
}

/*
 * pg_ray_spi_exec_within
 *		pg_ray_spi_exec with a statement timeout of its own, for a statement
 *		whose time grows with a user's data (publishing a run's rows).  A
 *		background worker has no statement_timeout of its own: it is armed
 *		here, unless a wider one already runs.
 */
void
pg_ray_spi_exec_within(int timeout_ms, const char *sql, int nargs, Oid *types, Datum *values,
					   const char *nulls)
{
	bool		timed;
	volatile int ret = 0;

	timed = IsBackgroundWorker && !get_timeout_active(STATEMENT_TIMEOUT);
	if (timed)
		enable_timeout_after(STATEMENT_TIMEOUT, timeout_ms);
	PG_TRY();
	{
		ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		if (timed)
		{
			disable_timeout(STATEMENT_TIMEOUT, false);
			/* fired after the statement ended: no cancel left for the worker's loop */
			if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
				QueryCancelPending = false;
		}
	}
	PG_END_TRY();

	if (ret < 0)
		elog(ERROR, "pg_ray worker: \"%s\" failed with SPI code %d", sql, ret);
}

/*
 * pg_ray_subtransaction
 *		Run work(arg) in a subtransaction of its own, so that one thing that
 *		fails (an answer that cannot be applied, a node that cannot start)
 *		is rolled back alone and the round goes on with the rest.  Returns
 *		NULL on success, or the error, copied into the caller's memory
 *		context, for the caller to report and free.
 */
ErrorData *
pg_ray_subtransaction(void (*work) (void *arg), void *arg)
{
	MemoryContext outer = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile error = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(outer);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(outer);
		error = CopyErrorData();
		FlushErrorState();
		/* SPI is reset by the subtransaction's abort; the caller goes on */
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(outer);
	CurrentResourceOwner = owner;
	return error;
}
