/*-------------------------------------------------------------------------
 *
 * fault.c
 *		Fault points: named steps of the background worker where a test can
 *		make it stop and wait, to crash something at that precise moment.
 *
 * The crash matrix (test/integration/test_crash_matrix.py) must catch a job
 * in states that last milliseconds: SUBMITTING with the POST not yet sent,
 * or sent and answered but the answer not yet recorded.  A superuser sets
 * pg_ray.fault_pause_at to the name of a step (ALTER SYSTEM, then a
 * reload); when the worker reaches that step it logs so, shows "pg_ray:
 * paused at fault point NAME" in pg_stat_activity, and waits until the
 * setting names another step or none, or until it is killed.  The points
 * are outside any transaction, so a paused worker holds no lock.  Empty
 * (the default), the check costs one string comparison.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/fault.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#include "fault.h"
#include "pg_ray.h"

/*
 * fault_armed
 *		Whether pg_ray.fault_pause_at names this point.
 */
static bool
fault_armed(const char *point)
{
	return pg_ray_fault_pause_at != NULL && strcmp(pg_ray_fault_pause_at, point) == 0;
}

/*
 * pg_ray_fault_point
 *		The worker is at the named step: wait here while
 *		pg_ray.fault_pause_at names it.  Only for the worker, outside a
 *		transaction (it reloads the configuration while it waits).
 */
void
pg_ray_fault_point(const char *point)
{
	char		activity[64];

	if (!fault_armed(point))
		return;
	Assert(!IsTransactionState());
	ereport(LOG,
			(errmsg("pg_ray worker paused at fault point \"%s\"", point),
			 errhint("ALTER SYSTEM RESET pg_ray.fault_pause_at and reload to let it go on.")));
	snprintf(activity, sizeof(activity), "pg_ray: paused at fault point %s", point);
	pgstat_report_activity(STATE_RUNNING, activity);
	while (fault_armed(point))
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	ereport(LOG, (errmsg("pg_ray worker goes on from fault point \"%s\"", point)));
	pgstat_report_activity(STATE_IDLE, NULL);
}
