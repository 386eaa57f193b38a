/*-------------------------------------------------------------------------
 *
 * dispatcher.c
 *		The background worker's traffic with Ray: what to ask, and what the
 *		answers mean for the catalog.
 *
 * Each round, inside the round's transaction, the dispatcher reads the
 * worker's to-do list (ray._worker_work) and turns each item that is not
 * already in flight into an HTTP request.  The requests start only after the
 * transaction commits, so that Ray never hears of an attempt the catalog
 * could still forget.  Finished requests come back through the HTTP driver
 * and are applied in one transaction, each in a subtransaction of its own,
 * through the SQL functions that own the state machine: one bad answer, or
 * one broken cluster, never blocks the others.
 *
 * Exactly-once submission rests on three habits: the submission id is fixed
 * by the committed attempt; a submission is POSTed only right after Ray said
 * it does not know that id; and a POST is never retried blindly: if its
 * answer is lost, the next round asks Ray again whether the id exists.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "fault.h"
#include "http.h"
#include "pg_ray.h"
#include "ray_api.h"
#include "ray_parse.h"
#include "shmem.h"
#include "spi_util.h"

typedef enum DispatchPurpose
{
	DISPATCH_CHECK_GROUP,
	DISPATCH_CHECK_SUBMISSION,
	DISPATCH_UPLOAD,
	DISPATCH_SUBMIT,
	DISPATCH_STOP,
	DISPATCH_POLL_GROUP,
	DISPATCH_FETCH_LOG,
	DISPATCH_STOP_LOST,
	DISPATCH_OBSERVE_NODES,
	DISPATCH_OBSERVE_DEMAND
} DispatchPurpose;

/*
 * What is in flight, so that a round does not ask the same thing twice; and
 * what is cooling down after its answer could not be applied, so that a
 * persistent error does not turn into a tight loop of requests.
 */
typedef struct InFlight
{
	DispatchPurpose purpose;
	int64		job_id;
	char		key[64];		/* group name or submission id */
	TimestampTz cool_until;		/* 0 while in flight */
} InFlight;

/*
 * When a group is polled next: for the runs it has in Ray (POLL_GROUP), or
 * for the nodes of a local group (OBSERVE_NODES).
 */
typedef struct GroupPoll
{
	DispatchPurpose purpose;
	char		group_name[64];
	TimestampTz next_poll_at;
	int			interval_ms;
	uint32		last_list_hash;
	bool		seen;			/* in the latest to-do list */
} GroupPoll;

static MemoryContext dispatch_context = NULL;
static List *in_flight = NIL;
static List *group_polls = NIL;
static PgRayHttpRequest *planned = NULL;

/*
 * The epoch changes whenever the extension is (re)created: answers to
 * requests of an older epoch are dropped, since job ids start again at 1 and
 * an old answer could otherwise be taken for a new job's.
 */
static uint32 dispatch_epoch = 1;
static char dispatch_installation[64] = "";

/* Set while applying an answer that settles nothing: ask again later. */
static bool dispatch_ask_later = false;

/* Largest job list or driver log the worker reads from Ray. */
#define DISPATCH_MAX_LIST_BYTES (64 * 1024 * 1024)

static void dispatch_init(void);
static bool dispatch_is_in_flight(DispatchPurpose purpose, int64 job_id, const char *key);
static void dispatch_mark_in_flight(DispatchPurpose purpose, int64 job_id, const char *key);
static void dispatch_clear_in_flight(DispatchPurpose purpose, int64 job_id, const char *key);
static GroupPoll *dispatch_group_poll(DispatchPurpose purpose, const char *group_name);
static void dispatch_apply_observe(PgRayHttpRequest *req);
static bool dispatch_endpoint(const char *group_name, RayEndpoint *endpoint);
static void dispatch_plan_item(const char *action, const char *group_name, int64 job_id,
							   int attempt, const char *submission_id);
static void dispatch_apply(PgRayHttpRequest *req);
static void dispatch_apply_one(void *req);
static void dispatch_plan_submission(PgRayHttpRequest *req, bool upload_first);
static void dispatch_apply_poll(PgRayHttpRequest *req);
static const char *dispatch_key(PgRayHttpRequest *req);

/*
 * dispatch_init
 *		A memory context for what lives across transactions.
 */
static void
dispatch_init(void)
{
	if (dispatch_context == NULL)
		dispatch_context = AllocSetContextCreate(TopMemoryContext, "pg_ray dispatcher",
												 ALLOCSET_DEFAULT_SIZES);
}

/*
 * dispatch_is_in_flight
 *		Whether that request is in flight or cooling down.  Cool-downs that
 *		have passed are forgotten on the way.
 */
static bool
dispatch_is_in_flight(DispatchPurpose purpose, int64 job_id, const char *key)
{
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();
	bool		found = false;

	foreach(lc, in_flight)
	{
		InFlight   *f = lfirst(lc);

		if (f->cool_until != 0 && f->cool_until <= now)
		{
			in_flight = foreach_delete_current(in_flight, lc);
			pfree(f);
			continue;
		}
		if (f->purpose == purpose && f->job_id == job_id && strcmp(f->key, key) == 0)
			found = true;
	}
	return found;
}

/*
 * dispatch_cool_down
 *		An answer could not be applied: ask again only after
 *		pg_ray.error_retry_seconds.
 */
static void
dispatch_cool_down(DispatchPurpose purpose, int64 job_id, const char *key)
{
	MemoryContext old = MemoryContextSwitchTo(dispatch_context);
	InFlight   *f = palloc0(sizeof(InFlight));

	f->purpose = purpose;
	f->job_id = job_id;
	strlcpy(f->key, key, sizeof(f->key));
	f->cool_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												pg_ray_error_retry_seconds * 1000L);
	in_flight = lappend(in_flight, f);
	MemoryContextSwitchTo(old);
}

static void
dispatch_mark_in_flight(DispatchPurpose purpose, int64 job_id, const char *key)
{
	MemoryContext old = MemoryContextSwitchTo(dispatch_context);
	InFlight   *f = palloc0(sizeof(InFlight));

	f->purpose = purpose;
	f->job_id = job_id;
	strlcpy(f->key, key, sizeof(f->key));
	in_flight = lappend(in_flight, f);
	MemoryContextSwitchTo(old);
}

static void
dispatch_clear_in_flight(DispatchPurpose purpose, int64 job_id, const char *key)
{
	ListCell   *lc;

	foreach(lc, in_flight)
	{
		InFlight   *f = lfirst(lc);

		if (f->cool_until == 0 && f->purpose == purpose && f->job_id == job_id &&
			strcmp(f->key, key) == 0)
		{
			in_flight = foreach_delete_current(in_flight, lc);
			pfree(f);
			return;
		}
	}
}

/*
 * dispatch_key
 *		The in-flight key of a request: its group for group-wide requests,
 *		its submission id otherwise.
 */
static const char *
dispatch_key(PgRayHttpRequest *req)
{
	switch ((DispatchPurpose) req->purpose)
	{
		case DISPATCH_CHECK_GROUP:
		case DISPATCH_POLL_GROUP:
		case DISPATCH_OBSERVE_NODES:
		case DISPATCH_OBSERVE_DEMAND:
			return req->group_name;
		default:
			return req->submission_id;
	}
}

/*
 * dispatch_group_poll
 *		The schedule of a group's polls of one purpose, made on first use.
 */
static GroupPoll *
dispatch_group_poll(DispatchPurpose purpose, const char *group_name)
{
	ListCell   *lc;
	GroupPoll  *poll;
	MemoryContext old;

	foreach(lc, group_polls)
	{
		poll = lfirst(lc);
		if (poll->purpose == purpose && strcmp(poll->group_name, group_name) == 0)
			return poll;
	}
	old = MemoryContextSwitchTo(dispatch_context);
	poll = palloc0(sizeof(GroupPoll));
	poll->purpose = purpose;
	strlcpy(poll->group_name, group_name, sizeof(poll->group_name));
	poll->interval_ms = pg_ray_poll_interval_min_ms;
	poll->next_poll_at = 0;
	group_polls = lappend(group_polls, poll);
	MemoryContextSwitchTo(old);
	return poll;
}

/*
 * dispatch_poll_soon
 *		Something just changed in a group: poll it again quickly.
 */
static void
dispatch_poll_soon(const char *group_name)
{
	GroupPoll  *poll = dispatch_group_poll(DISPATCH_POLL_GROUP, group_name);

	poll->interval_ms = pg_ray_poll_interval_min_ms;
	poll->next_poll_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), poll->interval_ms);
}

/*
 * pg_ray_dispatch_reset
 *		Forget everything about requests and polls: the extension is gone or
 *		was created anew.  Requests still in flight finish, but their answers
 *		belong to an older epoch and are dropped.
 */
void
pg_ray_dispatch_reset(void)
{
	ListCell   *lc;

	pg_ray_dispatch_discard_planned();
	foreach(lc, in_flight)
		pfree(lfirst(lc));
	list_free(in_flight);
	in_flight = NIL;
	foreach(lc, group_polls)
		pfree(lfirst(lc));
	list_free(group_polls);
	group_polls = NIL;
	dispatch_installation[0] = '\0';
	dispatch_epoch++;
}

/*
 * pg_ray_dispatch_next_poll_ms
 *		Milliseconds until the next group poll or the end of a cool-down is
 *		due, or -1 when nothing is.
 */
long
pg_ray_dispatch_next_poll_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		best = -1;
	ListCell   *lc;

	foreach(lc, group_polls)
	{
		GroupPoll  *poll = lfirst(lc);
		long		ms;

		if (!poll->seen)
			continue;
		ms = poll->next_poll_at <= now ? 0 : (long) ((poll->next_poll_at - now + 999) / 1000);
		if (best < 0 || ms < best)
			best = ms;
	}
	/* the end of a cool-down is when that request may be made again */
	foreach(lc, in_flight)
	{
		InFlight   *f = lfirst(lc);
		long		ms;

		/* in flight: its answer wakes the worker */
		if (f->cool_until == 0)
			continue;
		ms = f->cool_until <= now ? 0 : (long) ((f->cool_until - now + 999) / 1000);
		if (best < 0 || ms < best)
			best = ms;
	}
	return best;
}

/*
 * dispatch_endpoint
 *		How to reach a group's dashboard; false when it has none (yet).
 *		Strings are palloc'd in the current (transaction) context.
 */
static bool
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
 * dispatch_plan_request
 *		Queue a request to start after commit.
 */
static void
dispatch_plan_request(PgRayHttpRequest *req, DispatchPurpose purpose, const char *group_name,
					  int64 job_id, int attempt, const char *submission_id)
{
	req->purpose = purpose;
	req->job_id = job_id;
	req->attempt = attempt;
	strlcpy(req->group_name, group_name, sizeof(req->group_name));
	strlcpy(req->submission_id, submission_id ? submission_id : "", sizeof(req->submission_id));
	req->planned_at = GetCurrentTimestamp();
	req->epoch = dispatch_epoch;
	dispatch_mark_in_flight(purpose, job_id, dispatch_key(req));
	req->next = planned;
	planned = req;
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
	ListCell   *lc;
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

	foreach(lc, group_polls)
		((GroupPoll *) lfirst(lc))->seen = false;
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
	foreach(lc, group_polls)
	{
		GroupPoll  *poll = lfirst(lc);

		if (!poll->seen && !dispatch_is_in_flight(poll->purpose, 0, poll->group_name))
		{
			group_polls = foreach_delete_current(group_polls, lc);
			pfree(poll);
		}
	}
}

/*
 * pg_ray_dispatch_start_planned
 *		After commit: send what the round planned.
 */
void
pg_ray_dispatch_start_planned(void)
{
	while (planned)
	{
		PgRayHttpRequest *req = planned;

		planned = req->next;
		req->next = NULL;
		if (req->purpose == DISPATCH_POLL_GROUP || req->purpose == DISPATCH_OBSERVE_NODES)
		{
			GroupPoll  *poll = dispatch_group_poll((DispatchPurpose) req->purpose, req->group_name);

			poll->next_poll_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															 poll->interval_ms);
		}
		/* for the crash matrix: SUBMITTING, the POST not sent */
		if (req->purpose == DISPATCH_SUBMIT)
			pg_ray_fault_point("before_submit");
		PG_TRY();
		{
			pg_ray_http_start(req);
		}
		PG_CATCH();
		{
			/* not in flight after all, and the rest is not sent either */
			dispatch_clear_in_flight((DispatchPurpose) req->purpose, req->job_id, dispatch_key(req));
			pg_ray_http_request_free(req);
			pg_ray_dispatch_discard_planned();
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
}

/*
 * pg_ray_dispatch_discard_planned
 *		The transaction that planned requests failed: send none of them.
 */
void
pg_ray_dispatch_discard_planned(void)
{
	while (planned)
	{
		PgRayHttpRequest *req = planned;

		planned = req->next;
		dispatch_clear_in_flight((DispatchPurpose) req->purpose, req->job_id, dispatch_key(req));
		pg_ray_http_request_free(req);
	}
}

/*
 * dispatch_failure
 *		A short description of what went wrong with a request, in the
 *		current memory context.
 */
static char *
dispatch_failure(PgRayHttpRequest *req)
{
	char		buf[512];

	return pstrdup(pg_ray_http_describe_failure(req, buf, sizeof(buf)));
}

/*
 * dispatch_unreachable
 *		Tell the catalog that a group's dashboard could not be reached.
 */
static void
dispatch_unreachable(PgRayHttpRequest *req)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(req->group_name), (Datum) 0,
	CStringGetTextDatum(dispatch_failure(req))};

	pg_ray_spi_exec("SELECT ray._apply_group_check($1, $2, $3)", 3, types, values, " n ");
}

/*
 * dispatch_no_answer
 *		No usable answer came: the network, a timeout, or a server error.
 *		Worth asking again later; never a verdict on the job.
 */
static bool
dispatch_no_answer(PgRayHttpRequest *req)
{
	return req->curl_code != CURLE_OK || req->status >= 500 || req->status == 0;
}

/*
 * dispatch_cluster_unreachable
 *		The dashboard itself could not be reached (or a proxy in front of it
 *		says so).  An answer that was too large or too slow to finish is not
 *		that: the cluster answered, and its runs must not be given up for it.
 */
static bool
dispatch_cluster_unreachable(PgRayHttpRequest *req)
{
	if (req->response_too_large)
		return false;
	switch (req->curl_code)
	{
		case CURLE_OK:
			return req->status == 502 || req->status == 503 || req->status == 504;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_SSL_CONNECT_ERROR:
			return true;
		case CURLE_OPERATION_TIMEDOUT:
			/* not even a status line came back */
			return req->status == 0;
		default:
			return false;
	}
}

/*
 * dispatch_text
 *		A text datum of a string Ray sent (UTF-8), in the database's encoding.
 */
static Datum
dispatch_text(const char *utf8)
{
	return CStringGetTextDatum(pg_any_to_server(utf8, strlen(utf8), PG_UTF8));
}

/*
 * dispatch_apply_job_info
 *		Hand what Ray says of one run to the state machine.
 */
static void
dispatch_apply_job_info(int64 job_id, int attempt, RayJobInfo *info)
{
	Oid			types[9] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
	INT8OID, INT8OID, TEXTOID};
	Datum		values[9];
	char		nulls[9];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(attempt);
	values[2] = CStringGetTextDatum(ray_job_status_name(info->status));
	values[3] = info->message ? dispatch_text(info->message) : (Datum) 0;
	nulls[3] = info->message ? ' ' : 'n';
	values[4] = info->error_type ? dispatch_text(info->error_type) : (Datum) 0;
	nulls[4] = info->error_type ? ' ' : 'n';
	values[5] = Int32GetDatum(info->driver_exit_code);
	nulls[5] = info->has_driver_exit_code ? ' ' : 'n';
	values[6] = Int64GetDatum(info->start_time_ms);
	nulls[6] = info->start_time_ms > 0 ? ' ' : 'n';
	values[7] = Int64GetDatum(info->end_time_ms);
	nulls[7] = info->end_time_ms > 0 ? ' ' : 'n';
	values[8] = info->job_id ? dispatch_text(info->job_id) : (Datum) 0;
	nulls[8] = info->job_id ? ' ' : 'n';
	pg_ray_spi_exec("SELECT ray._apply_job_info($1, $2, $3, $4, $5, $6, $7, $8, $9)",
				  9, types, values, nulls);
}

/*
 * dispatch_plan_submission
 *		Ray said it has no run of this attempt: submit it.  A job with a
 *		working directory uploads its package first (upload_first), and is
 *		POSTed once the upload has succeeded.
 */
static void
dispatch_plan_submission(PgRayHttpRequest *req, bool upload_first)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(req->job_id), Int32GetDatum(req->attempt)};
	RayEndpoint endpoint;
	PgRayHttpRequest *next;
	char	   *body;
	bool		isnull;

	/* also settles a stop request that came before the run existed */
	pg_ray_spi_exec("SELECT ray._submission_body($1, $2)", 2, types, values, NULL);
	if (SPI_processed != 1)
		return;
	body = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull || !dispatch_endpoint(req->group_name, &endpoint))
		return;

	if (upload_first)
	{
		pg_ray_spi_exec("SELECT package, content FROM ray._submission_package($1, $2) WHERE package IS NOT NULL",
						2, types, values, NULL);
		if (SPI_processed == 1)
		{
			char	   *package = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			bytea	   *content = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
															   SPI_tuptable->tupdesc, 2, &isnull));

			next = ray_api_request(&endpoint, "PUT", "/api/packages/gcs/%s", package);
			pg_ray_http_request_set_body(next, VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content),
										 "application/zip");
			/* a package may be large; the same name always holds the same bytes */
			next->timeout_ms = Max(next->timeout_ms, 120000L);
			dispatch_plan_request(next, DISPATCH_UPLOAD, req->group_name, req->job_id,
								  req->attempt, req->submission_id);
			return;
		}
	}

	next = ray_api_request(&endpoint, "POST", "/api/jobs/");
	body = pg_server_to_any(body, strlen(body), PG_UTF8);
	pg_ray_http_request_set_body(next, body, strlen(body), "application/json");
	/* never sent twice: a lost answer is settled by checking again */
	next->max_tries = 1;
	next->fresh_connection = true;
	dispatch_plan_request(next, DISPATCH_SUBMIT, req->group_name, req->job_id,
						  req->attempt, req->submission_id);
}

/*
 * dispatch_apply_upload
 *		The working directory is in the cluster: now the job itself.
 */
static void
dispatch_apply_upload(PgRayHttpRequest *req)
{
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(req->job_id), Int32GetDatum(req->attempt),
	CStringGetTextDatum(dispatch_failure(req))};

	if (pg_ray_http_succeeded(req))
		dispatch_plan_submission(req, false);
	else if (dispatch_no_answer(req))
	{
		pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
		if (dispatch_cluster_unreachable(req))
			dispatch_unreachable(req);
		dispatch_ask_later = true;
	}
	else
		/* refused for good, such as a package over the cluster's limit */
		pg_ray_spi_exec("SELECT ray._apply_submitted($1, $2, $3)", 3, types, values, NULL);
}

/*
 * dispatch_apply_check_submission
 *		Ray's answer to "do you have this submission?": adopt the run it has,
 *		or submit it now that Ray said it has none.
 */
static void
dispatch_apply_check_submission(PgRayHttpRequest *req)
{
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(req->job_id), Int32GetDatum(req->attempt), (Datum) 0};
	char		errbuf[RAY_PARSE_ERRLEN];

	if (pg_ray_http_succeeded(req))
	{
		RayJobInfo	info;

		if (!ray_parse_job_info(req->response, req->response_len, &info, errbuf))
		{
			values[2] = CStringGetTextDatum(psprintf("GET %s: %s", req->url, errbuf));
			pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
			dispatch_ask_later = true;
			return;
		}
		PG_TRY();
		{
			dispatch_apply_job_info(req->job_id, req->attempt, &info);
		}
		PG_FINALLY();
		{
			ray_job_info_free(&info);
		}
		PG_END_TRY();
		return;
	}
	if (req->status == 404)
	{
		dispatch_plan_submission(req, true);
		return;
	}
	values[2] = CStringGetTextDatum(dispatch_failure(req));
	pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
	if (dispatch_cluster_unreachable(req))
		dispatch_unreachable(req);
	dispatch_ask_later = true;
}

/*
 * dispatch_apply_submit
 *		Ray's answer to a POST of a submission.
 */
static void
dispatch_apply_submit(PgRayHttpRequest *req)
{
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(req->job_id), Int32GetDatum(req->attempt), (Datum) 0};
	char		nulls[3] = {' ', ' ', 'n'};

	if (pg_ray_http_succeeded(req))
	{
		pg_ray_spi_exec("SELECT ray._apply_submitted($1, $2, $3)", 3, types, values, nulls);
		dispatch_poll_soon(req->group_name);
		return;
	}
	values[2] = CStringGetTextDatum(dispatch_failure(req));
	nulls[2] = ' ';

	/*
	 * "already exists" (Ray answers it with a 500) means an earlier POST did
	 * get through, which the next check adopts.  A refusal for good is any
	 * other client error, such as a runtime_env Ray does not accept.
	 */
	if (req->response && strstr(req->response, "already exists"))
		pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
	else if (!dispatch_no_answer(req) && req->status >= 400 && req->status < 500)
		pg_ray_spi_exec("SELECT ray._apply_submitted($1, $2, $3)", 3, types, values, nulls);
	else
	{
		pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
		if (dispatch_cluster_unreachable(req))
			dispatch_unreachable(req);
		dispatch_ask_later = true;
	}
}

/*
 * dispatch_apply_poll
 *		The job list of a group: move every run pg_ray follows there along,
 *		and requeue those Ray no longer knows.
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
			RayJobInfo *found = NULL;

			for (size_t j = 0; j < list.count && submission_id; j++)
			{
				if (list.jobs[j].submission_id &&
					strcmp(list.jobs[j].submission_id, submission_id) == 0)
				{
					found = &list.jobs[j];
					break;
				}
			}
			if (found)
				dispatch_apply_job_info(job_id, attempt, found);
			else
			{
				Oid			missing_types[3] = {INT8OID, INT4OID, TEXTOID};
				Datum		missing[3] = {Int64GetDatum(job_id), Int32GetDatum(attempt),
					CStringGetTextDatum(psprintf("Ray at %s no longer knows run %s (its head may have restarted)",
												 req->url, submission_id))};

				pg_ray_spi_exec("SELECT ray._apply_run_missing($1, $2, $3)", 3, missing_types,
							  missing, NULL);
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
		values[1] = dispatch_text(req->response);
		pg_ray_spi_exec("SELECT ray._apply_cluster_status($1, $2::jsonb)", 2, types, values, NULL);
		return;
	}

	if (answered)
		values[1] = dispatch_text(req->response);
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
