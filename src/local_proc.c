/*-------------------------------------------------------------------------
 *
 * local_proc.c
 *		The processes of this host as /proc shows them: finding a node's
 *		leader, watching it, and signalling its session or its drivers.
 *
 * Each node is one process that leads a session of its own, with its
 * run directory on its command line: that is how a node's processes
 * are told from any other program's, whatever was recorded, and how
 * a restarted worker finds the nodes it started before.  Job drivers
 * that Ray starts in sessions of their own are found by the GCS
 * address in their environment.  Only processes of the server's OS user
 * that are not PostgreSQL's own are looked at: another user's process that
 * puts a node's run directory on its command line is never taken for the
 * node, adopted or signalled, and neither is a backend, whose title shows
 * the user and database names a client chose before it authenticated and
 * which leads a session of its own (killing one restarts the server).
 * Nothing here runs a query.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/local_proc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"

#include "local_internal.h"

static bool local_read_file(const char *path, char *buf, size_t size, size_t *len);
static bool local_proc_stat(pid_t pid, char *state, pid_t *parent, pid_t *session);
static bool local_cmdline_has(pid_t pid, const char *marker);
static bool local_proc_may_be_node(pid_t pid, pid_t parent);

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
 *		The state letter, parent and session id of a process, from /proc.
 */
static bool
local_proc_stat(pid_t pid, char *state, pid_t *parent, pid_t *session)
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
	*parent = (pid_t) ppid;
	*session = (pid_t) sid;
	return true;
}

/*
 * local_proc_may_be_node
 *		Whether a process could be one of a node's: not the postmaster nor
 *		one of its children (PostgreSQL's own processes), and of the
 *		server's OS user by its real or saved user id, as kill(2) counts it
 *		(read from /proc/PID/status: a process that is not dumpable shows
 *		/proc/PID as root's).
 */
static bool
local_proc_may_be_node(pid_t pid, pid_t parent)
{
	char		path[64];
	char		buf[4096];
	char	   *uids;
	unsigned int real,
				effective,
				saved;

	if (pid == PostmasterPid || parent == PostmasterPid)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	if (!local_read_file(path, buf, sizeof(buf), NULL) || (uids = strstr(buf, "\nUid:")) == NULL ||
		sscanf(uids + 5, " %u %u %u", &real, &effective, &saved) != 3)
		return false;
	return real == (unsigned int) geteuid() || saved == (unsigned int) geteuid();
}

/*
 * local_cmdline
 *		A process's command line with its arguments joined by spaces (a
 *		process title that a program set itself, as Redis does, reads the
 *		same way), or NULL when it cannot be read.  In buf.
 */
char *
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
 *		marker: alive, not a zombie, leading its own session, possibly a
 *		node's process (local_proc_may_be_node), and with the node's run
 *		directory on its command line, so that a pid reused by another
 *		program is never taken for the node.
 */
bool
local_leader_alive(pid_t pid, const char *marker)
{
	char		state;
	pid_t		parent;
	pid_t		session;

	if (pid <= 1 || !local_proc_stat(pid, &state, &parent, &session))
		return false;
	return state != 'Z' && state != 'X' && session == pid && local_proc_may_be_node(pid, parent) &&
		local_cmdline_has(pid, marker);
}

/*
 * local_each_process
 *		Call visit for every live process that may be a node's (zombies and
 *		PostgreSQL's own left out, see local_proc_may_be_node) with its
 *		session id, until it returns false.
 */
void
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
		pid_t		parent;
		pid_t		session;

		if (pid <= 1 || !local_proc_stat(pid, &state, &parent, &session) || state == 'Z' || state == 'X' ||
			!local_proc_may_be_node(pid, parent))
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

/*
 * local_visit_leader
 *		local_find_leader's visit: stop at the first leader with the marker.
 */
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
pid_t
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
	const char *marker;
	bool		marked;
	int			count;
} LocalSignal;

/*
 * local_visit_session
 *		local_signal_session's visit: count, and signal, the processes of
 *		the session; note whether one shows the marker.
 */
static bool
local_visit_session(pid_t pid, pid_t session, void *arg)
{
	LocalSignal *request = arg;

	if (session == request->session)
	{
		request->count++;
		if (request->marker != NULL && !request->marked)
			request->marked = local_cmdline_has(pid, request->marker);
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
 *		strangers; but a recorded leader's pid can be some other program's
 *		session once the node's is gone (after a reboot, say).  So with a
 *		marker (the node's run directory, which its processes show on their
 *		command lines) a session none of whose processes shows it is left
 *		alone: counted as none, and signalled not at all.
 */
int
local_signal_session(pid_t session, int sig, const char *marker)
{
	LocalSignal request = {session, 0, marker, false, 0};

	if (session <= 1)
		return 0;
	local_each_process(local_visit_session, &request);
	if (marker != NULL && !request.marked)
		return 0;
	if (sig != 0 && request.count > 0)
	{
		request.sig = sig;
		request.marker = NULL;
		request.count = 0;
		local_each_process(local_visit_session, &request);
	}
	return request.count;
}

/* local_signal_drivers' visit: the processes whose RAY_ADDRESS ends so. */
typedef struct LocalDrivers
{
	char		suffix[32];
	int			sig;
	int			count;
} LocalDrivers;

/*
 * local_visit_driver
 *		local_signal_drivers' visit: count, and signal, a process whose
 *		RAY_ADDRESS ends with the GCS port (its whole session when it leads
 *		one of its own other than the worker's).
 */
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
					(void) local_signal_session(session, drivers->sig, NULL);
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
int
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
int
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
