/*-------------------------------------------------------------------------
 *
 * provider_local.c
 *		The local cluster manager: Ray nodes as processes on this host.
 *
 * The catalog says which nodes each local resource group should have
 * (ray._local_plan); this file makes the processes match.  Each node is
 * one "ray start --block" (or redis-server) process that leads a session
 * of its own, so that everything it starts can be found and signalled
 * together, and so that it outlives the worker and the server: a restarted
 * worker finds it again by its run directory, which is on its command line,
 * and adopts it instead of starting a twin.
 *
 * Between rounds the worker watches the recorded leaders without running
 * any query: a leader that disappears, or a node that is starting or
 * stopping, brings the next round.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/provider_local.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_ray.h"
#include "provider_local.h"
#include "spi_util.h"

/* Ports of a node's block that Ray binds itself (the rest are for workers). */
#define LOCAL_FIXED_PORTS 11

/*
 * How often a running node's leader is looked at between rounds: a dead
 * head is noticed within this, so it is part of the head's recovery time.
 * Reading a few /proc files costs next to nothing.
 */
#define LOCAL_WATCH_MS 250

/* How often a round comes while a node is starting or stopping. */
#define LOCAL_BUSY_MS 250

/* Exit statuses of children reaped between rounds, for the exit message. */
#define LOCAL_MAX_REAPED 64

/* Called for each process by local_each_process; false stops the walk. */
typedef bool (*LocalVisit) (pid_t pid, pid_t session, void *arg);

typedef struct LocalReaped
{
	pid_t		pid;
	int			status;
} LocalReaped;

/* A node's leader watched between rounds. */
typedef struct LocalWatch
{
	int64		node_id;
	pid_t		pid;
	char	   *marker;
} LocalWatch;

static LocalReaped local_reaped[LOCAL_MAX_REAPED];
static int	local_reaped_count = 0;
static List *local_watched = NIL;
static bool local_busy = false;
static TimestampTz local_next_watch_at = 0;

/* When a node waiting to be started is due, or 0 when none waits. */
static TimestampTz local_next_start_at = 0;
static MemoryContext local_context = NULL;

/* The run directory prefix of this installation's nodes, once known. */
static char local_prefix[MAXPGPATH] = "";

/* Nodes sent SIGTERM already, so that a slow stop is not interrupted. */
static List *local_terminated = NIL;

static void local_reap(void);
static bool local_read_file(const char *path, char *buf, size_t size, size_t *len);
static bool local_proc_stat(pid_t pid, char *state, pid_t *session);
static char *local_cmdline(pid_t pid, char *buf, size_t size);
static bool local_cmdline_has(pid_t pid, const char *marker);
static void local_each_process(LocalVisit visit, void *arg);
static bool local_leader_alive(pid_t pid, const char *marker);
static pid_t local_find_leader(const char *marker);
static int	local_signal_session(pid_t session, int sig);
static char *local_marker(const char *run_dir);
static int	local_busy_port(int port_base);
static void local_make_dir(const char *path);
static pid_t local_spawn(const char *run_dir, char **argv, char **envp);
static char *local_exit_reason(pid_t pid, const char *run_dir);
static void local_start(int64 node_id, const char *run_dir, int port_base,
						Datum argv_datum, Datum env_datum);
static void local_check(int64 node_id, pid_t pid, const char *run_dir);
static void local_stop(int64 node_id, pid_t pid, const char *run_dir, int port_base,
					   int64 elapsed_ms);
static void local_sweep(const char *prefix, bool everything);
static int	local_host_gpus(void);
static int	local_signal_drivers(int gcs_port, int sig);
static void local_free_watched(void);

/*
 * local_reap
 *		Collect the exit statuses of node processes the worker started, so
 *		they do not linger as zombies; the statuses explain the exits.
 */
static void
local_reap(void)
{
	pid_t		pid;
	int			status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
	{
		LocalReaped *slot = &local_reaped[local_reaped_count % LOCAL_MAX_REAPED];

		slot->pid = pid;
		slot->status = status;
		local_reaped_count++;
	}
}

/*
 * local_read_file
 *		Read up to size - 1 bytes of a (proc) file, NUL-terminated.
 */
static bool
local_read_file(const char *path, char *buf, size_t size, size_t *len)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t		n;
	size_t		total = 0;

	if (fd < 0)
		return false;
	while (total < size - 1 && (n = read(fd, buf + total, size - 1 - total)) > 0)
		total += (size_t) n;
	close(fd);
	buf[total] = '\0';
	if (len)
		*len = total;
	return true;
}

/*
 * local_proc_stat
 *		The state letter and session id of a process, from /proc.
 */
static bool
local_proc_stat(pid_t pid, char *state, pid_t *session)
{
	char		path[64];
	char		buf[1024];
	char	   *p;
	int			ppid,
				pgrp,
				sid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if (!local_read_file(path, buf, sizeof(buf), NULL))
		return false;
	/* the command name may hold anything, even ")": look for the last one */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %c %d %d %d", state, &ppid, &pgrp, &sid) != 4)
		return false;
	*session = (pid_t) sid;
	return true;
}

/*
 * local_cmdline
 *		A process's command line with its arguments joined by spaces (a
 *		process title that a program set itself, as Redis does, reads the
 *		same way), or NULL when it cannot be read.  In buf.
 */
static char *
local_cmdline(pid_t pid, char *buf, size_t size)
{
	char		path[64];
	size_t		len;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
	if (!local_read_file(path, buf, size, &len))
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return buf;
}

/*
 * local_cmdline_has
 *		Whether a process's command line contains marker.
 */
static bool
local_cmdline_has(pid_t pid, const char *marker)
{
	char		buf[8192];
	char	   *cmdline = local_cmdline(pid, buf, sizeof(buf));

	return cmdline != NULL && strstr(cmdline, marker) != NULL;
}

/*
 * local_leader_alive
 *		Whether pid is still the running leader of the node with that
 *		marker: alive, not a zombie, leading its own session, and with the
 *		node's run directory on its command line, so that a pid reused by
 *		another program is never taken for the node.
 */
static bool
local_leader_alive(pid_t pid, const char *marker)
{
	char		state;
	pid_t		session;

	if (pid <= 1 || !local_proc_stat(pid, &state, &session))
		return false;
	return state != 'Z' && state != 'X' && session == pid && local_cmdline_has(pid, marker);
}

/*
 * local_each_process
 *		Call visit for every live process of this host (zombies left out)
 *		with its session id, until it returns false.
 */
static void
local_each_process(LocalVisit visit, void *arg)
{
	DIR		   *dir = opendir("/proc");
	struct dirent *de;

	if (dir == NULL)
		return;
	while ((de = readdir(dir)) != NULL)
	{
		pid_t		pid = (pid_t) atoi(de->d_name);
		char		state;
		pid_t		session;

		if (pid <= 1 || !local_proc_stat(pid, &state, &session) || state == 'Z' || state == 'X')
			continue;
		if (!visit(pid, session, arg))
			break;
	}
	closedir(dir);
}

/* local_find_leader's search: the first leader with the marker. */
typedef struct LocalLeaderSearch
{
	const char *marker;
	pid_t		found;
} LocalLeaderSearch;

static bool
local_visit_leader(pid_t pid, pid_t session, void *arg)
{
	LocalLeaderSearch *search = arg;

	if (session == pid && local_cmdline_has(pid, search->marker))
	{
		search->found = pid;
		return false;
	}
	return true;
}

/*
 * local_find_leader
 *		The leader of a node's processes running now, found by its run
 *		directory, or 0.  This is how a node is adopted after a restart of
 *		the worker or of the server, whatever was recorded.
 */
static pid_t
local_find_leader(const char *marker)
{
	LocalLeaderSearch search = {marker, 0};

	local_each_process(local_visit_leader, &search);
	return search.found;
}

/* local_signal_session's visit: one session, one signal, a count. */
typedef struct LocalSignal
{
	pid_t		session;
	int			sig;
	int			count;
} LocalSignal;

static bool
local_visit_session(pid_t pid, pid_t session, void *arg)
{
	LocalSignal *request = arg;

	if (session == request->session)
	{
		request->count++;
		if (request->sig != 0)
			(void) kill(pid, request->sig);
	}
	return true;
}

/*
 * local_signal_session
 *		Send sig to every process of a session (the node's leader and all it
 *		started, whatever process groups they made); returns how many there
 *		were.  sig 0 only counts them.  Linux does not hand out a pid that is
 *		still some process's session id, so the count cannot include
 *		strangers.
 */
static int
local_signal_session(pid_t session, int sig)
{
	LocalSignal request = {session, sig, 0};

	if (session <= 1)
		return 0;
	local_each_process(local_visit_session, &request);
	return request.count;
}

/*
 * local_marker
 *		What identifies a node's processes: its run directory with a
 *		trailing slash, so that node 1 is never taken for node 12.
 */
static char *
local_marker(const char *run_dir)
{
	return psprintf("%s/", run_dir);
}

/*
 * local_busy_port
 *		The first port of a node's block that another program holds, or 0.
 *		Ray binds its ports on all interfaces, so that is what is tried.
 */
static int
local_busy_port(int port_base)
{
	for (int i = 0; i < LOCAL_FIXED_PORTS; i++)
	{
		int			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in addr;
		int			one = 1;
		bool		busy;

		if (fd < 0)
			return 0;
		(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		memset(&addr, 0, sizeof(addr));
		addr.sin_family = AF_INET;
		addr.sin_addr.s_addr = htonl(INADDR_ANY);
		addr.sin_port = htons((uint16) (port_base + i));
		busy = bind(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0;
		close(fd);
		if (busy)
			return port_base + i;
	}
	return 0;
}

/*
 * local_make_dir
 *		Create a run directory and its parents, readable by the server's OS
 *		user only: Ray keeps its logs and sockets there.
 */
static void
local_make_dir(const char *path)
{
	char	   *copy = pstrdup(path);

	for (char *p = copy + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, S_IRWXU) != 0 && errno != EEXIST)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", copy)));
		*p = '/';
	}
	if (mkdir(copy, S_IRWXU) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", copy)));
	pfree(copy);
}

/*
 * local_spawn
 *		Start a node's process in a session of its own, with its output in
 *		node.log of its run directory.  Between fork and exec the child only
 *		makes async-signal-safe calls: it sets up its session, descriptors
 *		and signals, so that nothing of the server leaks into Ray.
 */
static pid_t
local_spawn(const char *run_dir, char **argv, char **envp)
{
	char	   *log_path = psprintf("%s/node.log", run_dir);
	int			log_fd;
	int			null_fd;
	pid_t		pid;

	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (log_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", log_path)));
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0)
	{
		close(log_fd);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"/dev/null\": %m")));
	}

	pid = fork();
	if (pid == 0)
	{
		struct sigaction dfl;
		sigset_t	none;
		static const char failed[] = "pg_ray: could not execute the node's command\n";

		(void) setsid();
		(void) dup2(null_fd, 0);
		(void) dup2(log_fd, 1);
		(void) dup2(log_fd, 2);
		(void) close_range(3, ~0U, 0);
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		for (int sig = 1; sig < NSIG; sig++)
			(void) sigaction(sig, &dfl, NULL);
		sigemptyset(&none);
		(void) sigprocmask(SIG_SETMASK, &none, NULL);
		if (chdir(run_dir) == 0)
			execve(argv[0], argv, envp);
		if (write(2, failed, sizeof(failed) - 1) < 0)
			_exit(126);
		_exit(127);
	}
	close(log_fd);
	close(null_fd);
	if (pid < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not fork a Ray node process: %m")));
	return pid;
}

/*
 * local_exit_reason
 *		Why a node's leader is gone: its exit status when the worker reaped
 *		it, and the last line of its log, which is where Ray says why.
 */
static char *
local_exit_reason(pid_t pid, const char *run_dir)
{
	StringInfoData reason;
	char	   *log_path = psprintf("%s/node.log", run_dir);
	int			fd;
	bool		known = false;

	initStringInfo(&reason);
	for (int i = 0; i < Min(local_reaped_count, LOCAL_MAX_REAPED); i++)
	{
		LocalReaped *r = &local_reaped[i];

		if (r->pid != pid)
			continue;
		if (WIFEXITED(r->status))
			appendStringInfo(&reason, "exited with status %d", WEXITSTATUS(r->status));
		else if (WIFSIGNALED(r->status))
			appendStringInfo(&reason, "was killed by signal %d", WTERMSIG(r->status));
		r->pid = 0;
		known = true;
		break;
	}
	if (!known)
		appendStringInfo(&reason, "process %d is gone", (int) pid);

	fd = open(log_path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
	{
		char		tail[1024];
		off_t		size = lseek(fd, 0, SEEK_END);
		off_t		from = Max((off_t) 0, size - (off_t) (sizeof(tail) - 1));
		ssize_t		n;

		if (size > 0 && lseek(fd, from, SEEK_SET) == from &&
			(n = read(fd, tail, sizeof(tail) - 1)) > 0)
		{
			char	   *line;
			char	   *end;

			tail[n] = '\0';
			end = tail + n;
			while (end > tail && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
				*--end = '\0';
			line = strrchr(tail, '\n');
			line = line ? line + 1 : tail;
			if (*line)
				appendStringInfo(&reason, " (last log line: %s)",
								 pg_any_to_server(line, strlen(line), PG_UTF8));
		}
		close(fd);
	}
	return reason.data;
}

/*
 * local_start
 *		Start a node, unless its process is running already (after a restart
 *		of the worker or the server): then adopt it.  The pid is recorded in
 *		the round's transaction; should that not commit, the next round finds
 *		the process by its run directory and adopts it.
 */
static void
local_start(int64 node_id, const char *run_dir, int port_base, Datum argv_datum, Datum env_datum)
{
	char	   *marker = local_marker(run_dir);
	pid_t		pid = local_find_leader(marker);
	Oid			types[3] = {INT8OID, INT4OID, BOOLOID};
	Datum		values[3];
	Datum	   *argv_elems;
	Datum	   *env_elems;
	bool	   *nulls;
	int			argc;
	int			envc;
	char	  **argv;
	char	  **envp;
	char	   *bin_dir;
	char	   *slash;
	const char *home = getenv("HOME");
	int			busy;

	values[0] = Int64GetDatum(node_id);
	if (pid > 0)
	{
		values[1] = Int32GetDatum((int32) pid);
		values[2] = BoolGetDatum(true);
		pg_ray_spi_exec("SELECT ray._local_node_started($1, $2, $3)", 3, types, values, NULL);
		return;
	}

	busy = local_busy_port(port_base);
	if (busy != 0)
	{
		Oid			busy_types[2] = {INT8OID, INT4OID};
		Datum		busy_values[2] = {Int64GetDatum(node_id), Int32GetDatum(busy)};

		pg_ray_spi_exec("SELECT ray._local_ports_busy($1, $2)", 2, busy_types, busy_values, NULL);
		return;
	}

	deconstruct_array(DatumGetArrayTypeP(argv_datum), TEXTOID, -1, false, TYPALIGN_INT,
					  &argv_elems, &nulls, &argc);
	argv = palloc0(sizeof(char *) * (argc + 1));
	for (int i = 0; i < argc; i++)
	{
		if (nulls[i])
			elog(ERROR, "pg_ray worker: null argument in the command of node " INT64_FORMAT, node_id);
		argv[i] = TextDatumGetCString(argv_elems[i]);
	}
	deconstruct_array(DatumGetArrayTypeP(env_datum), TEXTOID, -1, false, TYPALIGN_INT,
					  &env_elems, &nulls, &envc);

	/* the executable's directory first, so that a virtualenv's python runs */
	bin_dir = pstrdup(argv[0]);
	slash = strrchr(bin_dir, '/');
	if (slash)
		*slash = '\0';
	envp = palloc0(sizeof(char *) * (envc + 4));
	envp[0] = psprintf("PATH=%s%s/usr/local/bin:/usr/bin:/bin", slash ? bin_dir : "", slash ? ":" : "");
	envp[1] = psprintf("HOME=%s", home ? home : run_dir);
	envp[2] = pstrdup("LANG=C.UTF-8");
	for (int i = 0; i < envc; i++)
		envp[3 + i] = nulls[i] ? pstrdup("PG_RAY_UNSET=") : TextDatumGetCString(env_elems[i]);

	local_make_dir(run_dir);
	/* a head restarted next to its surviving workers would think it runs already */
	(void) unlink(psprintf("%s/ray_current_cluster", run_dir));
	pid = local_spawn(run_dir, argv, envp);

	/* the environment holds the group's token: leave no copy behind */
	for (int i = 3; i < envc + 3; i++)
		explicit_bzero(envp[i], strlen(envp[i]));

	values[1] = Int32GetDatum((int32) pid);
	values[2] = BoolGetDatum(false);
	pg_ray_spi_exec("SELECT ray._local_node_started($1, $2, $3)", 3, types, values, NULL);
	local_busy = true;
}

/*
 * local_check
 *		A running node: if its leader is gone, finish off what it left of
 *		its session (so its ports come free) and report the exit.
 */
static void
local_check(int64 node_id, pid_t pid, const char *run_dir)
{
	char	   *marker = local_marker(run_dir);
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	MemoryContext old;
	LocalWatch *watch;

	if (local_leader_alive(pid, marker))
	{
		old = MemoryContextSwitchTo(local_context);
		watch = palloc(sizeof(LocalWatch));
		watch->node_id = node_id;
		watch->pid = pid;
		watch->marker = pstrdup(marker);
		local_watched = lappend(local_watched, watch);
		MemoryContextSwitchTo(old);
		return;
	}
	(void) local_signal_session(pid, SIGKILL);
	values[0] = Int64GetDatum(node_id);
	values[1] = CStringGetTextDatum(local_exit_reason(pid, run_dir));
	pg_ray_spi_exec("SELECT ray._local_node_exited($1, $2)", 2, types, values, NULL);
	local_busy = true;
}

/*
 * local_stop
 *		A node asked to stop: SIGTERM to its session once, SIGKILL to what
 *		is left once its leader has exited (Ray's agents ignore SIGTERM when
 *		their raylet is gone) or after pg_ray.node_stop_timeout, and the
 *		slot is released once nothing of it runs.  Ray starts job drivers in
 *		sessions of their own, so they are found by the GCS address in their
 *		environment and stopped with the node (only a head's first port is a
 *		GCS port).
 */
static void
local_stop(int64 node_id, pid_t pid, const char *run_dir, int port_base, int64 elapsed_ms)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(node_id)};
	bool		overdue = elapsed_ms >= pg_ray_node_stop_timeout_ms;
	int			left = 0;

	/* the recorded leader, or one found by its run directory should it be stale */
	if (pid <= 0 || local_signal_session(pid, 0) == 0)
		pid = local_find_leader(local_marker(run_dir));
	if (pid > 0)
		left += local_signal_session(pid, 0);
	left += local_signal_drivers(port_base, 0);
	if (left > 0)
	{
		local_busy = true;
		/* once "ray start" has exited, what is left of its session is stuck */
		if (pid > 0 && !overdue && !local_leader_alive(pid, local_marker(run_dir)))
			(void) local_signal_session(pid, SIGKILL);
		if (overdue)
		{
			if (pid > 0)
				(void) local_signal_session(pid, SIGKILL);
			(void) local_signal_drivers(port_base, SIGKILL);
		}
		else if (!list_member_int(local_terminated, (int) node_id))
		{
			MemoryContext old = MemoryContextSwitchTo(local_context);

			if (pid > 0)
				(void) local_signal_session(pid, SIGTERM);
			(void) local_signal_drivers(port_base, SIGTERM);
			local_terminated = lappend_int(local_terminated, (int) node_id);
			MemoryContextSwitchTo(old);
		}
		return;
	}
	local_terminated = list_delete_int(local_terminated, (int) node_id);
	pg_ray_spi_exec("SELECT ray._local_node_gone($1)", 1, types, values, NULL);
	local_busy = true;
}

/* local_signal_drivers' visit: the processes whose RAY_ADDRESS ends so. */
typedef struct LocalDrivers
{
	char		suffix[32];
	int			sig;
	int			count;
} LocalDrivers;

static bool
local_visit_driver(pid_t pid, pid_t session, void *arg)
{
	LocalDrivers *drivers = arg;
	size_t		suffix_len = strlen(drivers->suffix);
	char		path[64];
	char		buf[65536];
	size_t		len;

	if (pid == getpid())
		return true;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int) pid);
	if (!local_read_file(path, buf, sizeof(buf), &len))
		return true;
	for (size_t at = 0; at < len;)
	{
		const char *entry = buf + at;
		size_t		entry_len = strnlen(entry, len - at);

		if (entry_len > 12 + suffix_len && strncmp(entry, "RAY_ADDRESS=", 12) == 0 &&
			strncmp(entry + entry_len - suffix_len, drivers->suffix, suffix_len) == 0)
		{
			drivers->count++;
			if (drivers->sig != 0)
			{
				if (session > 1 && session != getsid(0))
					(void) local_signal_session(session, drivers->sig);
				else
					(void) kill(pid, drivers->sig);
			}
			break;
		}
		at += entry_len + 1;
	}
	return true;
}

/*
 * local_signal_drivers
 *		Send sig to the sessions of the Ray job drivers of the cluster whose
 *		GCS listens on gcs_port (RAY_ADDRESS=<ip>:<port> in their
 *		environment); returns how many there were.  Only processes of the
 *		server's OS user can be read, which is all that Ray runs here.
 */
static int
local_signal_drivers(int gcs_port, int sig)
{
	LocalDrivers drivers;

	snprintf(drivers.suffix, sizeof(drivers.suffix), ":%d", gcs_port);
	drivers.sig = sig;
	drivers.count = 0;
	local_each_process(local_visit_driver, &drivers);
	return drivers.count;
}

/*
 * local_host_gpus
 *		How many NVIDIA GPUs this host has, as the driver lists them; 0
 *		without a driver, and then GPU workers' GPUs are logical.
 */
static int
local_host_gpus(void)
{
	DIR		   *dir = opendir("/proc/driver/nvidia/gpus");
	struct dirent *de;
	int			count = 0;

	if (dir == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			count++;
	closedir(dir);
	return count;
}

/* local_sweep's visit: the leaders under a prefix, with their node ids. */
typedef struct LocalSweep
{
	const char *prefix;
	List	   *pids;
	List	   *node_ids;
} LocalSweep;

static bool
local_visit_sweep(pid_t pid, pid_t session, void *arg)
{
	LocalSweep *sweep = arg;
	char		buf[8192];
	char	   *cmdline;
	char	   *at;

	if (session != pid || (cmdline = local_cmdline(pid, buf, sizeof(buf))) == NULL ||
		(at = strstr(cmdline, sweep->prefix)) == NULL)
		return true;
	sweep->pids = lappend_int(sweep->pids, (int) pid);
	sweep->node_ids = lappend_int(sweep->node_ids, atoi(at + strlen(sweep->prefix)));
	return true;
}

/*
 * local_sweep
 *		Kill node processes under prefix (the run directories of one
 *		installation) that have no slot any more, or all of them when
 *		everything is to go.  Orphans are left by a worker that died between
 *		starting a node and recording it, or by slots removed while the
 *		worker was away; "everything" is the nodes of an extension that was
 *		dropped or created anew.  Leaders are recognised by the prefix on
 *		their command line, followed by the node id.
 */
static void
local_sweep(const char *prefix, bool everything)
{
	LocalSweep	sweep = {prefix, NIL, NIL};
	ListCell   *lc_pid;
	ListCell   *lc_id;

	local_each_process(local_visit_sweep, &sweep);
	forboth(lc_pid, sweep.pids, lc_id, sweep.node_ids)
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum((int64) lfirst_int(lc_id))};

		if (!everything)
		{
			pg_ray_spi_exec("SELECT 1 FROM ray.node WHERE node_id = $1", 1, types, values, NULL);
			if (SPI_processed > 0)
				continue;
		}
		ereport(LOG,
				(errmsg("pg_ray worker: stopping Ray node process %d: node %d has no slot",
						lfirst_int(lc_pid), lfirst_int(lc_id))));
		(void) local_signal_session((pid_t) lfirst_int(lc_pid), SIGKILL);
	}
	list_free(sweep.pids);
	list_free(sweep.node_ids);
}

/* One node's action of a round, for local_act_one. */
typedef struct LocalAction
{
	const char *action;
	int64		node_id;
	pid_t		pid;
	const char *run_dir;
	int			port_base;
	int64		elapsed_ms;
	HeapTuple	row;
	TupleDesc	desc;
} LocalAction;

/*
 * local_act_one
 *		Start, check or stop one node.
 */
static void
local_act_one(void *arg)
{
	LocalAction *a = arg;

	if (strcmp(a->action, "start") == 0)
	{
		bool		argv_null;
		bool		env_null;
		Datum		argv_datum = SPI_getbinval(a->row, a->desc, 7, &argv_null);
		Datum		env_datum = SPI_getbinval(a->row, a->desc, 8, &env_null);

		if (argv_null || env_null)
			elog(ERROR, "pg_ray worker: node " INT64_FORMAT " has no command", a->node_id);
		local_start(a->node_id, a->run_dir, a->port_base, argv_datum, env_datum);
	}
	else if (strcmp(a->action, "check") == 0)
		local_check(a->node_id, a->pid, a->run_dir);
	else if (strcmp(a->action, "stop") == 0)
		local_stop(a->node_id, a->pid, a->run_dir, a->port_base, a->elapsed_ms);
	else
		elog(ERROR, "pg_ray worker: unknown node action \"%s\"", a->action);
}

/*
 * local_act
 *		Do one node's action in a subtransaction of its own, so that a node
 *		that cannot be started or stopped (a full disk, a missing executable)
 *		is logged and retried while the other nodes and groups go on.
 */
static void
local_act(LocalAction *action)
{
	ErrorData  *error = pg_ray_subtransaction(local_act_one, action);

	if (error == NULL)
		return;
	ereport(WARNING,
			(errmsg("pg_ray could not %s Ray node " INT64_FORMAT ": %s", action->action,
					action->node_id, error->message),
			 errdetail("Its run directory is \"%s\"; the next round tries again.", action->run_dir)));
	FreeErrorData(error);
	local_busy = true;
}

/*
 * pg_ray_local_round
 *		Inside a round's transaction: reconcile the node slots of local
 *		groups and make the processes match.  The first round after the
 *		worker starts also sweeps orphans.
 */
void
pg_ray_local_round(bool first_round)
{
	SPITupleTable *tuptable;
	uint64		n;
	long		next_wait_ms = -1;

	if (local_context == NULL)
		local_context = AllocSetContextCreate(TopMemoryContext, "pg_ray local provider",
											  ALLOCSET_SMALL_SIZES);
	local_reap();

	/* the run directories of this installation start with this */
	pg_ray_spi_exec("SELECT format('%s/%s/n', rtrim(current_setting('pg_ray.run_directory'), '/'), id) "
			   "FROM ray.installation", 0, NULL, NULL, NULL);
	if (SPI_processed == 1)
	{
		char	   *prefix = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		/* the extension was created anew: the old one's nodes have no slots */
		if (local_prefix[0] != '\0' && strcmp(prefix, local_prefix) != 0)
		{
			local_sweep(local_prefix, true);
			pg_ray_local_forget();
		}
		strlcpy(local_prefix, prefix, sizeof(local_prefix));
		if (first_round)
			local_sweep(local_prefix, false);
	}

	/* the list is rebuilt from this round's plan */
	local_free_watched();
	local_busy = false;

	{
		Oid			plan_types[1] = {INT4OID};
		Datum		plan_values[1] = {Int32GetDatum(local_host_gpus())};

		pg_ray_spi_exec("SELECT action, node_id, pid, run_dir, port_base, elapsed_ms, argv, env "
				   "FROM ray._local_plan($1)", 1, plan_types, plan_values, NULL);
	}
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	row = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		LocalAction action;
		bool		isnull;
		Datum		value;

		action.action = SPI_getvalue(row, desc, 1);
		action.node_id = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
		value = SPI_getbinval(row, desc, 3, &isnull);
		action.pid = isnull ? 0 : (pid_t) DatumGetInt32(value);
		action.run_dir = SPI_getvalue(row, desc, 4);
		action.port_base = DatumGetInt32(SPI_getbinval(row, desc, 5, &isnull));
		value = SPI_getbinval(row, desc, 6, &isnull);
		action.elapsed_ms = isnull ? 0 : DatumGetInt64(value);
		action.row = row;
		action.desc = desc;
		if (strcmp(action.action, "wait") == 0)
		{
			/* to be started later: after its backoff, or soon once what it waits for runs */
			long		wait_ms = isnull ? LOCAL_BUSY_MS : (long) Max(action.elapsed_ms, LOCAL_BUSY_MS);

			if (next_wait_ms < 0 || wait_ms < next_wait_ms)
				next_wait_ms = wait_ms;
			continue;
		}
		local_act(&action);
	}
	local_next_watch_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  local_busy ? LOCAL_BUSY_MS : LOCAL_WATCH_MS);
	local_next_start_at = next_wait_ms < 0 ? 0 :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), next_wait_ms);
}

/*
 * pg_ray_local_next_check_ms
 *		Milliseconds until the processes are looked at again or a node that
 *		waits to be started is due, or -1 when no local node runs, starts,
 *		stops or waits.
 */
long
pg_ray_local_next_check_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz due;

	if (local_watched == NIL && !local_busy)
		due = local_next_start_at;
	else if (local_next_start_at != 0)
		due = Min(local_next_watch_at, local_next_start_at);
	else
		due = local_next_watch_at;
	if (due == 0)
		return -1;
	return due <= now ? 0 : (long) ((due - now + 999) / 1000);
}

/*
 * pg_ray_local_check
 *		Between rounds, without a query: whether a round is needed because a
 *		watched leader is gone, a node is starting or stopping, or a node
 *		waiting to be started is due.
 */
bool
pg_ray_local_check(void)
{
	ListCell   *lc;

	if (pg_ray_local_next_check_ms() != 0)
		return false;
	if (local_busy || (local_next_start_at != 0 && local_next_start_at <= GetCurrentTimestamp()))
	{
		local_next_start_at = 0;
		return true;
	}
	local_next_watch_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LOCAL_WATCH_MS);
	local_reap();
	foreach(lc, local_watched)
	{
		LocalWatch *watch = lfirst(lc);

		if (!local_leader_alive(watch->pid, watch->marker))
			return true;
	}
	return false;
}

/*
 * local_free_watched
 *		Forget the leaders watched between rounds.
 */
static void
local_free_watched(void)
{
	ListCell   *lc;

	foreach(lc, local_watched)
	{
		LocalWatch *watch = lfirst(lc);

		pfree(watch->marker);
		pfree(watch);
	}
	list_free(local_watched);
	local_watched = NIL;
}

/*
 * pg_ray_local_forget
 *		The extension is gone or was created anew: its nodes are killed, as
 *		their slots went with it, and nothing is watched any more.
 */
void
pg_ray_local_forget(void)
{
	if (local_prefix[0] != '\0')
	{
		local_sweep(local_prefix, true);
		local_prefix[0] = '\0';
	}
	local_free_watched();
	list_free(local_terminated);
	local_terminated = NIL;
	local_busy = false;
	local_next_start_at = 0;
}

/*
 * pg_ray_local_shutdown
 *		The worker is exiting.  Nodes keep running and are adopted by the
 *		next worker, unless pg_ray.stop_nodes_at_shutdown asks that they be
 *		stopped: then their sessions get SIGTERM (Ray stops in seconds; the
 *		next worker finds them gone and starts them again when it runs).
 */
void
pg_ray_local_shutdown(void)
{
	ListCell   *lc;

	if (!pg_ray_stop_nodes_at_shutdown)
		return;
	foreach(lc, local_watched)
	{
		LocalWatch *watch = lfirst(lc);

		if (local_leader_alive(watch->pid, watch->marker))
			(void) local_signal_session(watch->pid, SIGTERM);
	}
}
