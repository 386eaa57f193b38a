/*-------------------------------------------------------------------------
 *
 * settings.c
 *		The pg_ray.* settings (GUCs): their variables and their definitions.
 *
 * Every module reads the settings through the variables declared in
 * pg_ray.h; _PG_init defines them once, at load.  Kept apart from pg_ray.c,
 * which calls the other modules, so that reading a setting never makes a
 * module depend on the library's entry point.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"
#include "utils/memutils.h"

#include "pg_ray.h"
#include "settings.h"

/* The settings' variables, with their defaults until _PG_init defines them. */
char	   *pg_ray_database_name = NULL;
int			pg_ray_worker_restart_seconds = 5;
int			pg_ray_error_retry_seconds = 10;
int			pg_ray_max_workers_per_group = 8;
int			pg_ray_http_timeout_ms = 10000;
int			pg_ray_worker_lock_timeout_ms = 2000;
int			pg_ray_worker_statement_timeout_ms = 60000;
int			pg_ray_publish_timeout_ms = 60000;
int			pg_ray_max_log_bytes = 1048576;
int			pg_ray_poll_interval_ms = 2000;
int			pg_ray_poll_interval_min_ms = 200;
int			pg_ray_cluster_unreachable_timeout = 60;
int			pg_ray_max_working_dir_bytes = 100 * 1024 * 1024;
char	   *pg_ray_ray_executable = NULL;
char	   *pg_ray_redis_server = NULL;
char	   *pg_ray_run_directory = NULL;
int			pg_ray_port_range_start = 20000;
int			pg_ray_port_range_end = 29999;
int			pg_ray_node_os_users = 32;
char	   *pg_ray_node_os_user_prefix = NULL;
int			pg_ray_node_stop_timeout_ms = 15000;
int			pg_ray_observe_interval_ms = 2000;
int			pg_ray_scale_up_step = 1;
int			pg_ray_scale_cooldown_s = 10;
int			pg_ray_disk_check_interval_s = 30;
int			pg_ray_max_starting_jobs = 4;
int			pg_ray_max_ray_requeues = 10;
int			pg_ray_fair_share_window_s = 3600;
int			pg_ray_history_retention_s = 30 * 86400;
int			pg_ray_purge_interval_s = 3600;
bool		pg_ray_local_nodes = true;
bool		pg_ray_stop_nodes_at_shutdown = false;
char	   *pg_ray_runner_host = NULL;
int			pg_ray_runner_sslmode = 2;
char	   *pg_ray_runner_sslrootcert = NULL;
char	   *pg_ray_metrics_targets_file = NULL;
char	   *pg_ray_fault_pause_at = NULL;

/* libpq's sslmode values, for the runs' connections (pg_ray.runner_sslmode) */
static const struct config_enum_entry runner_sslmode_options[] = {
	{"disable", 0, false},
	{"allow", 1, false},
	{"prefer", 2, false},
	{"require", 3, false},
	{"verify-ca", 4, false},
	{"verify-full", 5, false},
	{NULL, 0, false}
};

/*
 * settings_check_os_user_prefix
 *		pg_ray.node_os_user_prefix must make OS user names that useradd
 *		takes and that leave room for a number: a lowercase letter, then up
 *		to 23 lowercase letters, digits, '-' or '_'.
 */
static bool
settings_check_os_user_prefix(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;
	size_t		len = strlen(p);

	if (len == 0 || len > 24 || p[0] < 'a' || p[0] > 'z' ||
		strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-_") != len)
	{
		GUC_check_errdetail("The prefix must be a lowercase letter followed by at most 23 lowercase letters, digits, '-' or '_'.");
		return false;
	}
	return true;
}

/*
 * pg_ray_define_gucs
 *		Define the pg_ray.* settings and reserve the prefix, so that a typo
 *		such as pg_ray.databse_name is an error rather than silently ignored.
 */
void
pg_ray_define_gucs(void)
{
	DefineCustomStringVariable("pg_ray.database_name",
							   "Database in which the pg_ray background worker runs.",
							   "CREATE EXTENSION pg_ray is only allowed in this database.",
							   &pg_ray_database_name,
							   "postgres",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.worker_restart_seconds",
							"Seconds the postmaster waits before restarting a failed pg_ray worker.",
							NULL,
							&pg_ray_worker_restart_seconds,
							5, 1, 3600,
							PGC_POSTMASTER,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.error_retry_seconds",
							"Seconds the pg_ray worker waits before it retries a round of work that failed.",
							NULL,
							&pg_ray_error_retry_seconds,
							10, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.max_workers_per_group",
							"Largest max_workers a worker group may ask for.",
							"The managed service this is modelled on allows 8; a superuser may raise it.",
							&pg_ray_max_workers_per_group,
							8, 1, 1000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.http_timeout",
							"Time limit of one HTTP request to a Ray dashboard.",
							"Connection errors and 5xx answers are retried with backoff within a request's tries.",
							&pg_ray_http_timeout_ms,
							10000, 100, 600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.worker_lock_timeout",
							"Longest the pg_ray worker waits for a lock in its transactions.",
							"A lock a user's open transaction holds then fails that round, which is retried, "
							"rather than hold up the worker for everyone.",
							&pg_ray_worker_lock_timeout_ms,
							2000, 10, 600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.worker_statement_timeout",
							"Longest one statement of the pg_ray worker may run.",
							"A statement slowed by what users put in the catalog then fails that round, which is "
							"retried, rather than hold up the worker for everyone.",
							&pg_ray_worker_statement_timeout_ms,
							60000, 100, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.publish_timeout",
							"Longest the code of a target's owner may run while a batch run's rows are published.",
							"Triggers on the target run as its owner inside the worker; past this time "
							"the run fails and publishes nothing.",
							&pg_ray_publish_timeout_ms,
							60000, 100, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.max_log_bytes",
							"Largest driver log kept for one attempt of a job; longer logs keep their end.",
							NULL,
							&pg_ray_max_log_bytes,
							1048576, 1024, 64 * 1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.poll_interval",
							"Longest interval between two status polls of a resource group with jobs in Ray.",
							"Polls start at pg_ray.poll_interval_min after a change and slow down to this.",
							&pg_ray_poll_interval_ms,
							2000, 10, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.poll_interval_min",
							"Shortest interval between two status polls, right after a submission or a change.",
							NULL,
							&pg_ray_poll_interval_min_ms,
							200, 10, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.cluster_unreachable_timeout",
							"How long a Ray cluster may stay unreachable before its runs are given up and requeued.",
							NULL,
							&pg_ray_cluster_unreachable_timeout,
							60, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.max_working_dir_bytes",
							"Largest working directory (zipped) a job may carry.",
							"Working directories are for code; data belongs in tables.",
							&pg_ray_max_working_dir_bytes,
							100 * 1024 * 1024, 1024, (int) (MaxAllocSize - VARHDRSZ),
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ray.ray_executable",
							   "The ray command of the Ray installation local nodes run.",
							   "Nodes are started by the python3 beside it, running pg_ray's node starter; its directory goes first on the nodes' PATH.",
							   &pg_ray_ray_executable,
							   "/opt/pg_ray/venv/bin/ray",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ray.redis_server",
							   "The redis-server command the local provider starts for highly available heads.",
							   NULL,
							   &pg_ray_redis_server,
							   "/usr/bin/redis-server",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ray.run_directory",
							   "Directory under which the local provider keeps each Ray node's temp dir and log.",
							   "Keep it short: Ray puts Unix sockets under it, whose paths are limited to 107 bytes.",
							   &pg_ray_run_directory,
							   "/tmp/pgray",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.port_range_start",
							"First port the local provider assigns to Ray nodes.",
							"Each node takes a block of 64 ports from pg_ray.port_range_start to pg_ray.port_range_end.",
							&pg_ray_port_range_start,
							20000, 1024, 65535,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.port_range_end",
							"Last port the local provider assigns to Ray nodes.",
							NULL,
							&pg_ray_port_range_end,
							29999, 1024, 65535,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ray.node_os_user_prefix",
							   "The names of the OS users of pg_ray's pool, before their numbers.",
							   "A second installation of pg_ray on one host needs a pool of its own: another prefix, and its users made by scripts/install-node-users with PG_RAY_NODE_USER_PREFIX.",
							   &pg_ray_node_os_user_prefix,
							   "pgray-g",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   settings_check_os_user_prefix, NULL, NULL);

	DefineCustomIntVariable("pg_ray.node_os_users",
							"How many OS users of pg_ray's pool local resource groups may run as.",
							"Each local group runs its Ray nodes as one of the OS users <prefix>0 .. <prefix><N-1> (pg_ray.node_os_user_prefix), one group each; scripts/install-node-users makes them.",
							&pg_ray_node_os_users,
							32, 1, 100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.node_stop_timeout",
							"How long a Ray node may take to stop after SIGTERM before it is killed.",
							NULL,
							&pg_ray_node_stop_timeout_ms,
							15000, 100, 600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.observe_interval",
							"Interval between two looks at the nodes and demand of a local resource group.",
							"Autoscaling decisions and ray.nodes are as fresh as this.",
							&pg_ray_observe_interval_ms,
							2000, 100, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.scale_up_step",
							"Most worker nodes a worker group gains in one autoscaling decision.",
							NULL,
							&pg_ray_scale_up_step,
							1, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.scale_cooldown",
							"Least time between two autoscaling decisions for one worker group.",
							NULL,
							&pg_ray_scale_cooldown_s,
							10, 0, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.disk_check_interval",
							"How often the disk use of each worker node of a local group is measured; 0 turns it off.",
							"A worker node whose run directory takes more than its worker group's disk_gb is replaced.",
							&pg_ray_disk_check_interval_s,
							30, 0, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.max_starting_jobs",
							"Most jobs of one resource group that are starting in Ray at once.",
							"Starting is SUBMITTING or PENDING: Ray fails the job supervisors it cannot start in time, so the rest wait in QUEUED.",
							&pg_ray_max_starting_jobs,
							4, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.max_ray_requeues",
							"Most times a job is requeued, without spending an attempt, because Ray could not start its run.",
							"Past it, such a run is lost like any other and spends one of the job's attempts.",
							&pg_ray_max_ray_requeues,
							10, 0, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.fair_share_window",
							"How far back fair share looks at the CPUs each role's jobs used.",
							NULL,
							&pg_ray_fair_share_window_s,
							3600, 1, 30 * 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.history_retention",
							"How long finished jobs and resource group events are kept.",
							"Older ones are purged, with their events and logs, by ray.purge_history and by the worker every pg_ray.purge_interval; usage is kept apart.",
							&pg_ray_history_retention_s,
							30 * 86400, 86400, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ray.purge_interval",
							"How often the background worker purges the history older than pg_ray.history_retention; 0 turns it off.",
							NULL,
							&pg_ray_purge_interval_s,
							3600, 0, 30 * 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_ray.local_nodes",
							 "Whether the background worker runs the nodes of local resource groups.",
							 "Off, it leaves them alone: no node is added, started or stopped, and local groups stay as they are (for tests of the catalog alone).",
							 &pg_ray_local_nodes,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_ray.stop_nodes_at_shutdown",
							 "Whether local Ray nodes are stopped when the server shuts down.",
							 "Off (the default), they keep running and are adopted when the server is back.",
							 &pg_ray_stop_nodes_at_shutdown,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ray.runner_host",
							   "The host name or address batch inference runs connect to this server at.",
							   "The runs of a local cluster are on this host; a remote cluster needs an address its nodes can reach.  The port is the server's.",
							   &pg_ray_runner_host,
							   "127.0.0.1",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomEnumVariable("pg_ray.runner_sslmode",
							 "The sslmode batch inference runs connect to this server with.",
							 "libpq's: verify-full (with pg_ray.runner_sslrootcert) when the runs reach the server over a network.",
							 &pg_ray_runner_sslmode,
							 2,
							 runner_sslmode_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ray.metrics_targets_file",
							   "A Prometheus file_sd file the worker keeps listing the metrics port of every running local Ray node; empty: none.",
							   "Written by the server's OS user whenever the nodes change, labelled with their resource group, worker group and kind.",
							   &pg_ray_metrics_targets_file,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ray.runner_sslrootcert",
							   "The file, on the cluster's nodes, of the CA that signed this server's certificate.",
							   "Given to the runs as PGSSLROOTCERT; empty leaves libpq's default (~/.postgresql/root.crt).",
							   &pg_ray_runner_sslrootcert,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ray.fault_pause_at",
							   "For tests: a step of the worker at which it stops and waits (before_submit, after_submit, before_status).",
							   "Empty, the default, in production.  See src/fault.c.",
							   &pg_ray_fault_pause_at,
							   "",
							   PGC_SIGHUP,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("pg_ray");
}
