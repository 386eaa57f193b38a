/*-------------------------------------------------------------------------
 *
 * pg_ray.c
 *		Entry point of the pg_ray library: GUCs, shared memory, worker.
 *
 * pg_ray has to be loaded through shared_preload_libraries, because it runs
 * a background worker and keeps that worker's state in shared memory.
 * _PG_init defines the GUCs and reserves the pg_ray. prefix (settings.c),
 * asks for shared memory, registers the background worker and installs the
 * commit hook that wakes the worker.  The real work lives in the other
 * files.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/pg_ray.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"

#include "settings.h"
#include "shmem.h"
#include "wakeup.h"
#include "worker.h"

PG_MODULE_MAGIC;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);
static void pg_ray_shmem_request_hook(void);
static void pg_ray_shmem_startup_hook(void);

/*
 * _PG_init
 *		Module load: refuse to run outside shared_preload_libraries, then set
 *		up GUCs, shared memory, the worker and the commit hook.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_ray must be loaded via shared_preload_libraries"),
				 errhint("Add pg_ray to shared_preload_libraries in postgresql.conf and restart the server.")));

	pg_ray_define_gucs();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pg_ray_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pg_ray_shmem_startup_hook;

	pg_ray_register_worker();
	pg_ray_wakeup_init();
}

/*
 * pg_ray_shmem_request_hook
 *		Ask for the shared memory of the worker's state, chaining any
 *		previous hook.
 */
static void
pg_ray_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	pg_ray_shmem_request();
}

/*
 * pg_ray_shmem_startup_hook
 *		Attach to (or create) the worker's state, chaining any previous hook.
 */
static void
pg_ray_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	pg_ray_shmem_startup();
}
