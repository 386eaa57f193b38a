/*-------------------------------------------------------------------------
 *
 * local_internal.h
 *		What the files of the local provider share: the processes of this
 *		host as /proc shows them, and the starting of node processes.
 *
 * The local provider is split by concern, each file calling only those
 * above it in this list:
 *
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

/* Called for each process by local_each_process; false stops the walk. */
typedef bool (*LocalVisit) (pid_t pid, pid_t session, void *arg);

/* local_proc.c */
extern char *local_cmdline(pid_t pid, char *buf, size_t size);
extern bool local_leader_alive(pid_t pid, const char *marker);
extern void local_each_process(LocalVisit visit, void *arg);
extern pid_t local_find_leader(const char *marker);
extern int	local_signal_session(pid_t session, int sig, const char *marker);
extern int	local_signal_drivers(int gcs_port, int sig);
extern int	local_host_gpus(void);

/* local_spawn.c */
extern void local_reap(void);
extern int	local_busy_port(int port_base);
extern void local_make_dir(const char *path);
extern pid_t local_spawn(const char *run_dir, char **argv, char **envp);
extern char *local_exit_reason(pid_t pid, const char *run_dir);

#endif							/* PG_RAY_LOCAL_INTERNAL_H */
