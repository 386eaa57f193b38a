/*-------------------------------------------------------------------------
 *
 * pg_ray.h
 *		Declarations shared by the files of the pg_ray extension.
 *
 * pg_ray makes PostgreSQL the control plane of Ray: users write the desired
 * state of resource groups and jobs into the ray.* catalog through SQL, and a
 * background worker makes Ray match it.  This header holds what more than one
 * file needs: the GUC variables, the shared-memory state the background
 * worker publishes, and the entry points of each file.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/pg_ray.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_H
#define PG_RAY_H

#include "postgres.h"

#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* Length of the last error message kept in shared memory, with its NUL. */
#define PG_RAY_ERROR_LEN 256

/* The name the background worker reports as its actor in event rows. */
#define PG_RAY_WORKER_ACTOR "pg_ray worker"

/* GUC variables, defined in settings.c. */
extern char *pg_ray_database_name;
extern int	pg_ray_worker_restart_seconds;
extern int	pg_ray_error_retry_seconds;
extern int	pg_ray_max_workers_per_group;
extern int	pg_ray_http_timeout_ms;
extern int	pg_ray_max_log_bytes;
extern int	pg_ray_poll_interval_ms;
extern int	pg_ray_poll_interval_min_ms;
extern int	pg_ray_cluster_unreachable_timeout;
extern int	pg_ray_max_working_dir_bytes;
extern char *pg_ray_ray_executable;
extern char *pg_ray_redis_server;
extern char *pg_ray_run_directory;
extern int	pg_ray_port_range_start;
extern int	pg_ray_port_range_end;
extern int	pg_ray_node_stop_timeout_ms;
extern int	pg_ray_observe_interval_ms;
extern int	pg_ray_scale_up_step;
extern int	pg_ray_scale_cooldown_s;
extern bool pg_ray_local_nodes;
extern bool pg_ray_stop_nodes_at_shutdown;
extern char *pg_ray_runner_host;
extern char *pg_ray_fault_pause_at;

/*
 * State of the background worker, in shared memory.  The worker writes it;
 * any backend reads it for ray.worker_status() and uses worker_procno to set
 * the worker's latch when a transaction that changed desired state commits.
 * Everything is protected by the spinlock.
 */
typedef struct PgRaySharedState
{
	slock_t		mutex;
	pid_t		worker_pid;		/* 0 when no worker runs */
	int			worker_procno;	/* index in ProcGlobal->allProcs, or -1 */
	TimestampTz started_at;
	TimestampTz last_wakeup_at;
	TimestampTz last_round_at;
	uint64		latch_wakeups;	/* wakeups caused by a SetLatch */
	uint64		timeout_wakeups;	/* wakeups caused by a timeout */
	uint64		rounds;			/* rounds of work completed */
	uint64		round_errors;	/* rounds that ended in an error */
	uint64		wakeup_requests;	/* commits that asked for a wakeup */
	char		last_error[PG_RAY_ERROR_LEN];
	ConditionVariable jobs_changed; /* broadcast when the worker moved jobs */
} PgRaySharedState;

/* shmem.c */
extern void pg_ray_shmem_request(void);
extern void pg_ray_shmem_startup(void);
extern PgRaySharedState *pg_ray_shared_state(void);
extern void pg_ray_shared_attach_worker(void);
extern void pg_ray_shared_note_wakeup(bool by_latch);
extern void pg_ray_shared_note_round(const char *error_message);

/* wakeup.c */
extern void pg_ray_wakeup_init(void);
extern bool pg_ray_is_worker;

/* worker.c */
extern void pg_ray_register_worker(void);
extern PGDLLEXPORT void pg_ray_worker_main(Datum main_arg);

/* worker_round.c */
extern void pg_ray_worker_round(bool first_round);

/* dispatcher.c */
/* fault.c */
extern void pg_ray_fault_point(const char *point);

extern void pg_ray_dispatch_plan(void);
extern void pg_ray_dispatch_start_planned(void);
extern void pg_ray_dispatch_discard_planned(void);
extern void pg_ray_dispatch_reset(void);
extern bool pg_ray_dispatch_apply_done(void);
extern long pg_ray_dispatch_next_poll_ms(void);
extern void pg_ray_jobs_changed(void);

/* package.c */
extern bytea *pg_ray_zip_path(const char *path, const char *extra_name,
							  const char *extra_content);

/* publish.c */
extern void pg_ray_publish_round(void);
extern long pg_ray_publish_next_ms(void);

/* provider_local.c */
extern void pg_ray_local_round(bool first_round);
extern long pg_ray_local_next_check_ms(void);
extern bool pg_ray_local_check(void);
extern void pg_ray_local_forget(void);
extern void pg_ray_local_shutdown(void);

#endif							/* PG_RAY_H */
