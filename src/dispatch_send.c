/*-------------------------------------------------------------------------
 *
 * dispatch_send.c
 *		Requests to Ray wait here until the transaction that planned them
 *		commits, then go to the HTTP driver, which runs them in the
 *		background.
 *
 * Requests start only after the transaction commits, so that Ray never
 * hears of an attempt the catalog could still forget; a transaction
 * that fails sends none of what it planned.  The HTTP driver (http.c)
 * runs them without blocking, inside the worker's wait, and hands them
 * back done for dispatch_apply.c.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatch_send.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "dispatch.h"
#include "dispatch_internal.h"
#include "fault.h"
#include "http.h"

/* What the current transaction planned, sent once it has committed. */
static PgRayHttpRequest *planned = NULL;

/*
 * dispatch_plan_request
 *		Queue a request to start after commit.
 */
void
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
