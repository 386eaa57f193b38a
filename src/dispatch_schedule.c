/*-------------------------------------------------------------------------
 *
 * dispatch_schedule.c
 *		What the dispatcher remembers between rounds: requests in flight or
 *		cooling down, and when each group is polled next.
 *
 * A round does not ask Ray what it asked already and has no answer to
 * yet, nor, for pg_ray.error_retry_seconds, what it asked when the
 * answer could not be applied: a persistent error does not turn into a
 * tight loop of requests.  Groups with runs in Ray, and local groups'
 * nodes, are polled on a schedule of their own, fast while they change
 * and slower as they settle; the worker sleeps until the next poll or
 * the end of a cool-down is due.  This is the bottom of the dispatcher:
 * it calls none of its other files.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatch_schedule.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dispatch.h"
#include "dispatch_internal.h"
#include "pg_ray.h"

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

static MemoryContext dispatch_context = NULL;
static List *in_flight = NIL;
static List *group_polls = NIL;

/*
 * The epoch changes whenever the extension is (re)created: answers to
 * requests of an older epoch are dropped, since job ids start again at 1 and
 * an old answer could otherwise be taken for a new job's.
 */
uint32		dispatch_epoch = 1;

/*
 * dispatch_init
 *		A memory context for what lives across transactions.
 */
void
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
bool
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
void
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

/*
 * dispatch_mark_in_flight
 *		Note a request as in flight from its planning until its answer is
 *		applied, so that no round plans it again meanwhile.
 */
void
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

/*
 * dispatch_clear_in_flight
 *		The request is no longer in flight: its answer came, or it was never
 *		sent.  Cool-downs are left alone.
 */
void
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
const char *
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
GroupPoll *
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
void
dispatch_poll_soon(const char *group_name)
{
	GroupPoll  *poll = dispatch_group_poll(DISPATCH_POLL_GROUP, group_name);

	poll->interval_ms = pg_ray_poll_interval_min_ms;
	poll->next_poll_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), poll->interval_ms);
}

/*
 * dispatch_polls_mark_unseen
 *		Before a round's to-do list is read: no group's schedule has been
 *		asked for yet, so that those the list no longer names can be told.
 */
void
dispatch_polls_mark_unseen(void)
{
	ListCell   *lc;

	foreach(lc, group_polls)
		((GroupPoll *) lfirst(lc))->seen = false;
}

/*
 * dispatch_polls_forget_unseen
 *		After a round's to-do list: forget the schedules of groups with
 *		nothing left to follow.
 */
void
dispatch_polls_forget_unseen(void)
{
	ListCell   *lc;

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
 * dispatch_schedule_clear
 *		Forget every request in flight or cooling down and every group's
 *		schedule, and start a new epoch: the extension is gone or was
 *		created anew (see pg_ray_dispatch_reset).
 */
void
dispatch_schedule_clear(void)
{
	ListCell   *lc;

	foreach(lc, in_flight)
		pfree(lfirst(lc));
	list_free(in_flight);
	in_flight = NIL;
	foreach(lc, group_polls)
		pfree(lfirst(lc));
	list_free(group_polls);
	group_polls = NIL;
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
