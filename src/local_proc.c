/*-------------------------------------------------------------------------
 *
 * local_proc.c
 *		The processes of this host as /proc shows them: finding a node's
 *		leader, watching it, and signalling its session or its drivers.
 *
 * Each node is one process that leads a session of its own, with its
 * run directory on its command line: that is how a node's processes
 * are told from any other program's, whatever was recorded, and how
 * a restarted worker finds the nodes it started before.  Only processes of
 * the node's OS user (its group's, local_launch.c) that are not
 * PostgreSQL's own are taken for a node's: another user's process that
 * puts a node's run directory on its command line is never adopted or
 * signalled, and neither is a backend, whose title shows the user and
 * database names a client chose before it authenticated and which leads a
 * session of its own (killing one restarts the server).  Job drivers, which
 * Ray starts in sessions of their own, are found by the launcher
 * (local_launch_drivers).  Nothing here runs a query.
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
#include "nodes/pg_list.h"

#include "local_internal.h"

static bool local_read_file(const char *path, char *buf, size_t size, size_t *len);
static bool local_proc_stat(pid_t pid, char *state, pid_t *parent, pid_t *session);
static bool local_cmdline_has(pid_t pid, const char *marker);
static bool local_proc_uid(pid_t pid, pid_t parent, uid_t *uid);

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
 * local_proc_uid
 *		The real user id of a process that could be one of a node's, from
 *		/proc/PID/status (a process that is not dumpable shows /proc/PID as
 *		root's); false for the postmaster and its children (PostgreSQL's
 *		own processes), for a process of the server's OS user that runs a
 *		postgres program (another cluster's backend, whose title a client
 *		chose) and for what cannot be read.
 */
static bool
local_proc_uid(pid_t pid, pid_t parent, uid_t *uid)
{
	char		path[64];
	char		buf[4096];
	char	   *uids;
	unsigned int real;

	if (pid == PostmasterPid || parent == PostmasterPid)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	if (!local_read_file(path, buf, sizeof(buf), NULL) || (uids = strstr(buf, "\nUid:")) == NULL ||
		sscanf(uids + 5, " %u", &real) != 1)
		return false;
	*uid = (uid_t) real;
	if (*uid == geteuid())
	{
		char		exe[MAXPGPATH];
		ssize_t		len;
		const char *base;

		snprintf(path, sizeof(path), "/proc/%d/exe", (int) pid);
		if ((len = readlink(path, exe, sizeof(exe) - 1)) <= 0)
			return false;
		exe[len] = '\0';
		base = strrchr(exe, '/');
		base = base ? base + 1 : exe;
		if (strncmp(base, "postgres", 8) == 0)
			return false;
	}
	return true;
}

/*
 * local_wait_for_user
 *		Wait, at most two seconds, until a node's process that was just
 *		started runs as its OS user or has exited: until then it is the
 *		launcher, still the server's OS user's, and a round that looked at
 *		it would not take it for the node.
 */
void
local_wait_for_user(pid_t pid, const LocalUser *user)
{
	for (int waited_ms = 0; waited_ms < 2000; waited_ms++)
	{
		char		state;
		pid_t		parent;
		pid_t		session;
		uid_t		uid;

		if (!local_proc_stat(pid, &state, &parent, &session) || state == 'Z' || state == 'X' ||
			!local_proc_uid(pid, parent, &uid) || uid == user->uid)
			return;
		pg_usleep(1000L);
	}
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
 *		marker: alive, not a zombie, leading its own session, of the node's
 *		OS user and not PostgreSQL's (local_proc_uid), and with the node's
 *		run directory on its command line, so that a pid reused by another
 *		program is never taken for the node.
 */
bool
local_leader_alive(pid_t pid, const char *marker, const LocalUser *user)
{
	char		state;
	pid_t		parent;
	pid_t		session;
	uid_t		uid;

	if (pid <= 1 || !local_proc_stat(pid, &state, &parent, &session))
		return false;
	return state != 'Z' && state != 'X' && session == pid && local_proc_uid(pid, parent, &uid) &&
		uid == user->uid && local_cmdline_has(pid, marker);
}

/*
 * local_each_process
 *		Call visit for every live process that may be a node's (zombies and
 *		PostgreSQL's own left out, see local_proc_uid) with its session id
 *		and real user id, until it returns false.
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
		uid_t		uid;

		if (pid <= 1 || !local_proc_stat(pid, &state, &parent, &session) || state == 'Z' || state == 'X' ||
			!local_proc_uid(pid, parent, &uid))
			continue;
		if (!visit(pid, session, uid, arg))
			break;
	}
	closedir(dir);
}

/* local_find_leader's search: the first leader of the user with the marker. */
typedef struct LocalLeaderSearch
{
	const char *marker;
	uid_t		uid;
	pid_t		found;
} LocalLeaderSearch;

/*
 * local_visit_leader
 *		local_find_leader's visit: stop at the first leader with the marker.
 */
static bool
local_visit_leader(pid_t pid, pid_t session, uid_t uid, void *arg)
{
	LocalLeaderSearch *search = arg;

	if (session == pid && uid == search->uid && local_cmdline_has(pid, search->marker))
	{
		search->found = pid;
		return false;
	}
	return true;
}

/*
 * local_find_leader
 *		The leader of a node's processes running now as the node's OS user,
 *		found by its run directory, or 0.  This is how a node is adopted
 *		after a restart of the worker or of the server, whatever was
 *		recorded.
 */
pid_t
local_find_leader(const char *marker, const LocalUser *user)
{
	LocalLeaderSearch search = {marker, user->uid, 0};

	local_each_process(local_visit_leader, &search);
	return search.found;
}

/* local_signal_session's walk: one session of one user, its processes. */
typedef struct LocalSession
{
	pid_t		session;
	uid_t		uid;
	const char *marker;
	bool		marked;
	List	   *pids;
} LocalSession;

/*
 * local_visit_session
 *		local_signal_session's visit: note the user's processes of the
 *		session, and whether one shows the marker.
 */
static bool
local_visit_session(pid_t pid, pid_t session, uid_t uid, void *arg)
{
	LocalSession *walk = arg;

	if (session == walk->session && uid == walk->uid)
	{
		walk->pids = lappend_int(walk->pids, (int) pid);
		if (walk->marker != NULL && !walk->marked)
			walk->marked = local_cmdline_has(pid, walk->marker);
	}
	return true;
}

/*
 * local_signal_session
 *		Send sig to every process of a session that runs as the node's OS
 *		user (the node's leader and all it started, whatever process groups
 *		they made); returns how many there were.  sig 0 only counts them.
 *		Linux does not hand out a pid that is still some process's session
 *		id, so the count cannot include strangers; but a recorded leader's
 *		pid can be some other program's session once the node's is gone
 *		(after a reboot, say).  So with a marker (the node's run directory,
 *		which its processes show on their command lines) a session none of
 *		whose processes shows it is left alone: counted as none, and
 *		signalled not at all.
 */
int
local_signal_session(pid_t session, int sig, const char *marker, const LocalUser *user)
{
	LocalSession walk = {session, user->uid, marker, false, NIL};
	int			count;

	if (session <= 1)
		return 0;
	local_each_process(local_visit_session, &walk);
	if (marker != NULL && !walk.marked)
	{
		list_free(walk.pids);
		return 0;
	}
	count = list_length(walk.pids);
	if (sig != 0 && count > 0)
	{
		pid_t	   *pids = palloc(sizeof(pid_t) * count);
		int			i = 0;
		ListCell   *lc;

		foreach(lc, walk.pids)
			pids[i++] = (pid_t) lfirst_int(lc);
		local_kill(user, sig, pids, count);
		pfree(pids);
	}
	list_free(walk.pids);
	return count;
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
