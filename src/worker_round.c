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
 * nothing while the extension is not installed, or while its schema is not
 * the version this library was built for (schema_version.c).
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
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "metrics_targets.h"
#include "pg_ray.h"
#include "provider_local.h"
#include "publish.h"
#include "schema_version.h"
#include "shmem.h"
#include "spi_util.h"
#include "worker_round.h"


/*
 * pg_ray_worker_round
 *		Run one round in its own transaction.  The first round after the
 *		worker starts also recovers from whatever a previous worker was doing
 *		when it stopped.  The requests to Ray that the round plans are sent
 *		once it has committed.
 *
 *		Returns false if the schema installed is not the library's: the
 *		round then did nothing, and says so in ray.worker_status() and, once
 *		for each version it finds, in the log.  The worker retries it like a
 *		failed round, so it resumes by itself after ALTER EXTENSION pg_ray
 *		UPDATE, and its first round that works recovers as after a start.
 */
bool
pg_ray_worker_round(bool first_round)
{
	static char *reported_version = NULL;
	char	   *installed;
	bool		current;
	char		message[PG_RAY_ERROR_LEN];

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pg_ray_worker_transaction_limits();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());

	installed = pg_ray_installed_version();
	current = pg_ray_schema_is_current(installed);
	if (current)
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
		pgstat_report_activity(STATE_RUNNING, "pg_ray: writing the metrics targets");
		pg_ray_metrics_targets_round();
		pgstat_report_activity(STATE_RUNNING, "pg_ray: publishing batch inference results");
		pg_ray_publish_round();
		pgstat_report_activity(STATE_RUNNING, "pg_ray: planning requests to Ray");
		pg_ray_dispatch_plan();
	}
	else if (installed != NULL)
	{
		snprintf(message, sizeof(message), "pg_ray library %s needs schema version %s, found %s",
				 PG_RAY_VERSION, PG_RAY_VERSION, installed);
		if (reported_version == NULL || strcmp(reported_version, installed) != 0)
		{
			pg_ray_report_old_schema(LOG, installed);
			if (reported_version != NULL)
				pfree(reported_version);
			reported_version = MemoryContextStrdup(TopMemoryContext, installed);
		}
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (current)
	{
		pg_ray_jobs_changed();
		pg_ray_dispatch_start_planned();
		if (reported_version != NULL)
		{
			pfree(reported_version);
			reported_version = NULL;
		}
	}
	else
	{
		/* nothing to poll, ask or watch without it */
		pg_ray_dispatch_reset();
		pg_ray_local_forget();
	}
	if (installed != NULL && !current)
	{
		pg_ray_shared_note_round(message);
		return false;
	}
	pg_ray_shared_note_round(NULL);
	return true;
}
