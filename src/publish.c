/*-------------------------------------------------------------------------
 *
 * publish.c
 *		Publishing the results of batch inference runs: staged rows into
 *		their target, as the job's owner, exactly once.
 *
 * A run writes its results into a staging table of its attempt.  When Ray
 * reports the run succeeded, the job is PUBLISHING; in the worker's next
 * round, this moves the staged rows into the target table (append,
 * overwrite or upsert) and marks the job SUCCEEDED in the same
 * transaction, then drops the staging table; a target the run creates is
 * the staging table itself, moved into place (ray._adopt_staging_table),
 * rather than a copy of every row.  The catalog side
 * (ray._publish_plan, ray._published, ray._publish_failed) decides what to
 * run; this file runs the data statements with the identity and privileges
 * of the job's owner, as REFRESH MATERIALIZED VIEW and autovacuum run user
 * code, which plpgsql cannot do.  A crash before the commit leaves the job
 * PUBLISHING and its staging table as they were, so the next round
 * publishes again from the start; a crash after it has nothing left to do.
 *
 * The worker must not wait on a user: a target that a long transaction
 * holds locked is not waited for beyond a second, and its job is tried
 * again a few seconds later, as it is after a deadlock or a serialization
 * failure.  Any other error fails the job.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/publish.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "pg_ray.h"
#include "publish.h"
#include "spi_util.h"

typedef struct PublishJob
{
	int64		job_id;
	int32		attempt;
	char	   *error;			/* the error of a failed publish, or NULL */
	const char *outcome_sql;	/* how that error is recorded */
} PublishJob;

/* how long publishing waits for a lock on a target, and when it tries again */
#define PUBLISH_LOCK_TIMEOUT "1s"
#define PUBLISH_RETRY_MS 5000

/* when jobs left PUBLISHING by a passing conflict are tried again; 0: none */
static TimestampTz publish_retry_at = 0;

static void publish_one(void *arg);
static void publish_record_outcome(void *arg);
static bool publish_error_passes(int sqlerrcode);

/*
 * pg_ray_publish_round
 *		Publish every job whose run has succeeded, each in a subtransaction
 *		of its own so that one target that refuses its rows (a constraint,
 *		a privilege the owner lost) fails that job alone.
 */
void
pg_ray_publish_round(void)
{
	int			n;
	PublishJob *jobs;

	publish_retry_at = 0;
	pg_ray_spi_exec("SELECT job_id, attempts FROM ray.job WHERE state = 'PUBLISHING' ORDER BY job_id",
					0, NULL, NULL, NULL);
	n = (int) SPI_processed;
	if (n == 0)
		return;
	jobs = palloc0(sizeof(PublishJob) * n);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		jobs[i].job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		jobs[i].attempt = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}

	for (int i = 0; i < n; i++)
	{
		ErrorData  *error = pg_ray_subtransaction(publish_one, &jobs[i]);
		bool		passes;

		if (error == NULL)
			continue;
		jobs[i].error = pstrdup(error->message);
		passes = publish_error_passes(error->sqlerrcode);
		FreeErrorData(error);
		if (passes)
			publish_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), PUBLISH_RETRY_MS);
		jobs[i].outcome_sql = passes ? "SELECT ray._publish_deferred($1, $2, $3)"
			: "SELECT ray._publish_failed($1, $2, $3)";
		error = pg_ray_subtransaction(publish_record_outcome, &jobs[i]);
		if (error != NULL)
		{
			/* the job stays PUBLISHING and is tried again next round */
			elog(WARNING, "pg_ray worker: could not record that job " INT64_FORMAT " failed to publish: %s",
				 jobs[i].job_id, error->message);
			FreeErrorData(error);
		}
	}
}

/*
 * publish_one
 *		Run the publish statements of one job as its owner, then record the
 *		rows written and the job's success.
 */
static void
publish_one(void *arg)
{
	PublishJob *job = (PublishJob *) arg;
	Oid			types[3] = {INT8OID, INT4OID, INT8OID};
	Datum		values[3];
	bool		isnull;
	Oid			owner;
	Datum		statements_datum;
	Datum	   *statements;
	bool	   *statement_nulls;
	int			nstatements;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	Datum		rows_known;
	bool		rows_counted;
	volatile int64 rows = 0;

	/*
	 * Locks are waited for a second at most, the plan's included: taking a
	 * staging table for a new target locks it, and its owner may read it.
	 */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("lock_timeout", PUBLISH_LOCK_TIMEOUT, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	values[0] = Int64GetDatum(job->job_id);
	values[1] = Int32GetDatum(job->attempt);
	/* counting a run's rows takes as long as its rows: the publishing timeout, not the worker's */
	pg_ray_spi_exec_within(pg_ray_publish_timeout_ms,
						   "SELECT owner_oid, statements, rows_moved FROM ray._publish_plan($1, $2)",
						   2, types, values, NULL);
	owner = InvalidOid;
	if (SPI_processed == 1)
	{
		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			owner = InvalidOid;
	}
	if (!OidIsValid(owner))
	{
		/* nothing to publish: the plan settled the job */
		AtEOXact_GUC(false, save_nestlevel);
		return;
	}
	statements_datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the publishing plan of job " INT64_FORMAT " has no statements", job->job_id)));
	deconstruct_array(DatumGetArrayTypeP(statements_datum), TEXTOID, -1, false, TYPALIGN_INT,
					  &statements, &statement_nulls, &nstatements);
	for (int i = 0; i < nstatements; i++)
		if (statement_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the publishing plan of job " INT64_FORMAT " has a null statement", job->job_id)));
	rows_known = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	rows_counted = !isnull;
	if (rows_counted)
		rows = DatumGetInt64(rows_known);

	/*
	 * The owner's identity for the data statements, restricted as for any
	 * code of a user that a privileged process runs: no SET ROLE, no
	 * temporary objects.  The subtransaction's abort restores the worker's
	 * identity if a statement fails.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	/*
	 * The owner's code (its triggers) may wait or loop, and may set its own
	 * lock_timeout: the whole of it runs under pg_ray.publish_timeout, a
	 * statement timeout armed by hand (a background worker has none), so
	 * that it fails this job instead of holding up the round.  Advisory
	 * locks it took for the session go with it too: the worker takes none
	 * of its own, and one left behind would stay for the worker's life.
	 */
	enable_timeout_after(STATEMENT_TIMEOUT, pg_ray_publish_timeout_ms);
	PG_TRY();
	{
		for (int i = 0; i < nstatements; i++)
		{
			char	   *sql = TextDatumGetCString(statements[i]);
			int			ret = SPI_execute(sql, false, 0);

			if (ret < 0)
				elog(ERROR, "publishing job " INT64_FORMAT ": \"%s\" failed with SPI code %d",
					 job->job_id, sql, ret);
			/* the last statement moves the rows, unless the plan counted them */
			if (!rows_counted)
				rows = (int64) SPI_processed;
			pfree(sql);
		}
	}
	PG_FINALLY();
	{
		disable_timeout(STATEMENT_TIMEOUT, false);
		/* fired after the last statement ended: no cancel left for the worker's loop */
		if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
			QueryCancelPending = false;
		LockReleaseSession(USER_LOCKMETHOD);
	}
	PG_END_TRY();
	/*
	 * Undo every setting the owner's code changed (a trigger's plain SET
	 * included) as well as ours, as PostgreSQL does after running a table
	 * owner's code in an index build: nothing of it may stay in the
	 * worker's session for the rounds of others.
	 */
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	values[2] = Int64GetDatum(rows);
	pg_ray_spi_exec("SELECT ray._published($1, $2, $3)", 3, types, values, NULL);
}

/*
 * publish_record_outcome
 *		Record why a job could not be published, through job->outcome_sql:
 *		ray._publish_failed (it fails, nothing published) or
 *		ray._publish_deferred (it stays PUBLISHING and is tried again).
 */
static void
publish_record_outcome(void *arg)
{
	PublishJob *job = (PublishJob *) arg;
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3];

	values[0] = Int64GetDatum(job->job_id);
	values[1] = Int32GetDatum(job->attempt);
	values[2] = CStringGetTextDatum(job->error);
	pg_ray_spi_exec(job->outcome_sql, 3, types, values, NULL);
}

/*
 * publish_error_passes
 *		Whether an error of publishing is a conflict with other sessions
 *		that goes away by itself, rather than something wrong with the job.
 */
static bool
publish_error_passes(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE;
}

/*
 * pg_ray_publish_next_ms
 *		Milliseconds until jobs that could not be published because of a
 *		conflict are to be tried again (0: now), or -1 if there are none.
 */
long
pg_ray_publish_next_ms(void)
{
	long		ms;

	if (publish_retry_at == 0)
		return -1;
	ms = (long) ((publish_retry_at - GetCurrentTimestamp()) / 1000);
	return Max(0, ms);
}
