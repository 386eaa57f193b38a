/*-------------------------------------------------------------------------
 *
 * local_internal.h
 *		What the files of the local provider share: the processes of this
 *		host as /proc shows them, and the starting of node processes.
 *
 * The local provider is split by concern, each file calling only those
 * above it in this list:
 *
 *	local_launch.c			the nodes' OS users, and pg_ray_launch, which
 *							signals their processes
 *	local_proc.c			finding, watching and signalling processes
 *	local_spawn.c			ports, run directories, fork and exec, exits
 *	provider_local.c		the nodes' actions of a round, the watch
 *							between rounds, shutdown
 *
 * provider_local.h declares the entry points the worker calls.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/local_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_LOCAL_INTERNAL_H
#define PG_RAY_LOCAL_INTERNAL_H

#include <sys/types.h>

/* The OS user a node's processes run as (its group's). */
typedef struct LocalUser
{
	uid_t		uid;
	char		name[64];
} LocalUser;

/* Called for each process by local_each_process; false stops the walk. */
typedef bool (*LocalVisit) (pid_t pid, pid_t session, uid_t uid, void *arg);

/* local_launch.c */
extern void local_child_setup(int in_fd, int out_fd, int err_fd);
extern void local_user_lookup(const char *name, LocalUser *user);
extern char *local_launcher_path(void);
extern void local_kill(const LocalUser *user, int sig, const pid_t *pids, int count);
extern bool local_launch_drivers(const LocalUser *user, int gcs_port, int sig);
extern bool local_launch_kill_all(const LocalUser *user);
extern pid_t local_launch_start(char **argv, int out_fd);
extern void local_launch_remove_run_dir(const LocalUser *user, const char *run_dir);
extern void local_disk_measure(int64 node_id, const LocalUser *user, const char *run_dir);
extern bool local_disk_collect(void);
extern void local_disk_forget(void);

/* local_proc.c */
extern char *local_cmdline(pid_t pid, char *buf, size_t size);
extern void local_wait_for_user(pid_t pid, const LocalUser *user);
extern bool local_leader_alive(pid_t pid, const char *marker, const LocalUser *user);
extern void local_each_process(LocalVisit visit, void *arg);
extern pid_t local_find_leader(const char *marker, const LocalUser *user);
extern int	local_signal_session(pid_t session, int sig, const char *marker, const LocalUser *user);
extern int	local_host_gpus(void);

/* local_spawn.c */
extern void local_reap(void);
extern int	local_busy_port(int port_base);
extern void local_make_dir(const char *path, const LocalUser *user);
extern pid_t local_spawn(const char *run_dir, char **argv, char **envp, const LocalUser *user);
extern char *local_exit_reason(pid_t pid, const char *run_dir);

#endif							/* PG_RAY_LOCAL_INTERNAL_H */
