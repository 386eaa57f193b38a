/*-------------------------------------------------------------------------
 *
 * dispatch_apply.c
 *		Applying Ray's answers to the catalog.
 *
 * Finished requests come back through the HTTP driver and are applied in
 * one transaction, each in a subtransaction of its own, through the SQL
 * functions that own the state machine: one bad answer, or one broken
 * cluster, never blocks the others.  An answer that settles nothing, or
 * cannot be applied, puts its request in a cool-down (dispatch_schedule.c);
 * the follow-ups that answers plan (a submission after a check, a group's
 * demand after its nodes) are sent once the transaction has committed.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatch_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "dispatch.h"
#include "dispatch_internal.h"
#include "fault.h"
#include "http.h"
#include "pg_ray.h"
#include "ray_api.h"
#include "ray_parse.h"
#include "shmem.h"
#include "spi_util.h"

static void dispatch_apply(PgRayHttpRequest *req);
static void dispatch_apply_one(void *req);
static void dispatch_apply_poll(PgRayHttpRequest *req);
static void dispatch_apply_polled_job(void *arg);
static void dispatch_apply_observe(PgRayHttpRequest *req);

/* One run of a polled group's list, applied in a subtransaction of its own. */
typedef struct PolledJob
{
	int64		job_id;
	int			attempt;
	RayJobInfo *found;			/* NULL: Ray no longer knows the run */
	const char *url;
	const char *submission_id;
} PolledJob;

/*
 * dispatch_apply_polled_job
 *		What Ray's list says of one run pg_ray follows: its status, or that
 *		Ray no longer knows it.
 */
static void
dispatch_apply_polled_job(void *arg)
{
	PolledJob  *job = (PolledJob *) arg;

	if (job->found)
		dispatch_apply_job_info(job->job_id, job->attempt, job->found);
	else
	{
		Oid			missing_types[3] = {INT8OID, INT4OID, TEXTOID};
		Datum		missing[3] = {Int64GetDatum(job->job_id), Int32GetDatum(job->attempt),
			CStringGetTextDatum(psprintf("Ray at %s no longer knows run %s (its head may have restarted)",
										 job->url, job->submission_id))};

		pg_ray_spi_exec("SELECT ray._apply_run_missing($1, $2, $3)", 3, missing_types,
						missing, NULL);
	}
}

/*
 * dispatch_apply_poll
 *		The job list of a group: move every run pg_ray follows there along,
 *		and requeue those Ray no longer knows.  Each run in a subtransaction
 *		of its own: one whose row a user's transaction holds (a stop asked
 *		for and not yet committed) waits for the next poll, and the group's
 *		other runs go on.
 */
static void
dispatch_apply_poll(PgRayHttpRequest *req)
{
	RayJobList	list;
	char		errbuf[RAY_PARSE_ERRLEN];
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2] = {CStringGetTextDatum(req->group_name),
	TimestampTzGetDatum(req->planned_at)};
	GroupPoll  *poll = dispatch_group_poll(DISPATCH_POLL_GROUP, req->group_name);
	uint32		hash;
	SPITupleTable *tuptable;
	uint64		n;

	if (!pg_ray_http_succeeded(req))
	{
		if (dispatch_cluster_unreachable(req))
			dispatch_unreachable(req);
		else
			ereport(WARNING,
					(errmsg("pg_ray could not poll resource group \"%s\"", req->group_name),
					 errdetail("%s", dispatch_failure(req))));
		return;
	}
	if (!ray_parse_job_list(req->response, req->response_len, &list, errbuf))
	{
		ereport(WARNING,
				(errmsg("pg_ray could not read the job list of resource group \"%s\"", req->group_name),
				 errdetail("GET %s: %s", req->url, errbuf)));
		return;
	}

	hash = hash_bytes((const unsigned char *) req->response, (int) req->response_len);

	PG_TRY();
	{
		Datum		reachable[3] = {CStringGetTextDatum(req->group_name), (Datum) 0, (Datum) 0};
		Oid			reachable_types[3] = {TEXTOID, TEXTOID, TEXTOID};

		pg_ray_spi_exec("SELECT ray._apply_group_check($1, $2, $3)", 3, reachable_types,
					  reachable, " nn");

		/* runs in Ray since before the list was asked for */
		pg_ray_spi_exec("SELECT job_id, attempts, ray_submission_id FROM ray.job "
					  "WHERE resource_group = $1 AND state IN ('PENDING', 'RUNNING') "
					  "AND state_changed_at < $2 ORDER BY job_id",
					  2, types, values, NULL);
		tuptable = SPI_tuptable;
		n = SPI_processed;
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			int64		job_id = DatumGetInt64(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 1, &isnull));
			int			attempt = DatumGetInt32(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 2, &isnull));
			char	   *submission_id = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 3);
			PolledJob	job = {job_id, attempt, NULL, req->url, submission_id};
			ErrorData  *error;

			for (size_t j = 0; j < list.count && submission_id; j++)
			{
				if (list.jobs[j].submission_id &&
					strcmp(list.jobs[j].submission_id, submission_id) == 0)
				{
					job.found = &list.jobs[j];
					break;
				}
			}
			error = pg_ray_subtransaction(dispatch_apply_polled_job, &job);
			if (error != NULL)
			{
				ereport(WARNING,
						(errmsg("pg_ray could not apply the status of job " INT64_FORMAT ": %s",
								job_id, error->message)));
				FreeErrorData(error);
			}
		}
	}
	PG_FINALLY();
	{
		ray_job_list_free(&list);
	}
	PG_END_TRY();

	/*
	 * Poll fast while the list changes.  Otherwise wait a quarter of the age
	 * of the youngest run, between the two settings: a run that has gone
	 * two seconds is likely to end soon, one that has gone an hour is not,
	 * and the delay in seeing either end stays a fraction of its life.
	 */
	if (hash != poll->last_list_hash)
		poll->interval_ms = pg_ray_poll_interval_min_ms;
	else
	{
		Oid			age_types[1] = {TEXTOID};
		Datum		age_values[1] = {CStringGetTextDatum(req->group_name)};
		bool		isnull;
		int64		age_ms = 0;

		pg_ray_spi_exec("SELECT (extract(epoch FROM now() - max(coalesce(started_at, state_changed_at))) * 1000)::int8 "
					  "FROM ray.job WHERE resource_group = $1 AND state IN ('PENDING', 'RUNNING')",
					  1, age_types, age_values, NULL);
		if (SPI_processed == 1)
		{
			Datum		age = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
				age_ms = DatumGetInt64(age);
		}
		poll->interval_ms = (int) Max((int64) pg_ray_poll_interval_min_ms,
									  Min((int64) pg_ray_poll_interval_ms, age_ms / 4));
	}
	poll->last_list_hash = hash;
}

/*
 * dispatch_apply_observe
 *		What Ray says of a local group's nodes (then ask for its demand,
 *		which the autoscaler acts on), or of its demand.  The node answer
 *		says when the group is to be looked at again: soon while it comes up
 *		or changes, every pg_ray.observe_interval once it is ready.
 */
static void
dispatch_apply_observe(PgRayHttpRequest *req)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(req->group_name), (Datum) 0, (Datum) 0};
	bool		answered = pg_ray_http_succeeded(req) && req->response != NULL;
	RayEndpoint endpoint;
	PgRayHttpRequest *next;

	if (req->purpose == DISPATCH_OBSERVE_DEMAND)
	{
		if (!answered)
		{
			dispatch_ask_later = true;
			return;
		}
		values[1] = dispatch_json(req->response);
		pg_ray_spi_exec("SELECT ray._apply_cluster_status($1, $2::jsonb)", 2, types, values, NULL);
		return;
	}

	if (answered)
		values[1] = dispatch_json(req->response);
	else
		values[2] = CStringGetTextDatum(dispatch_failure(req));
	pg_ray_spi_exec("SELECT ray._apply_local_nodes($1, $2::jsonb, $3)", 3, types, values,
				  answered ? "  n" : " n ");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		next_ms = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		GroupPoll  *poll = dispatch_group_poll(DISPATCH_OBSERVE_NODES, req->group_name);

		if (!isnull)
		{
			poll->interval_ms = DatumGetInt32(next_ms);
			poll->next_poll_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), poll->interval_ms);
		}
	}
	if (!answered || dispatch_is_in_flight(DISPATCH_OBSERVE_DEMAND, 0, req->group_name) ||
		!dispatch_endpoint(req->group_name, &endpoint))
		return;
	next = ray_api_request(&endpoint, "GET", "/api/cluster_status");
	next->max_tries = 1;
	dispatch_plan_request(next, DISPATCH_OBSERVE_DEMAND, req->group_name, 0, 0, NULL);
}

/*
 * dispatch_apply_one
 *		dispatch_apply for pg_ray_subtransaction.
 */
static void
dispatch_apply_one(void *req)
{
	dispatch_apply((PgRayHttpRequest *) req);
}

/*
 * dispatch_apply
 *		Apply one finished request, inside the caller's subtransaction.
 */
static void
dispatch_apply(PgRayHttpRequest *req)
{
	char		errbuf[RAY_PARSE_ERRLEN];
	Oid			types[5] = {INT8OID, INT4OID, TEXTOID, BOOLOID, TEXTOID};
	Datum		values[5];

	switch ((DispatchPurpose) req->purpose)
	{
		case DISPATCH_CHECK_GROUP:
			{
				char	   *version = NULL;
				Oid			group_types[3] = {TEXTOID, TEXTOID, TEXTOID};
				Datum		group_values[3] = {CStringGetTextDatum(req->group_name), (Datum) 0, (Datum) 0};

				if (pg_ray_http_succeeded(req) &&
					ray_parse_version(req->response, req->response_len, &version, errbuf))
				{
					group_values[1] = dispatch_text(version);
					free(version);
					pg_ray_spi_exec("SELECT ray._apply_group_check($1, $2, $3)", 3, group_types,
								  group_values, "  n");
				}
				else
				{
					/* not there, refusing the token, or not Ray: not usable */
					group_values[2] = CStringGetTextDatum(pg_ray_http_succeeded(req) ?
														  psprintf("GET %s: %s", req->url, errbuf) :
														  dispatch_failure(req));
					pg_ray_spi_exec("SELECT ray._apply_group_check($1, $2, $3)", 3, group_types,
								  group_values, " n ");
					dispatch_ask_later = true;
				}
				break;
			}
		case DISPATCH_CHECK_SUBMISSION:
			dispatch_apply_check_submission(req);
			break;
		case DISPATCH_UPLOAD:
			dispatch_apply_upload(req);
			break;
		case DISPATCH_SUBMIT:
			dispatch_apply_submit(req);
			break;
		case DISPATCH_STOP:
			{
				bool		stopped = false;

				values[0] = Int64GetDatum(req->job_id);
				values[1] = Int32GetDatum(req->attempt);
				if (pg_ray_http_succeeded(req) &&
					ray_parse_stop(req->response, req->response_len, &stopped, errbuf))
				{
					values[2] = BoolGetDatum(stopped);
					types[2] = BOOLOID;
					pg_ray_spi_exec("SELECT ray._apply_stop_sent($1, $2, $3)", 3, types, values, NULL);
					dispatch_poll_soon(req->group_name);
				}
				else if (req->status == 404)
				{
					values[2] = CStringGetTextDatum("Ray does not know the run to stop");
					types[2] = TEXTOID;
					pg_ray_spi_exec("SELECT ray._apply_run_missing($1, $2, $3)", 3, types, values, NULL);
				}
				else
				{
					if (dispatch_cluster_unreachable(req))
						dispatch_unreachable(req);
					dispatch_ask_later = true;
				}
				break;
			}
		case DISPATCH_POLL_GROUP:
			dispatch_apply_poll(req);
			break;
		case DISPATCH_OBSERVE_NODES:
		case DISPATCH_OBSERVE_DEMAND:
			dispatch_apply_observe(req);
			break;
		case DISPATCH_FETCH_LOG:
			{
				char	   *logs = NULL;
				bool		truncated = false;
				char		nulls[5] = {' ', ' ', ' ', ' ', 'n'};

				values[0] = Int64GetDatum(req->job_id);
				values[1] = Int32GetDatum(req->attempt);
				values[3] = BoolGetDatum(false);
				if (pg_ray_http_succeeded(req) &&
					ray_parse_logs(req->response, req->response_len, (size_t) pg_ray_max_log_bytes,
								   &logs, &truncated, errbuf))
				{
					values[2] = dispatch_text(logs);
					values[3] = BoolGetDatum(truncated);
					free(logs);
				}
				else if (!req->response_too_large &&
						 (dispatch_no_answer(req) || pg_ray_http_succeeded(req)))
				{
					/*
					 * No answer, or one spoiled on the way (a proxy's page, a
					 * body cut short): asked again later.  Only Ray's refusal
					 * or a log too large to take is noted for good.
					 */
					dispatch_ask_later = true;
					break;
				}
				else
				{
					nulls[2] = 'n';
					nulls[4] = ' ';
					values[4] = CStringGetTextDatum(pg_ray_http_succeeded(req) ?
													psprintf("GET %s: %s", req->url, errbuf) :
													dispatch_failure(req));
				}
				pg_ray_spi_exec("SELECT ray._save_job_log($1, $2, $3, $4, $5)", 5, types, values, nulls);
				break;
			}
		case DISPATCH_STOP_LOST:
			if (pg_ray_http_succeeded(req) || req->status == 404)
			{
				Oid			lost_types[2] = {TEXTOID, BOOLOID};
				Datum		lost[2] = {CStringGetTextDatum(req->submission_id),
				BoolGetDatum(req->status == 404)};

				pg_ray_spi_exec("SELECT ray._lost_run_settled($1, $2)", 2, lost_types, lost, NULL);
			}
			dispatch_ask_later = true;
			break;
	}
}

/*
 * pg_ray_dispatch_apply_done
 *		Apply every finished request in one transaction, each in its own
 *		subtransaction, then send the follow-ups they planned.  Returns
 *		whether there was anything to apply.
 */
bool
pg_ray_dispatch_apply_done(void)
{
	PgRayHttpRequest *req = pg_ray_http_next_done();

	if (req == NULL)
		return false;

	/*
	 * For the crash matrix: Ray has the run but it is not recorded, or a
	 * job's new status is not.  Only the first answer of a batch is looked
	 * at: the rest are applied in a transaction, where no point may wait.
	 */
	if (req->purpose == DISPATCH_SUBMIT)
		pg_ray_fault_point("after_submit");
	else if (req->purpose == DISPATCH_POLL_GROUP)
		pg_ray_fault_point("before_status");

	dispatch_init();
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pg_ray_worker_transaction_limits();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pg_ray: applying answers from Ray");

	for (; req != NULL; req = pg_ray_http_next_done())
	{
		ErrorData  *error;

		/* an answer of a request made before the extension was created anew */
		if (req->epoch != dispatch_epoch)
		{
			pg_ray_http_request_free(req);
			continue;
		}
		dispatch_clear_in_flight((DispatchPurpose) req->purpose, req->job_id, dispatch_key(req));
		dispatch_ask_later = false;

		error = pg_ray_subtransaction(dispatch_apply_one, req);
		if (error != NULL)
		{
			ereport(WARNING,
					(errmsg("pg_ray could not apply an answer from Ray: %s", error->message),
					 errdetail("%s %s for resource group \"%s\"; asking again in %d s.",
							   req->method, req->url, req->group_name,
							   pg_ray_error_retry_seconds)));
			FreeErrorData(error);
		}
		/* nothing settled: the same request is not made again at once */
		if (error != NULL || dispatch_ask_later)
			dispatch_cool_down((DispatchPurpose) req->purpose, req->job_id, dispatch_key(req));
		pg_ray_http_request_free(req);
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	pg_ray_jobs_changed();
	pg_ray_dispatch_start_planned();
	return true;
}
