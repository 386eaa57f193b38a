/*-------------------------------------------------------------------------
 *
 * pg_ray.h
 *		The settings shared by the files of the pg_ray extension.
 *
 * pg_ray makes PostgreSQL the control plane of Ray: users write the desired
 * state of resource groups and jobs into the ray.* catalog through SQL, and a
 * background worker makes Ray match it.  This header holds what every part
 * may read: the variables of the pg_ray.* settings (GUCs), which settings.c
 * defines.  Each module's entry points are declared in a header named for
 * it (shmem.h, worker.h, dispatch.h, provider_local.h, ...).
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

/* GUC variables, defined in settings.c. */
extern char *pg_ray_database_name;
extern int	pg_ray_worker_restart_seconds;
extern int	pg_ray_error_retry_seconds;
extern int	pg_ray_max_workers_per_group;
extern int	pg_ray_http_timeout_ms;
extern int	pg_ray_worker_lock_timeout_ms;
extern int	pg_ray_worker_statement_timeout_ms;
extern int	pg_ray_publish_timeout_ms;
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
extern int	pg_ray_node_os_users;
extern char *pg_ray_node_os_user_prefix;
extern int	pg_ray_node_stop_timeout_ms;
extern int	pg_ray_observe_interval_ms;
extern int	pg_ray_scale_up_step;
extern int	pg_ray_scale_cooldown_s;
extern int	pg_ray_disk_check_interval_s;
extern int	pg_ray_max_starting_jobs;
extern int	pg_ray_max_ray_requeues;
extern int	pg_ray_fair_share_window_s;
extern int	pg_ray_history_retention_s;
extern int	pg_ray_purge_interval_s;
extern bool pg_ray_local_nodes;
extern bool pg_ray_stop_nodes_at_shutdown;
extern char *pg_ray_runner_host;
extern int	pg_ray_runner_sslmode;
extern char *pg_ray_runner_sslrootcert;
extern char *pg_ray_metrics_targets_file;
extern char *pg_ray_fault_pause_at;

#endif							/* PG_RAY_H */
