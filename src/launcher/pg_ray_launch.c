/*-------------------------------------------------------------------------
 *
 * pg_ray_launch.c
 *		The one privileged program of pg_ray: it runs a local Ray node's
 *		command as an OS user of pg_ray's pool, and signals that user's
 *		processes, for the background worker.
 *
 * Local groups run their Ray nodes, and so their jobs' code, as an OS user
 * of their own (pgray-g0, pgray-g1, ...: members of the group pgray-nodes,
 * made by scripts/install-node-users), never as the server's OS user: job
 * code then cannot read the data directory, log in through the server's
 * socket, signal the server, nor touch another group's processes.  The
 * worker runs as the server's OS user and cannot change its user id, so it
 * asks this program:
 *
 *	pg_ray_launch start USER DIR [--remove RELPATH] -- PROGRAM [ARG...]
 *		give DIR (the node's run directory, the caller's or USER's already)
 *		to USER, mode 0700, remove RELPATH under it, and run PROGRAM in
 *		it as USER with the caller's environment, never to gain privileges
 *		again (no_new_privs).  The process keeps its pid and session, so
 *		the worker watches the node as it watches any child.
 *	pg_ray_launch signal USER SIGNAL PID...
 *		send SIGNAL (a number) to each PID, as USER.
 *	pg_ray_launch drivers USER SIGNAL PORT
 *		the Ray job drivers of the cluster whose GCS listens on PORT (their
 *		environment says RAY_ADDRESS=<host>:PORT; only USER may read it):
 *		send SIGNAL to each one's session; exit 1 if there were any, 0 if
 *		none.  SIGNAL 0 only tells.
 *	pg_ray_launch kill-all USER
 *		kill every process of USER, over and over until none is left
 *		(exit 0) or a second has passed (exit 1): a group's first node
 *		starts only once nothing that ran as its user before is left.
 *	pg_ray_launch disk-usage USER DIR
 *		print the bytes of disk that DIR (a node's run directory, USER's)
 *		and what is under it take, as USER sees them: links not followed,
 *		other file systems not entered, what USER may not read and what
 *		lies more than 64 levels down not counted.  A worker node's
 *		disk_gb is checked against it.
 *	pg_ray_launch empty-dir USER DIR
 *		remove everything under DIR (a removed node's run directory,
 *		USER's), as USER, whatever its depth or modes: links removed, not
 *		followed.  The caller then removes DIR itself, in its own
 *		directory.
 *
 * It is installed root:<server's group>, mode 0750, with the file
 * capabilities CAP_SETUID, CAP_SETGID and CAP_CHOWN (make install does so
 * as root; packagers in their post-installation step), so only the
 * server's OS user runs it.  It takes on only users of the pool (members of
 * pgray-nodes, not root, not in root's or the caller's groups, not the
 * caller), uses CAP_CHOWN only on a directory the caller owns, and drops
 * every capability before it does anything else for the caller.  To run a
 * node it becomes USER for good.  To signal USER's processes it takes on
 * USER's effective ids only, keeping the caller's real and saved ids, so
 * that USER's processes cannot stop or trace it (a stopped launcher would
 * hold the worker), and signals a process through a pidfd only once
 * /proc says it is USER's (a pid reused meanwhile by the caller's own
 * process is never hit).  Exit status 2 means it refused or failed, with why
 * on standard error.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/launcher/pg_ray_launch.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The OS group whose members are pg_ray's pool of node users. */
#define LAUNCH_POOL_GROUP "pgray-nodes"

/* Exit status when the launcher refuses or fails. */
#define LAUNCH_FAILED 2

/* How many driver sessions one call signals at most. */
#define LAUNCH_MAX_SESSIONS 4096

static void launch_fail(const char *what, ...) __attribute__((format(printf, 1, 2), noreturn));
static void launch_usage(void) __attribute__((noreturn));

/*
 * launch_fail
 *		Say why on standard error (the server's log) and exit 2.
 */
static void
launch_fail(const char *what, ...)
{
	va_list		args;

	fputs("pg_ray_launch: ", stderr);
	va_start(args, what);
	vfprintf(stderr, what, args);
	va_end(args);
	fputc('\n', stderr);
	exit(LAUNCH_FAILED);
}

/*
 * launch_usage
 *		The command lines the launcher takes.
 */
static void
launch_usage(void)
{
	launch_fail("usage: pg_ray_launch start USER DIR [--remove RELPATH] -- PROGRAM [ARG...] | "
				"signal USER SIGNAL PID... | drivers USER SIGNAL PORT | kill-all USER | "
				"disk-usage USER DIR | empty-dir USER DIR");
}

/*
 * launch_number
 *		A decimal number in [min, max], or refuse.
 */
static long
launch_number(const char *text, long min, long max, const char *what)
{
	char	   *end;
	long		value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
		launch_fail("%s \"%s\" is not a number from %ld to %ld", what, text, min, max);
	return value;
}

/*
 * launch_caller_in_group
 *		Whether gid is one of the caller's supplementary groups.
 */
static bool
launch_caller_in_group(gid_t gid)
{
	gid_t		groups[256];
	int			count = getgroups(256, groups);

	for (int i = 0; i < count; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/*
 * launch_pool_user
 *		The pool user named so, or refuse: a member of pgray-nodes (by its
 *		primary group or the group's list), neither root nor in root's
 *		group, and not the caller.  Only root decides who is in the pool.
 */
static struct passwd
launch_pool_user(const char *name)
{
	struct passwd *pw = getpwnam(name);
	struct passwd user;
	struct group *pool;
	bool		member = false;

	if (pw == NULL)
		launch_fail("OS user \"%s\" does not exist", name);
	user = *pw;
	user.pw_name = strdup(pw->pw_name);
	pool = getgrnam(LAUNCH_POOL_GROUP);
	if (pool == NULL)
		launch_fail("OS group \"%s\" does not exist: run scripts/install-node-users as root", LAUNCH_POOL_GROUP);
	member = user.pw_gid == pool->gr_gid;
	for (char **m = pool->gr_mem; !member && m != NULL && *m != NULL; m++)
		member = strcmp(*m, user.pw_name) == 0;
	if (!member)
		launch_fail("OS user \"%s\" is not a member of \"%s\"", name, LAUNCH_POOL_GROUP);
	if (user.pw_uid == 0 || user.pw_gid == 0 || user.pw_uid == getuid() || user.pw_gid == getgid() ||
		launch_caller_in_group(user.pw_gid))
		launch_fail("OS user \"%s\" may not run Ray nodes (root, in root's or the caller's group, or the caller)",
					name);
	return user;
}

/*
 * launch_drop_capabilities
 *		Clear every capability: the kernel does so by itself only when a
 *		user id was root's, which the caller's are not.
 */
static void
launch_drop_capabilities(void)
{
	struct __user_cap_header_struct header;
	struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];

	memset(&header, 0, sizeof(header));
	memset(none, 0, sizeof(none));
	header.version = _LINUX_CAPABILITY_VERSION_3;
	header.pid = 0;
	if (syscall(SYS_capset, &header, none) != 0)
		launch_fail("could not drop the capabilities of pg_ray_launch: %s", strerror(errno));
}

/*
 * launch_become
 *		Take on the pool user for good: its group alone as supplementary
 *		groups, every group and user id its, and no capability left.  Then
 *		make sure there is no way back.
 */
static void
launch_become(const struct passwd *user)
{
	gid_t		groups[1] = {user->pw_gid};

	if (setgroups(1, groups) != 0 ||
		setresgid(user->pw_gid, user->pw_gid, user->pw_gid) != 0 ||
		setresuid(user->pw_uid, user->pw_uid, user->pw_uid) != 0)
		launch_fail("could not become OS user \"%s\": %s (is pg_ray_launch installed with its "
					"capabilities? see docs/operations.md)", user->pw_name, strerror(errno));
	launch_drop_capabilities();
	if (setuid(0) == 0 || getuid() != user->pw_uid || geteuid() != user->pw_uid ||
		getgid() != user->pw_gid || getegid() != user->pw_gid)
		launch_fail("could not drop the privileges of pg_ray_launch");
}

/*
 * launch_act_as
 *		Take on the pool user's effective ids only (signals and /proc go by
 *		them), keeping the caller's real and saved ids so that the pool
 *		user's processes can neither signal nor trace this one; no
 *		capability left, and no core dump.
 */
static void
launch_act_as(const struct passwd *user)
{
	gid_t		groups[1] = {user->pw_gid};
	uid_t		caller = getuid();

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
		setgroups(1, groups) != 0 ||
		setresgid(-1, user->pw_gid, -1) != 0 ||
		setresuid(-1, user->pw_uid, -1) != 0)
		launch_fail("could not act as OS user \"%s\": %s (is pg_ray_launch installed with its "
					"capabilities? see docs/operations.md)", user->pw_name, strerror(errno));
	launch_drop_capabilities();
	if (setresuid(-1, 0, -1) == 0 || getuid() != caller || geteuid() != user->pw_uid ||
		getegid() != user->pw_gid)
		launch_fail("could not drop the privileges of pg_ray_launch");
}

/*
 * launch_proc_uid
 *		The real user id of a process, from /proc/PID/status, or -1.
 */
static long
launch_proc_uid(pid_t pid)
{
	char		path[64];
	char		line[256];
	FILE	   *f;
	long		uid = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Uid:", 4) == 0)
		{
			uid = strtol(line + 4, NULL, 10);
			break;
		}
	fclose(f);
	return uid;
}

/*
 * launch_signal_pid
 *		Send sig to pid if, once a pidfd holds it, /proc says it runs as
 *		uid: a pid reused by another process in between is left alone.
 *		Whether it was signalled.
 */
static bool
launch_signal_pid(pid_t pid, uid_t uid, int sig)
{
	int			pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
	bool		sent = false;

	if (pidfd < 0)
		return false;
	if (launch_proc_uid(pid) == (long) uid)
		sent = syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0;
	close(pidfd);
	return sent;
}

/*
 * launch_start
 *		start USER DIR [--remove RELPATH] -- PROGRAM [ARG...]: see the
 *		header.  DIR must be absolute and is opened without following a
 *		link; it is the caller's (a node's first start: the worker has just
 *		made it) or USER's (a restart), never anybody else's.
 */
static void
launch_start(int argc, char **argv)
{
	struct passwd user;
	const char *dir;
	const char *remove = NULL;
	int			dir_fd;
	int			open_fd;
	struct stat st;
	int			at = 4;

	if (argc < 6)
		launch_usage();
	user = launch_pool_user(argv[2]);
	dir = argv[3];
	if (strcmp(argv[at], "--remove") == 0)
	{
		if (argc < at + 4)
			launch_usage();
		remove = argv[at + 1];
		if (remove[0] == '/' || strstr(remove, "..") != NULL)
			launch_fail("--remove takes a path under DIR, not \"%s\"", remove);
		at += 2;
	}
	if (strcmp(argv[at], "--") != 0 || at + 1 >= argc)
		launch_usage();
	if (dir[0] != '/')
		launch_fail("run directory \"%s\" is not an absolute path", dir);

	/* a path only: the directory may be USER's already, closed to the caller */
	dir_fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir_fd < 0)
		launch_fail("could not open run directory \"%s\": %s", dir, strerror(errno));
	if (fstat(dir_fd, &st) != 0)
		launch_fail("could not stat run directory \"%s\": %s", dir, strerror(errno));
	if (st.st_uid == getuid())
	{
		if (fchownat(dir_fd, "", user.pw_uid, user.pw_gid, AT_EMPTY_PATH) != 0)
			launch_fail("could not give run directory \"%s\" to \"%s\": %s", dir, user.pw_name,
						strerror(errno));
	}
	else if (st.st_uid != user.pw_uid)
		launch_fail("run directory \"%s\" belongs to user id %d, neither the caller nor \"%s\"",
					dir, (int) st.st_uid, user.pw_name);

	launch_become(&user);
	open_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (open_fd < 0 || fchmod(open_fd, S_IRWXU) != 0 || fchdir(open_fd) != 0)
		launch_fail("could not enter run directory \"%s\": %s", dir, strerror(errno));
	close(open_fd);
	close(dir_fd);
	if (remove != NULL && unlink(remove) != 0 && errno != ENOENT)
		launch_fail("could not remove \"%s\" in \"%s\": %s", remove, dir, strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		launch_fail("could not set no_new_privs: %s", strerror(errno));
	umask(S_IRWXG | S_IRWXO);
	execv(argv[at + 1], argv + at + 1);
	launch_fail("could not execute \"%s\": %s", argv[at + 1], strerror(errno));
}

/*
 * launch_signal
 *		signal USER SIGNAL PID...: only those of USER's processes are
 *		reached (launch_signal_pid).  A process already gone is no error.
 */
static void
launch_signal(int argc, char **argv)
{
	struct passwd user;
	int			sig;

	if (argc < 5)
		launch_usage();
	user = launch_pool_user(argv[2]);
	sig = (int) launch_number(argv[3], 0, NSIG - 1, "signal");
	launch_act_as(&user);
	for (int i = 4; i < argc; i++)
		(void) launch_signal_pid((pid_t) launch_number(argv[i], 2, INT_MAX, "process id"), user.pw_uid, sig);
	exit(0);
}

/*
 * launch_session_of
 *		The session id of a process from /proc/PID/stat, or 0.
 */
static pid_t
launch_session_of(pid_t pid)
{
	char		path[64];
	char		buf[1024];
	FILE	   *f;
	char	   *p;
	char		state;
	int			ppid,
				pgrp,
				sid = 0;
	size_t		n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold anything, even ")": look for the last one */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) != 4 || state == 'Z')
		return 0;
	return (pid_t) sid;
}

/*
 * launch_is_driver
 *		Whether a process's environment says RAY_ADDRESS=<host>:<port>.
 */
static bool
launch_is_driver(pid_t pid, const char *suffix)
{
	char		path[64];
	static char buf[65536];
	size_t		suffix_len = strlen(suffix);
	size_t		len;
	int			fd;
	ssize_t		n;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int) pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	len = 0;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t) n;
	close(fd);
	buf[len] = '\0';
	for (size_t at = 0; at < len;)
	{
		const char *entry = buf + at;
		size_t		entry_len = strnlen(entry, len - at);

		if (entry_len > 12 + suffix_len && strncmp(entry, "RAY_ADDRESS=", 12) == 0 &&
			strncmp(entry + entry_len - suffix_len, suffix, suffix_len) == 0)
			return true;
		at += entry_len + 1;
	}
	return false;
}

/*
 * launch_drivers
 *		drivers USER SIGNAL PORT: see the header.  Ray starts each driver in
 *		a session of its own, so its whole session is signalled (what it
 *		started, whatever process groups they made); a driver in this
 *		program's own session, which cannot be, only by itself.
 */
static void
launch_drivers(int argc, char **argv)
{
	struct passwd user;
	int			sig;
	char		suffix[32];
	static pid_t sessions[LAUNCH_MAX_SESSIONS];
	int			nsessions = 0;
	bool		found = false;
	DIR		   *proc;
	struct dirent *de;

	if (argc != 5)
		launch_usage();
	user = launch_pool_user(argv[2]);
	sig = (int) launch_number(argv[3], 0, NSIG - 1, "signal");
	snprintf(suffix, sizeof(suffix), ":%ld", launch_number(argv[4], 1, 65535, "port"));
	launch_act_as(&user);

	if ((proc = opendir("/proc")) == NULL)
		launch_fail("could not open /proc: %s", strerror(errno));
	while ((de = readdir(proc)) != NULL)
	{
		pid_t		pid = (pid_t) atoi(de->d_name);
		pid_t		session;

		if (pid <= 1 || pid == getpid() || launch_proc_uid(pid) != (long) user.pw_uid ||
			!launch_is_driver(pid, suffix))
			continue;
		found = true;
		session = launch_session_of(pid);
		if (sig == 0)
			continue;
		if (session > 1 && session != getsid(0) && nsessions < LAUNCH_MAX_SESSIONS)
			sessions[nsessions++] = session;
		else
			(void) launch_signal_pid(pid, user.pw_uid, sig);
	}
	if (nsessions > 0)
	{
		rewinddir(proc);
		while ((de = readdir(proc)) != NULL)
		{
			pid_t		pid = (pid_t) atoi(de->d_name);
			pid_t		session;

			if (pid <= 1 || pid == getpid() || (session = launch_session_of(pid)) <= 1)
				continue;
			for (int i = 0; i < nsessions; i++)
				if (sessions[i] == session)
				{
					(void) launch_signal_pid(pid, user.pw_uid, sig);
					break;
				}
		}
	}
	closedir(proc);
	exit(found ? 1 : 0);
}

/*
 * launch_kill_all
 *		kill-all USER: SIGKILL to every process of USER, pass after pass, as
 *		what a pass did not see (started meanwhile) is seen by the next.
 */
static void
launch_kill_all(int argc, char **argv)
{
	struct passwd user;

	if (argc != 3)
		launch_usage();
	user = launch_pool_user(argv[2]);
	launch_act_as(&user);
	for (int pass = 0; pass < 100; pass++)
	{
		DIR		   *proc = opendir("/proc");
		struct dirent *de;
		int			seen = 0;

		if (proc == NULL)
			launch_fail("could not open /proc: %s", strerror(errno));
		while ((de = readdir(proc)) != NULL)
		{
			pid_t		pid = (pid_t) atoi(de->d_name);

			if (pid > 1 && launch_proc_uid(pid) == (long) user.pw_uid && launch_session_of(pid) != 0)
			{
				(void) launch_signal_pid(pid, user.pw_uid, SIGKILL);
				seen++;
			}
		}
		closedir(proc);
		if (seen == 0)
			exit(0);
		usleep(10000);
	}
	exit(1);
}

/* How deep the walks of a run directory go: a descriptor per level. */
#define LAUNCH_MAX_DEPTH 64

/*
 * launch_user_dir
 *		For the subcommands that walk a node's run directory (USER DIR):
 *		take on USER's effective ids and open DIR, an absolute path to a
 *		directory of USER's, not a link.  Returns its descriptor, or -1
 *		(acting as USER) if DIR does not exist.
 */
static int
launch_user_dir(int argc, char **argv, struct passwd *user)
{
	const char *dir;
	struct stat st;
	int			fd;

	if (argc != 4)
		launch_usage();
	*user = launch_pool_user(argv[2]);
	dir = argv[3];
	if (dir[0] != '/')
		launch_fail("run directory \"%s\" is not an absolute path", dir);
	launch_act_as(user);
	/* out of the caller's directory, which the walk has no business in */
	if (chdir("/") != 0)
		launch_fail("could not change to the root directory: %s", strerror(errno));
	/*
	 * Opened to its owner, should the tenant have closed it: DIR lies in the
	 * caller's directory, where the tenant cannot put a link in its place.
	 */
	if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == user->pw_uid)
		(void) chmod(dir, S_IRWXU);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return -1;
		launch_fail("could not open run directory \"%s\": %s", dir, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || st.st_uid != user->pw_uid)
		launch_fail("run directory \"%s\" is not a directory of \"%s\"", dir, user->pw_name);
	return fd;
}

/*
 * launch_open_subdir
 *		Open the directory name under dir_fd, without following a link and
 *		only on dir_fd's file system, or -1.  Takes dir_fd's device.
 */
static int
launch_open_subdir(int dir_fd, const char *name, dev_t device)
{
	int			fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_dev != device))
	{
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * launch_count_dir
 *		The bytes of disk (blocks, so a sparse file counts what it holds)
 *		that what is under dir_fd takes, depth first, a descriptor per
 *		level down to LAUNCH_MAX_DEPTH; an entry that goes meanwhile, or
 *		that cannot be read, is passed over.  Closes dir_fd.
 */
static unsigned long long
launch_count_dir(int dir_fd, dev_t device, int depth)
{
	DIR		   *dir = fdopendir(dir_fd);
	struct dirent *de;
	unsigned long long bytes = 0;

	if (dir == NULL)
	{
		close(dir_fd);
		return 0;
	}
	while ((de = readdir(dir)) != NULL)
	{
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		bytes += (unsigned long long) st.st_blocks * 512;
		if (S_ISDIR(st.st_mode) && st.st_dev == device && depth < LAUNCH_MAX_DEPTH)
		{
			int			sub_fd = launch_open_subdir(dirfd(dir), de->d_name, device);

			if (sub_fd >= 0)
				bytes += launch_count_dir(sub_fd, device, depth + 1);
		}
	}
	closedir(dir);
	return bytes;
}

/*
 * launch_disk_usage
 *		disk-usage USER DIR: see the header.  It acts with USER's effective
 *		ids, so it reads nothing USER may not, and DIR must be USER's: the
 *		number is all it tells.  Levels below LAUNCH_MAX_DEPTH are not
 *		counted (Ray's own go some 20 deep).
 */
static void
launch_disk_usage(int argc, char **argv)
{
	struct passwd user;
	int			dir_fd = launch_user_dir(argc, argv, &user);
	struct stat st;

	if (dir_fd < 0)
		launch_fail("run directory \"%s\" does not exist", argv[3]);
	if (fstat(dir_fd, &st) != 0)
		launch_fail("could not stat run directory \"%s\": %s", argv[3], strerror(errno));
	printf("%llu\n", (unsigned long long) st.st_blocks * 512 + launch_count_dir(dir_fd, st.st_dev, 1));
	exit(fflush(stdout) == 0 ? 0 : LAUNCH_FAILED);
}

/* What empty-dir could not remove, told once at the end. */
static unsigned long launch_left;
static int	launch_first_error;

/*
 * launch_empty_subdir
 *		Remove what is under dir_fd, depth first, as its owner: a directory
 *		is opened to its owner (chmod) before it is entered, so none that
 *		the tenant closed is left.  A directory at LAUNCH_MAX_DEPTH is moved
 *		up under top_fd (same file system) instead, and emptied in a later
 *		pass, so that any depth is removed with a bounded number of
 *		descriptors.  Closes dir_fd.  Whether it moved anything up.
 */
static bool
launch_empty_subdir(int dir_fd, int top_fd, dev_t device, int depth)
{
	DIR		   *dir = fdopendir(dir_fd);
	struct dirent *de;
	bool		moved = false;
	static unsigned long moves;

	if (dir == NULL)
	{
		close(dir_fd);
		return false;
	}
	while ((de = readdir(dir)) != NULL)
	{
		struct stat st;
		int			failed = 0;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode) && st.st_dev == device)
		{
			int			sub_fd;

			(void) fchmodat(dirfd(dir), de->d_name, S_IRWXU, AT_SYMLINK_NOFOLLOW);
			if (depth >= LAUNCH_MAX_DEPTH)
			{
				char		name[64];
				int			renamed;

				/* a name of the tenant's in the way is never replaced: the next one is tried */
				do
				{
					snprintf(name, sizeof(name), ".pg_ray_deep_%lu", moves++);
					renamed = renameat2(dirfd(dir), de->d_name, top_fd, name, RENAME_NOREPLACE);
				} while (renamed != 0 && errno == EEXIST && moves % 1000 != 0);
				if (renamed == 0)
				{
					moved = true;
					continue;
				}
			}
			else if ((sub_fd = launch_open_subdir(dirfd(dir), de->d_name, device)) >= 0)
				moved = launch_empty_subdir(sub_fd, top_fd, device, depth + 1) || moved;
			if (unlinkat(dirfd(dir), de->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
				failed = errno;
		}
		else if (unlinkat(dirfd(dir), de->d_name, 0) != 0 && errno != ENOENT)
			failed = errno;
		if (failed != 0 && launch_left++ == 0)
			launch_first_error = failed;
	}
	closedir(dir);
	return moved;
}

/*
 * launch_empty_dir
 *		empty-dir USER DIR: see the header.  As USER's effective ids, so it
 *		removes only what USER could.  Pass after pass while deep
 *		directories were moved up; what is left is told in one line (never
 *		a line per entry: the tenant chose the names and how many), and the
 *		caller's rmdir of DIR tells whether all went.  A DIR already gone is
 *		no error.
 */
static void
launch_empty_dir(int argc, char **argv)
{
	struct passwd user;
	int			dir_fd = launch_user_dir(argc, argv, &user);
	struct stat st;
	bool		moved = true;

	if (dir_fd < 0)
		exit(0);
	if (fstat(dir_fd, &st) != 0)
		launch_fail("could not stat run directory \"%s\": %s", argv[3], strerror(errno));
	while (moved)
	{
		/* a description of its own: a dup would share the last pass's position */
		int			pass_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		launch_left = 0;
		moved = pass_fd >= 0 && launch_empty_subdir(pass_fd, dir_fd, st.st_dev, 1);
	}
	if (launch_left > 0)
		launch_fail("could not remove %lu entries under \"%s\" (the first: %s)",
					launch_left, argv[3], strerror(launch_first_error));
	exit(0);
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		launch_usage();
	if (strcmp(argv[1], "start") == 0)
		launch_start(argc, argv);
	else if (strcmp(argv[1], "signal") == 0)
		launch_signal(argc, argv);
	else if (strcmp(argv[1], "drivers") == 0)
		launch_drivers(argc, argv);
	else if (strcmp(argv[1], "kill-all") == 0)
		launch_kill_all(argc, argv);
	else if (strcmp(argv[1], "disk-usage") == 0)
		launch_disk_usage(argc, argv);
	else if (strcmp(argv[1], "empty-dir") == 0)
		launch_empty_dir(argc, argv);
	launch_usage();
}
