/*-------------------------------------------------------------------------
 *
 * purge.c
 *		History retention in the background worker: every
 *		pg_ray.purge_interval, finished jobs and resource group events older
 *		than pg_ray.history_retention go, one batch per transaction.
 *
 * The purge itself is ray._purge_history_batch (sql/history.sql), which an
 * admin's ray.purge_history also runs.  Here it is paced: one batch per
 * step, each in a transaction of its own between the worker's rounds, so
 * that a purge of a long history never makes a round wait, and no batch
 * holds its locks for longer than one batch takes.  While batches find
 * something, the next follows at once; once one finds nothing, the purge
 * waits for the next interval.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/purge.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_ray.h"
#include "purge.h"
#include "schema_version.h"
#include "spi_util.h"

/* finished jobs (and resource group events) in one batch */
#define PURGE_BATCH_SIZE 500

/* when a batch last found nothing (0: none has yet), and when one may retry after an error */
static TimestampTz purge_idle_since = 0;
static TimestampTz purge_retry_at = 0;

/*
 * pg_ray_purge_step
 *		Run one batch of the purge in its own transaction, if the schema
 *		installed is the library's.  A batch that fails is tried again after
 *		pg_ray.error_retry_seconds, not at once.
 */
bool
pg_ray_purge_step(bool unused)
{
	bool		found = false;
	char	   *installed;

	purge_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												 pg_ray_error_retry_seconds * 1000L);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pg_ray_worker_transaction_limits();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	installed = pg_ray_installed_version();
	if (pg_ray_schema_is_current(installed))
	{
		Datum		batch_size = Int32GetDatum(PURGE_BATCH_SIZE);
		Oid			types[1] = {INT4OID};
		bool		isnull;

		pgstat_report_activity(STATE_RUNNING, "pg_ray: purging history");
		pg_ray_spi_exec("SELECT b.jobs + b.resource_group_events > 0 FROM ray._purge_history_batch("
						"now() - current_setting('pg_ray.history_retention')::interval, $1) b",
						1, types, &batch_size, NULL);
		found = SPI_processed == 1 &&
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	purge_retry_at = 0;
	purge_idle_since = found ? 0 : GetCurrentTimestamp();
	return true;
}

/*
 * pg_ray_purge_next_ms
 *		Milliseconds until the next batch of the purge is due (0: now), or
 *		-1 if pg_ray.purge_interval turns it off.  The interval is counted
 *		from the batch that last found nothing, as it is set now: a reload
 *		that shortens it takes effect at once.
 */
long
pg_ray_purge_next_ms(void)
{
	TimestampTz due;

	if (pg_ray_purge_interval_s == 0)
		return -1;
	due = purge_idle_since == 0 ? 0 :
		TimestampTzPlusMilliseconds(purge_idle_since, pg_ray_purge_interval_s * 1000L);
	due = Max(due, purge_retry_at);
	return Max(0, (long) ((due - GetCurrentTimestamp()) / 1000));
}
