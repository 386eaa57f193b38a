/*-------------------------------------------------------------------------
 *
 * jobs.c
 *		SQL-callable job functions that need the server's internals:
 *		ray.wait_job.
 *
 * ray.wait_job sleeps on a condition variable that the background worker
 * broadcasts after every transaction in which it may have moved jobs, so a
 * waiting session wakes when something happened rather than polling the
 * table.  It reads the job through ray.jobs as the caller, so row-level
 * security decides what it may wait for, and each check takes a fresh
 * snapshot, which is why it refuses to run where the snapshot is frozen.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/jobs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "identity.h"
#include "schema_version.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(pg_ray_wait_job);

static int64 wait_job_timeout_us(const Interval *interval);

/* The longest a waiting session sleeps between two looks, come what may. */
#define WAIT_JOB_MAX_SLEEP_MS 5000

/* Longer timeouts wait this long (a hundred years), so the deadline stays a timestamp. */
#define WAIT_JOB_LONGEST_US (INT64CONST(100) * 365 * USECS_PER_DAY)

/*
 * wait_job_is_terminal
 *		Whether a job in this state will never change again.
 */
static bool
wait_job_is_terminal(const char *state)
{
	return strcmp(state, "SUCCEEDED") == 0 || strcmp(state, "FAILED") == 0 ||
		strcmp(state, "STOPPED") == 0;
}

/*
 * wait_job_report_progress
 *		Say how far a batch inference run has got, once per tenth of its
 *		rows, from the row (state, rows_processed, rows_total) of ray.jobs.
 */
static void
wait_job_report_progress(int64 job_id, SPITupleTable *table, int *last_tenth)
{
	bool		done_null;
	bool		total_null;
	int64		done = DatumGetInt64(SPI_getbinval(table->vals[0], table->tupdesc, 2, &done_null));
	int64		total = DatumGetInt64(SPI_getbinval(table->vals[0], table->tupdesc, 3, &total_null));
	double		share;
	int			tenth;

	if (done_null || total_null || total <= 0 || done <= 0)
		return;
	/* in floating point: the counts are the run's to report, and may be anything */
	share = Min(1.0, (double) done / (double) total);
	tenth = (int) (share * 10);
	if (tenth <= *last_tenth)
		return;
	*last_tenth = tenth;
	ereport(NOTICE,
			(errmsg("job " INT64_FORMAT ": " INT64_FORMAT " of " INT64_FORMAT " rows scored (%d%%)",
					job_id, done, total, (int) (share * 100))));
}

/*
 * wait_job_timeout_us
 *		An interval in microseconds, a month counting 30 days, as ray.wait_job
 *		waits it; an error where that does not fit in 64 bits.
 */
static int64
wait_job_timeout_us(const Interval *interval)
{
	int64		month_us;
	int64		day_us;
	int64		total;

	if (pg_mul_s64_overflow((int64) interval->month, DAYS_PER_MONTH * USECS_PER_DAY, &month_us) ||
		pg_mul_s64_overflow((int64) interval->day, USECS_PER_DAY, &day_us) ||
		pg_add_s64_overflow(month_us, day_us, &total) ||
		pg_add_s64_overflow(total, interval->time, &total))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timeout is out of range"),
				 errhint("Pass a timeout such as interval '10 minutes'.")));
	return total;
}

/*
 * wait_job_refuse_obstacle
 *		Refuse to wait for a job that the background worker cannot act on
 *		before the calling transaction ends (see ray._wait_job_obstacle):
 *		such a wait would last its whole timeout and see nothing.  Called
 *		with SPI connected, before the first sleep; leaves the caller's
 *		SPI_tuptable as it was.
 */
static void
wait_job_refuse_obstacle(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	char	   *obstacle;
	char	   *object;
	char		hint[128];
	SPITupleTable *caller_table = SPI_tuptable;

	if (SPI_execute_with_args("SELECT obstacle, object FROM ray._wait_job_obstacle($1)",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not check the transaction of ray.wait_job");
	obstacle = SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
	if (obstacle == NULL)
	{
		/* the caller goes on reading its own result */
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = caller_table;
		return;
	}
	object = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	snprintf(hint, sizeof(hint),
			 "Commit first, then wait in a later transaction: SELECT ray.wait_job(" INT64_FORMAT ");",
			 job_id);

	if (strcmp(obstacle, "queued") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " was queued in this transaction and cannot start before it commits",
						job_id),
				 errdetail("The background worker sees the job only once the transaction that queued it has committed."),
				 errhint("%s", hint)));
	if (strncmp(obstacle, "job ", 4) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " was %s in this transaction, and the background worker cannot act on it before it ends",
						job_id, obstacle + 4),
				 errdetail("The worker's update of the job would wait for this transaction's lock on its row."),
				 errhint("%s", hint)));
	if (strncmp(obstacle, "resource group ", 15) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("resource group \"%s\" was %s in this transaction, and the background worker cannot act on its jobs before it ends",
						object, obstacle + 15),
				 errdetail("The worker's changes to the group would wait for this transaction's lock on its row."),
				 errhint("%s", hint)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("this transaction holds a lock on %s that the background worker needs", object),
			 errdetail("The worker cannot change jobs before the transaction ends."),
			 errhint("%s", hint)));
}

/*
 * pg_ray_wait_job
 *		ray.wait_job(job_id, timeout): wait until the job has finished or the
 *		timeout has passed; return its state then.  State changes are
 *		reported as NOTICEs.  Query cancel interrupts the wait.
 */
Datum
pg_ray_wait_job(PG_FUNCTION_ARGS)
{
	int64		job_id;
	Interval   *timeout;
	int64		timeout_us;
	TimestampTz deadline;
	ConditionVariable *cv = &pg_ray_shared_state()->jobs_changed;
	MemoryContext caller_context = CurrentMemoryContext;
	char	   *last_state = NULL;
	char	   *state = NULL;
	char	   *last_reason = NULL;
	int			last_tenth = -1;
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	pg_ray_require_current_schema();
	/* a trigger while the worker publishes would hold it up for the wait */
	pg_ray_refuse_restricted_operation();

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job id must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null"),
				 errhint("Pass a timeout such as interval '10 minutes'.")));
	job_id = PG_GETARG_INT64(0);
	timeout = PG_GETARG_INTERVAL_P(1);
	timeout_us = wait_job_timeout_us(timeout);
	if (timeout_us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	timeout_us = Min(timeout_us, WAIT_JOB_LONGEST_US);
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("ray.wait_job cannot wait inside a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("Such a transaction would never see the job change."),
				 errhint("Call it in a READ COMMITTED transaction, or outside a transaction block.")));

	deadline = GetCurrentTimestamp() + timeout_us;
	values[0] = Int64GetDatum(job_id);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	for (;;)
	{
		long		remaining_ms;
		int			ret;

		/* prepare first, so that a broadcast during the check is not missed */
		ConditionVariablePrepareToSleep(cv);

		/*
		 * The table, not ray.jobs: its queue positions are not needed here.
		 */
		ret = SPI_execute_with_args("SELECT state, rows_processed, rows_total, message "
									"FROM ray.job WHERE job_id = $1",
									1, types, values, NULL, false, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read job " INT64_FORMAT ": SPI code %d", job_id, ret);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("job " INT64_FORMAT " does not exist", job_id),
					 errhint("List your jobs with SELECT job_id, state FROM ray.jobs.")));
		{
			char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			char	   *message = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
			bool		state_changed;
			bool		reason_changed;

			/* keep nothing of a pass but the state and why it waits: a wait may last hours */
			if (state != NULL && state != last_state)
				pfree(state);
			state = MemoryContextStrdup(caller_context, value);
			pfree(value);
			wait_job_report_progress(job_id, SPI_tuptable, &last_tenth);

			/* nothing in this transaction may keep the worker from the job */
			if (last_state == NULL && timeout_us > 0 && !wait_job_is_terminal(state))
				wait_job_refuse_obstacle(job_id);

			/* a queued job's message says what it waits for: said once each time it changes */
			state_changed = last_state == NULL || strcmp(state, last_state) != 0;
			reason_changed = strcmp(state, "QUEUED") == 0 && message != NULL &&
				(last_reason == NULL || strcmp(message, last_reason) != 0);
			if ((state_changed && (last_state != NULL || !wait_job_is_terminal(state))) || reason_changed)
				ereport(NOTICE,
						(errmsg("job " INT64_FORMAT " is %s%s", job_id,
								state_changed ? "" : "still ", state),
						 reason_changed ? errdetail_internal("%s", message) : 0));
			if (reason_changed || state_changed)
			{
				if (last_reason != NULL)
					pfree(last_reason);
				last_reason = reason_changed ? MemoryContextStrdup(caller_context, message) : NULL;
			}
			if (message != NULL)
				pfree(message);
			SPI_freetuptable(SPI_tuptable);
		}

		if (last_state == NULL || strcmp(state, last_state) != 0)
		{
			if (last_state != NULL)
				pfree(last_state);
			last_state = state;
		}
		if (wait_job_is_terminal(state))
			break;

		remaining_ms = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (remaining_ms <= 0)
			break;
		ConditionVariableTimedSleep(cv, Min(remaining_ms, WAIT_JOB_MAX_SLEEP_MS),
									PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	ConditionVariableCancelSleep();
	SPI_finish();

	PG_RETURN_TEXT_P(cstring_to_text(state));
}
