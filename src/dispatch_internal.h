/*-------------------------------------------------------------------------
 *
 * dispatch_internal.h
 *		What the files of the dispatcher share: the purposes of requests,
 *		the schedule of group polls, and their functions for one another.
 *
 * The dispatcher is the background worker's traffic with Ray: what to ask,
 * and what the answers mean for the catalog.  Each round plans requests
 * from the worker's to-do list inside its transaction; they are sent once
 * it has committed, and their answers are applied in a transaction of
 * their own.  It is split by concern, each file calling only those above
 * it in this list:
 *
 *	dispatch_schedule.c		what is in flight, cooling down or due
 *	dispatch_send.c			planned requests, sent after commit
 *	dispatch_plan.c			the round's to-do list turned into requests
 *	dispatch_answer.c		what an answer says
 *	dispatch_submit.c		the exactly-once submission of a run
 *	dispatch_apply.c		answers applied to the catalog
 *
 * dispatch.h declares the entry points the worker calls.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatch_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_DISPATCH_INTERNAL_H
#define PG_RAY_DISPATCH_INTERNAL_H

#include "utils/timestamp.h"

#include "http.h"
#include "ray_api.h"
#include "ray_parse.h"

/* What a request to Ray is for: its answer is applied accordingly. */
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

/* dispatch_schedule.c */
extern uint32 dispatch_epoch;
extern void dispatch_init(void);
extern bool dispatch_is_in_flight(DispatchPurpose purpose, int64 job_id, const char *key);
extern void dispatch_cool_down(DispatchPurpose purpose, int64 job_id, const char *key);
extern void dispatch_mark_in_flight(DispatchPurpose purpose, int64 job_id, const char *key);
extern void dispatch_clear_in_flight(DispatchPurpose purpose, int64 job_id, const char *key);
extern const char *dispatch_key(PgRayHttpRequest *req);
extern GroupPoll *dispatch_group_poll(DispatchPurpose purpose, const char *group_name);
extern void dispatch_poll_soon(const char *group_name);
extern void dispatch_polls_mark_unseen(void);
extern void dispatch_polls_forget_unseen(void);
extern void dispatch_schedule_clear(void);

/* dispatch_send.c */
extern void dispatch_plan_request(PgRayHttpRequest *req, DispatchPurpose purpose,
								  const char *group_name, int64 job_id, int attempt,
								  const char *submission_id);

/* dispatch_plan.c */
extern bool dispatch_endpoint(const char *group_name, RayEndpoint *endpoint);

/* dispatch_answer.c */
extern bool dispatch_ask_later;
extern char *dispatch_failure(PgRayHttpRequest *req);
extern void dispatch_unreachable(PgRayHttpRequest *req);
extern bool dispatch_no_answer(PgRayHttpRequest *req);
extern bool dispatch_cluster_unreachable(PgRayHttpRequest *req);
extern Datum dispatch_text(const char *utf8);
extern Datum dispatch_json(const char *utf8);
extern void dispatch_apply_job_info(int64 job_id, int attempt, RayJobInfo *info);

/* dispatch_submit.c */
extern void dispatch_plan_submission(PgRayHttpRequest *req, bool upload_first);
extern void dispatch_apply_upload(PgRayHttpRequest *req);
extern void dispatch_apply_check_submission(PgRayHttpRequest *req);
extern void dispatch_apply_submit(PgRayHttpRequest *req);

#endif							/* PG_RAY_DISPATCH_INTERNAL_H */
