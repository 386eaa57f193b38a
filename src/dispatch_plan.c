/*-------------------------------------------------------------------------
 *
 * dispatch_plan.c
 *		Planning a round's requests to Ray: the worker's to-do list turned
 *		into HTTP requests.
 *
 * Each round, inside the round's transaction, the dispatcher begins new
 * attempts and reads the worker's to-do list (ray._worker_work): each
 * item that is not already in flight, and for a poll is due, becomes a
 * request to the group's dashboard, sent once the transaction has
 * committed (dispatch_send.c).  A new installation of the extension
 * makes the dispatcher forget everything it knew.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatch_plan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "dispatch.h"
#include "dispatch_internal.h"
#include "pg_ray.h"
#include "ray_api.h"
#include "spi_util.h"

/* The installation the dispatcher's memory is of (ray.installation). */
static char dispatch_installation[64] = "";

/* Largest job list or driver log the worker reads from Ray. */
#define DISPATCH_MAX_LIST_BYTES (64 * 1024 * 1024)

static void dispatch_plan_item(const char *action, const char *group_name, int64 job_id,
							   int attempt, const char *submission_id);

/*
 * pg_ray_dispatch_reset
 *		Forget everything about requests and polls: the extension is gone or
 *		was created anew.  Requests still in flight finish, but their answers
 *		belong to an older epoch and are dropped.
 */
void
pg_ray_dispatch_reset(void)
{
	pg_ray_dispatch_discard_planned();
	dispatch_schedule_clear();
	dispatch_installation[0] = '\0';
}

/*
 * dispatch_endpoint
 *		How to reach a group's dashboard; false when it has none (yet).
 *		Strings are palloc'd in the current (transaction) context.
 */
bool
dispatch_endpoint(const char *group_name, RayEndpoint *endpoint)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(group_name)};
	bool		isnull;

	pg_ray_spi_exec("SELECT url, token, ca_file FROM ray._group_connection($1)",
				  1, types, values, NULL);
	if (SPI_processed != 1)
		return false;
	endpoint->url = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	endpoint->token = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	endpoint->ca_file = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull;
}

/*
 * dispatch_plan_item
 *		Turn one row of the to-do list into a request, unless it is in
 *		flight already or, for a poll, not due yet.
 */
static void
dispatch_plan_item(const char *action, const char *group_name, int64 job_id, int attempt,
				   const char *submission_id)
{
	DispatchPurpose purpose;
	RayEndpoint endpoint;
	PgRayHttpRequest *req;
	const char *key = submission_id ? submission_id : group_name;

	if (strcmp(action, "check_group") == 0)
		purpose = DISPATCH_CHECK_GROUP, key = group_name;
	else if (strcmp(action, "check_submission") == 0)
		purpose = DISPATCH_CHECK_SUBMISSION;
	else if (strcmp(action, "stop") == 0)
		purpose = DISPATCH_STOP;
	else if (strcmp(action, "poll_group") == 0)
		purpose = DISPATCH_POLL_GROUP, key = group_name;
	else if (strcmp(action, "fetch_log") == 0)
		purpose = DISPATCH_FETCH_LOG;
	else if (strcmp(action, "stop_lost") == 0)
		purpose = DISPATCH_STOP_LOST;
	else if (strcmp(action, "observe_group") == 0)
		purpose = DISPATCH_OBSERVE_NODES, key = group_name;
	else
		elog(ERROR, "pg_ray worker: unknown action \"%s\"", action);

	if (purpose == DISPATCH_POLL_GROUP || purpose == DISPATCH_OBSERVE_NODES)
	{
		GroupPoll  *poll = dispatch_group_poll(purpose, group_name);
		TimestampTz now = GetCurrentTimestamp();

		poll->seen = true;
		if (poll->next_poll_at > now)
			return;
		/* due: the next one is due an interval from now, whatever happens */
		poll->next_poll_at = TimestampTzPlusMilliseconds(now, poll->interval_ms);
	}
	/* a submission being uploaded or POSTed is not checked at the same time */
	if (dispatch_is_in_flight(purpose, job_id, key) ||
		((purpose == DISPATCH_CHECK_SUBMISSION || purpose == DISPATCH_STOP_LOST) &&
		 (dispatch_is_in_flight(DISPATCH_SUBMIT, job_id, key) ||
		  dispatch_is_in_flight(DISPATCH_UPLOAD, job_id, key))))
		return;
	if (!dispatch_endpoint(group_name, &endpoint))
		return;

	switch (purpose)
	{
		case DISPATCH_CHECK_GROUP:
			req = ray_api_request(&endpoint, "GET", "/api/version");
			break;
		case DISPATCH_CHECK_SUBMISSION:
			req = ray_api_request(&endpoint, "GET", "/api/jobs/%s", submission_id);
			break;
		case DISPATCH_STOP:
		case DISPATCH_STOP_LOST:
			req = ray_api_request(&endpoint, "POST", "/api/jobs/%s/stop", submission_id);
			break;
		case DISPATCH_POLL_GROUP:
			/* Ray lists every job it ever had: allow for a long history */
			req = ray_api_request(&endpoint, "GET", "/api/jobs/");
			req->max_response_bytes = DISPATCH_MAX_LIST_BYTES;
			break;
		case DISPATCH_FETCH_LOG:
			/* Ray sends the whole log; its end is kept */
			req = ray_api_request(&endpoint, "GET", "/api/jobs/%s/logs", submission_id);
			req->max_response_bytes = Max((size_t) DISPATCH_MAX_LIST_BYTES,
										  (size_t) pg_ray_max_log_bytes * 2 + 65536);
			break;
		case DISPATCH_OBSERVE_NODES:
			/* asked again on the schedule: a failure is not retried at once */
			req = ray_api_request(&endpoint, "GET", "/api/v0/nodes?detail=1&limit=10000");
			req->max_tries = 1;
			break;
		default:
			elog(ERROR, "pg_ray worker: cannot plan purpose %d", (int) purpose);
	}
	dispatch_plan_request(req, purpose, group_name, job_id, attempt, submission_id);
}

/*
 * pg_ray_dispatch_plan
 *		Inside a round's transaction: begin new attempts, then plan the
 *		requests of the to-do list.  Nothing is sent before commit.
 */
void
pg_ray_dispatch_plan(void)
{
	uint64		n;
	SPITupleTable *tuptable;

	dispatch_init();

	/* a new installation: nothing from before applies to it */
	pg_ray_spi_exec("SELECT id FROM ray.installation", 0, NULL, NULL, NULL);
	if (SPI_processed == 1)
	{
		char	   *installation = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (strcmp(installation, dispatch_installation) != 0)
		{
			if (dispatch_installation[0] != '\0')
				pg_ray_dispatch_reset();
			strlcpy(dispatch_installation, installation, sizeof(dispatch_installation));
		}
	}

	pg_ray_spi_exec("SELECT ray._begin_attempts()", 0, NULL, NULL, NULL);
	pg_ray_spi_exec("SELECT action, resource_group, job_id, attempt, submission_id "
				  "FROM ray._worker_work() ORDER BY action, resource_group, job_id",
				  0, NULL, NULL, NULL);

	dispatch_polls_mark_unseen();
	/* forgets the cool-downs that are over */
	(void) dispatch_is_in_flight(DISPATCH_CHECK_GROUP, -1, "");

	/* keep the rows: planning runs more SPI queries */
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	row = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		char	   *action = SPI_getvalue(row, desc, 1);
		char	   *group_name = SPI_getvalue(row, desc, 2);
		Datum		job = SPI_getbinval(row, desc, 3, &isnull);
		int64		job_id = isnull ? 0 : DatumGetInt64(job);
		Datum		attempt_datum = SPI_getbinval(row, desc, 4, &isnull);
		int			attempt = isnull ? 0 : DatumGetInt32(attempt_datum);
		char	   *submission_id = SPI_getvalue(row, desc, 5);

		dispatch_plan_item(action, group_name, job_id, attempt, submission_id);
	}

	/* forget the schedules of groups with nothing left to follow */
	dispatch_polls_forget_unseen();
}
