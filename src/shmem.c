/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		The background worker's state in shared memory, and
 *		ray.worker_status() that shows it.
 *
 * The worker publishes who it is (pid and PGPROC number, so that committing
 * backends can set its latch) and counters of what it has done, so that an
 * operator can tell from SQL that it is alive and whether it is being woken.
 * As in autoprewarm, the worker clears its entry when it exits.  The same
 * state holds the condition variable that sessions in ray.wait_job sleep
 * on, which the worker broadcasts when it may have moved jobs.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "shmem.h"

static PgRaySharedState *pg_ray_state = NULL;

static void pg_ray_shared_detach_worker(int code, Datum arg);
static bool shmem_caller_sees_all(void);

PG_FUNCTION_INFO_V1(pg_ray_worker_status);

/*
 * pg_ray_shmem_request
 *		Reserve room for the shared state; called from shmem_request_hook.
 */
void
pg_ray_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(PgRaySharedState)));
}

/*
 * pg_ray_shmem_startup
 *		Create or attach to the shared state.  The postmaster creates it once;
 *		backends started later find it already initialized.
 */
void
pg_ray_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pg_ray_state = ShmemInitStruct("pg_ray", sizeof(PgRaySharedState), &found);
	if (!found)
	{
		memset(pg_ray_state, 0, sizeof(PgRaySharedState));
		SpinLockInit(&pg_ray_state->mutex);
		ConditionVariableInit(&pg_ray_state->jobs_changed);
		pg_ray_state->worker_procno = -1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * pg_ray_shared_state
 *		The shared state, or an error if the library was not preloaded (in
 *		which case the state was never created).
 */
PgRaySharedState *
pg_ray_shared_state(void)
{
	if (pg_ray_state == NULL)
		elog(ERROR, "pg_ray shared memory is not initialized");
	return pg_ray_state;
}

/*
 * pg_ray_shared_attach_worker
 *		Record the calling process as the one pg_ray worker, and arrange for
 *		the record to be cleared when it exits, however it exits.
 */
void
pg_ray_shared_attach_worker(void)
{
	PgRaySharedState *state = pg_ray_shared_state();

	SpinLockAcquire(&state->mutex);
	if (state->worker_pid != 0 && state->worker_pid != MyProcPid)
	{
		pid_t		other = state->worker_pid;

		SpinLockRelease(&state->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("pg_ray worker is already running under PID %d", (int) other)));
	}
	state->worker_pid = MyProcPid;
	state->worker_procno = MyProc->pgprocno;
	state->started_at = GetCurrentTimestamp();
	/* the counters describe this worker, not its predecessors */
	state->last_wakeup_at = 0;
	state->last_round_at = 0;
	state->latch_wakeups = 0;
	state->timeout_wakeups = 0;
	state->rounds = 0;
	state->round_errors = 0;
	state->last_error[0] = '\0';
	SpinLockRelease(&state->mutex);

	before_shmem_exit(pg_ray_shared_detach_worker, (Datum) 0);
}

/*
 * pg_ray_shared_detach_worker
 *		before_shmem_exit callback: forget the worker, so that committing
 *		backends stop setting a latch nobody waits on.
 */
static void
pg_ray_shared_detach_worker(int code, Datum arg)
{
	PgRaySharedState *state = pg_ray_shared_state();

	SpinLockAcquire(&state->mutex);
	if (state->worker_pid == MyProcPid)
	{
		state->worker_pid = 0;
		state->worker_procno = -1;
	}
	SpinLockRelease(&state->mutex);
}

/*
 * pg_ray_shared_note_wakeup
 *		Count a wakeup of the worker, telling latch wakeups from timeouts so
 *		that a test can see the worker is woken by commits and not by polling.
 */
void
pg_ray_shared_note_wakeup(bool by_latch)
{
	PgRaySharedState *state = pg_ray_shared_state();

	SpinLockAcquire(&state->mutex);
	state->last_wakeup_at = GetCurrentTimestamp();
	if (by_latch)
		state->latch_wakeups++;
	else
		state->timeout_wakeups++;
	SpinLockRelease(&state->mutex);
}

/*
 * pg_ray_shared_note_round
 *		Count a finished round of work; error_message is NULL when the round
 *		succeeded, and the last error is then kept for the operator to read.
 */
void
pg_ray_shared_note_round(const char *error_message)
{
	PgRaySharedState *state = pg_ray_shared_state();
	TimestampTz now = GetCurrentTimestamp();
	int			error_len = 0;

	/* cut at a character's boundary: last_error is text in the database's encoding */
	if (error_message != NULL)
		error_len = pg_mbcliplen(error_message, strlen(error_message), PG_RAY_ERROR_LEN - 1);
	SpinLockAcquire(&state->mutex);
	state->last_round_at = now;
	state->rounds++;
	if (error_message != NULL)
	{
		state->round_errors++;
		memcpy(state->last_error, error_message, error_len);
		state->last_error[error_len] = '\0';
	}
	SpinLockRelease(&state->mutex);
}

/*
 * pg_ray_jobs_changed
 *		Wake the sessions waiting in ray.wait_job: something may have moved.
 */
void
pg_ray_jobs_changed(void)
{
	ConditionVariableBroadcast(&pg_ray_shared_state()->jobs_changed);
}

/*
 * shmem_caller_sees_all
 *		Whether the current user sees what an admin sees: it has the
 *		privileges of ray_monitor (ray_admin has them; superusers do).
 */
static bool
shmem_caller_sees_all(void)
{
	Oid			monitor = get_role_oid("ray_monitor", true);

	return superuser() || (OidIsValid(monitor) && has_privs_of_role(GetUserId(), monitor));
}

/*
 * pg_ray_worker_status
 *		ray.worker_status(): one row that says whether the worker runs and
 *		what it has done since it started.  Times are NULL until they happen.
 */
Datum
pg_ray_worker_status(PG_FUNCTION_ARGS)
{
	PgRaySharedState *state = pg_ray_shared_state();
	PgRaySharedState copy;
	TupleDesc	tupdesc;
	Datum		values[11];
	bool		nulls[11];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	SpinLockAcquire(&state->mutex);
	memcpy(&copy, state, sizeof(copy));
	SpinLockRelease(&state->mutex);

	memset(nulls, 0, sizeof(nulls));
	values[0] = BoolGetDatum(copy.worker_pid != 0);
	values[1] = Int32GetDatum((int32) copy.worker_pid);
	nulls[1] = copy.worker_pid == 0;
	values[2] = TimestampTzGetDatum(copy.started_at);
	nulls[2] = copy.started_at == 0;
	values[3] = TimestampTzGetDatum(copy.last_wakeup_at);
	nulls[3] = copy.last_wakeup_at == 0;
	values[4] = TimestampTzGetDatum(copy.last_round_at);
	nulls[4] = copy.last_round_at == 0;
	values[5] = Int64GetDatum((int64) copy.wakeup_requests);
	values[6] = Int64GetDatum((int64) copy.latch_wakeups);
	values[7] = Int64GetDatum((int64) copy.timeout_wakeups);
	values[8] = Int64GetDatum((int64) copy.rounds);
	values[9] = Int64GetDatum((int64) copy.round_errors);
	values[10] = CStringGetTextDatum(copy.last_error);
	/* a round's error may name another team's group or job: for admins only */
	nulls[10] = copy.last_error[0] == '\0' || !shmem_caller_sees_all();

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
