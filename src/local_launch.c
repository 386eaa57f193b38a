/*-------------------------------------------------------------------------
 *
 * local_launch.c
 *		The worker's side of pg_ray_launch: the OS user a local group's
 *		nodes run as, and signalling that user's processes.
 *
 * Each local group runs its Ray nodes as an OS user of pg_ray's pool
 * (ray.resource_group.os_user), so that job code can reach neither the
 * server's files nor its processes nor another group's.  The worker, as the
 * server's OS user, may not signal those processes itself: it asks the
 * launcher (src/launcher/pg_ray_launch.c, in $libdir), which takes on that
 * user and nothing more.  Processes of the server's own OS user that look
 * like a node's (left by pg_ray 0.1, which ran nodes so) are signalled
 * directly.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/local_launch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "utils/timestamp.h"

#include "local_internal.h"

/* How long the worker waits for the launcher to signal or look. */
#define LOCAL_LAUNCH_WAIT_MS 5000

/*
 * local_user_lookup
 *		The OS user of that name, or an error that says how to make it.
 */
void
local_user_lookup(const char *name, LocalUser *user)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("OS user \"%s\" does not exist", name),
				 errdetail("Local groups run their Ray nodes as OS users of pg_ray's pool."),
				 errhint("Run scripts/install-node-users as root, with PG_RAY_NODE_USERS at least pg_ray.node_os_users.")));
	user->uid = pw->pw_uid;
	strlcpy(user->name, pw->pw_name, sizeof(user->name));
}

/*
 * local_launcher_path
 *		Where pg_ray_launch is: next to the library.
 */
char *
local_launcher_path(void)
{
	return psprintf("%s/pg_ray_launch", pkglib_path);
}

/*
 * local_child_setup
 *		In a child between fork and exec, with only async-signal-safe calls:
 *		standard input and output (and error) from these descriptors, no
 *		other descriptor of the server's, and every signal at its default
 *		and unblocked, so that nothing of the server leaks into the program.
 */
void
local_child_setup(int in_fd, int out_fd, int err_fd)
{
	struct sigaction dfl;
	sigset_t	none;

	(void) dup2(in_fd, 0);
	(void) dup2(out_fd, 1);
	if (err_fd != 2)
		(void) dup2(err_fd, 2);
	(void) close_range(3, ~0U, 0);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		(void) sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * local_launch_start
 *		Start the launcher with argv (argv[0] its path), with no descriptor
 *		of the server's but standard error and out_fd, if not -1, as its
 *		standard output, and no environment; its pid, or -1.
 */
pid_t
local_launch_start(char **argv, int out_fd)
{
	pid_t		pid;
	int			null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null_fd < 0)
		return -1;
	pid = fork();
	if (pid == 0)
	{
		static char *const no_env[] = {NULL};

		local_child_setup(null_fd, out_fd >= 0 ? out_fd : null_fd, 2);
		execve(argv[0], argv, no_env);
		_exit(127);
	}
	close(null_fd);
	return pid;
}

/*
 * local_launch_wait
 *		Run the launcher with argv (argv[0] its path) and wait for it, at
 *		most LOCAL_LAUNCH_WAIT_MS by the clock; its exit status, or -1 if it
 *		could not be run, was killed, or is not done by then: the pool user
 *		may slow it down (it acts with that user's effective ids, which let
 *		the user renice it), so it is killed and reaped then (its real user
 *		is the server's) and the caller tries again in a later round.  It
 *		gets no descriptor of the server's but standard error, where it says
 *		why it refused, and out_fd, if not -1, as its standard output.
 */
static int
local_launch_wait(char **argv, int out_fd)
{
	pid_t		pid = local_launch_start(argv, out_fd);
	int			status;
	TimestampTz deadline;
	long		nap_us = 100;

	if (pid < 0)
		return -1;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LOCAL_LAUNCH_WAIT_MS);
	for (;;)
	{
		pid_t		done = waitpid(pid, &status, WNOHANG);

		if (done == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (done < 0 && errno != EINTR)
			return -1;
		if (GetCurrentTimestamp() >= deadline)
		{
			(void) kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			ereport(WARNING,
					(errmsg("pg_ray_launch %s did not finish within %d ms and was killed; a later round tries again",
							argv[1], LOCAL_LAUNCH_WAIT_MS)));
			return -1;
		}
		pg_usleep(nap_us);
		nap_us = Min(nap_us * 2, 20000L);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * local_kill
 *		Send sig to the processes (of user, as /proc said) in pids.
 */
void
local_kill(const LocalUser *user, int sig, const pid_t *pids, int count)
{
	char	  **argv;
	int			status;

	if (count == 0)
		return;
	if (user->uid == geteuid())
	{
		for (int i = 0; i < count; i++)
			(void) kill(pids[i], sig);
		return;
	}
	argv = palloc0(sizeof(char *) * (count + 5));
	argv[0] = local_launcher_path();
	argv[1] = "signal";
	argv[2] = (char *) user->name;
	argv[3] = psprintf("%d", sig);
	for (int i = 0; i < count; i++)
		argv[4 + i] = psprintf("%d", (int) pids[i]);
	status = local_launch_wait(argv, -1);
	if (status != 0)
		ereport(WARNING,
				(errmsg("pg_ray could not signal the processes of OS user \"%s\": the launcher %s",
						user->name, status < 0 ? "did not run" : "refused"),
				 errhint("See the line of pg_ray_launch above, and docs/operations.md on installing it.")));
}

/*
 * local_launch_kill_all
 *		Kill every process of user (the launcher's kill-all); whether none
 *		is left.  A group's first node starts only then, so that nothing
 *		that ran as its OS user for another group (dropped, or of a dropped
 *		extension) is left to reach the new one's processes and token.
 */
bool
local_launch_kill_all(const LocalUser *user)
{
	char	   *argv[4];

	argv[0] = local_launcher_path();
	argv[1] = "kill-all";
	argv[2] = (char *) user->name;
	argv[3] = NULL;
	return local_launch_wait(argv, -1) == 0;
}

/*
 * local_launch_drivers
 *		Whether user runs Ray job drivers of the cluster whose GCS listens on
 *		gcs_port, or may (the launcher did not finish: a node's slot is not
 *		released on a guess); with sig, their sessions are sent it.  Only
 *		user may read their environments, which say so: the launcher looks,
 *		as user.
 */
bool
local_launch_drivers(const LocalUser *user, int gcs_port, int sig)
{
	char	   *argv[6];
	int			status;

	if (user->uid == geteuid())
		return false;
	argv[0] = local_launcher_path();
	argv[1] = "drivers";
	argv[2] = (char *) user->name;
	argv[3] = psprintf("%d", sig);
	argv[4] = psprintf("%d", gcs_port);
	argv[5] = NULL;
	status = local_launch_wait(argv, -1);
	if (status != 0 && status != 1)
		ereport(WARNING,
				(errmsg("pg_ray could not look for the Ray job drivers of OS user \"%s\": the launcher %s",
						user->name, status < 0 ? "did not finish" : "refused"),
				 errhint("See the line of pg_ray_launch above, and docs/operations.md on installing it.")));
	return status == 1 || status < 0;
}

/*
 * local_launch_remove_run_dir
 *		Remove the run directory (and log) of a node whose slot is gone: the
 *		launcher empties it as the node's OS user (only that user may), and
 *		the directory and its log, in the server's OS user's directory, go
 *		here.  Without it, each replaced worker would leave what it held on
 *		disk (spilled objects, logs) behind for good.  What cannot be removed
 *		is left, with a warning.
 */
void
local_launch_remove_run_dir(const LocalUser *user, const char *run_dir)
{
	char	   *argv[5];
	char	   *log_path = psprintf("%s.log", run_dir);

	if (user->uid != geteuid())
	{
		argv[0] = local_launcher_path();
		argv[1] = "empty-dir";
		argv[2] = (char *) user->name;
		argv[3] = (char *) run_dir;
		argv[4] = NULL;
		(void) local_launch_wait(argv, -1);
	}
	if (rmdir(run_dir) != 0 && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("pg_ray could not remove the run directory \"%s\" of a removed node: %m", run_dir),
				 errhint("Remove it by hand; see the line of pg_ray_launch above.")));
	if (unlink(log_path) != 0 && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("pg_ray could not remove \"%s\": %m", log_path)));
}
