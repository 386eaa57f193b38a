/*-------------------------------------------------------------------------
 *
 * worker_round.c
 *		One round of the background worker's work, in one transaction.
 *
 * A round reads the catalog, compares desired state with observed state and
 * acts.  The catalog logic itself lives in SQL functions of the extension
 * (ray._worker_recover, ray._worker_reconcile, ray._worker_work) so that the
 * state machine is written once, next to the tables and the API functions
 * that share its transition functions; this file runs them through SPI the
 * way worker_spi does, has the dispatcher plan the requests to Ray, and does
 * nothing while the extension is not installed.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/worker_round.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/snapmgr.h"

#include "pg_ray.h"


/*
 * pg_ray_worker_round
 *		Run one round in its own transaction.  The first round after the
 *		worker starts also recovers from whatever a previous worker was doing
 *		when it stopped.  The requests to Ray that the round plans are sent
 *		once it has committed.
 */
void
pg_ray_worker_round(bool first_round)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());

	installed = OidIsValid(get_extension_oid("pg_ray", true));
	if (installed)
	{
		if (first_round)
		{
			pgstat_report_activity(STATE_RUNNING, "pg_ray: recovering after start");
			pg_ray_spi_exec("SELECT ray._worker_recover()", 0, NULL, NULL, NULL);
		}
		pgstat_report_activity(STATE_RUNNING, "pg_ray: reconciling");
		pg_ray_spi_exec("SELECT ray._worker_reconcile()", 0, NULL, NULL, NULL);
		if (pg_ray_local_nodes)
		{
			pgstat_report_activity(STATE_RUNNING, "pg_ray: managing local Ray nodes");
			pg_ray_local_round(first_round);
		}
		pgstat_report_activity(STATE_RUNNING, "pg_ray: publishing batch inference results");
		pg_ray_publish_round();
		pgstat_report_activity(STATE_RUNNING, "pg_ray: planning requests to Ray");
		pg_ray_dispatch_plan();
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (installed)
	{
		pg_ray_jobs_changed();
		pg_ray_dispatch_start_planned();
	}
	else
	{
		/* nothing to poll, ask or watch without it */
		pg_ray_dispatch_reset();
		pg_ray_local_forget();
	}
	pg_ray_shared_note_round(NULL);
}

/*
 * pg_ray_spi_exec
 *		Run one statement of the worker through SPI, with parameters (nulls
 *		as SPI_execute_with_args takes them, NULL for none); any failure is
 *		an error that aborts what the worker is doing.
 */
void
pg_ray_spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

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
