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

#include "dispatch.h"
#include "pg_ray.h"
#include "provider_local.h"
#include "publish.h"
#include "shmem.h"
#include "spi_util.h"
#include "worker_round.h"


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
