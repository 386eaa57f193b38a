/*-------------------------------------------------------------------------
 *
 * local_spawn.c
 *		Starting a node's process: its ports, its run directory, fork and
 *		exec in a session of its own as its OS user; and why it exited.
 *
 * The worker is the parent of the node processes it starts: it reaps
 * them between rounds, so that they do not linger as zombies, and keeps
 * their exit statuses to say why a node is gone.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/local_spawn.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/stringinfo.h"

#include "local_internal.h"
#include "ray_text.h"

/* Ports of a node's block that Ray binds itself (the rest are for workers). */
#define LOCAL_FIXED_PORTS 11

/* Exit statuses of children reaped between rounds, for the exit message. */
#define LOCAL_MAX_REAPED 64

typedef struct LocalReaped
{
	pid_t		pid;
	int			status;
} LocalReaped;

static LocalReaped local_reaped[LOCAL_MAX_REAPED];
static int	local_reaped_count = 0;

/*
 * local_reap
 *		Collect the exit statuses of node processes the worker started, so
 *		they do not linger as zombies; the statuses explain the exits.
 */
void
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
 * local_busy_port
 *		The first port of a node's block that another program holds, or 0.
 *		Ray binds its ports on all interfaces, so that is what is tried.
 */
int
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
 *		Create a node's run directory and its parents, walking the path one
 *		component at a time without following a symbolic link, and refuse a
 *		path another OS user could have laid: Ray keeps a node's sockets,
 *		logs and session files there.  Every directory on the way must be
 *		root's or the server's OS user's, and one that others may write in
 *		must be root's and sticky (as /tmp is); pg_ray.run_directory and
 *		the installation's directory under it (a run directory is
 *		<it>/<installation>/n<node>) must be the server's OS user's, open to
 *		no one else but to pass through (mode 0711: nodes run as other OS
 *		users), and the node's own directory the server's OS user's (the
 *		launcher gives it to the node's user) or the node's user's already.
 *		What is missing is made.
 */
void
local_make_dir(const char *path, const LocalUser *user)
{
	char	   *copy = pstrdup(path);
	size_t		root_len = strlen(path);
	int			dir_fd;
	char	   *name;
	char	   *next;

	/* pg_ray.run_directory, as it was when the node's directory was named */
	for (int up = 0; up < 2; up++)
		while (root_len > 0 && path[--root_len] != '/')
			;
	if (copy[0] != '/' || root_len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("run directory \"%s\" is not an absolute path under pg_ray.run_directory", path)));
	dir_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"/\": %m")));
	for (name = copy + 1; name != NULL && *name != '\0'; name = next)
	{
		int			fd;
		struct stat st;
		bool		under_root;
		bool		node_dir;
		bool		safe;
		int			open_flags;

		next = strchr(name, '/');
		if (next != NULL)
			*next++ = '\0';
		if (*name == '\0')
			continue;
		under_root = (size_t) (name + strlen(name) - copy) >= root_len;
		node_dir = next == NULL || *next == '\0';
		/* the node's own directory may be its OS user's already: only looked at */
		open_flags = (node_dir ? O_PATH : O_RDONLY) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
		fd = openat(dir_fd, name, open_flags);
		if (fd < 0 && errno == ENOENT)
		{
			if (mkdirat(dir_fd, name, S_IRWXU) != 0 && errno != EEXIST)
			{
				int			save_errno = errno;

				close(dir_fd);
				errno = save_errno;
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not create directory \"%s\": %m", path)));
			}
			fd = openat(dir_fd, name, open_flags);
		}
		if (fd < 0)
		{
			int			save_errno = errno;

			close(dir_fd);
			errno = save_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open directory \"%s\" on the way to run directory \"%s\": %m",
							name, path),
					 (save_errno == ELOOP || save_errno == ENOTDIR) ?
					 errdetail("It is a symbolic link or not a directory; pg_ray follows no link on the way to a run directory.") : 0));
		}
		close(dir_fd);
		dir_fd = fd;
		if (fstat(fd, &st) != 0)
		{
			int			save_errno = errno;

			close(fd);
			errno = save_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat directory \"%s\": %m", name)));
		}
		if (node_dir)
			safe = st.st_uid == geteuid() || st.st_uid == user->uid;
		else if (under_root)
			safe = st.st_uid == geteuid() && (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) == 0;
		else
			safe = (st.st_uid == 0 || st.st_uid == geteuid()) &&
				((st.st_mode & (S_IWGRP | S_IWOTH)) == 0 || (st.st_uid == 0 && (st.st_mode & S_ISVTX) != 0));
		if (!safe)
		{
			close(fd);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("directory \"%s\" on the way to run directory \"%s\" is not safe", name, path),
					 errdetail("It belongs to user id %d with mode %04o; %s", (int) st.st_uid,
							   (int) (st.st_mode & 07777),
							   node_dir ? "a node's directory must be the server's OS user's or the node's." :
							   under_root ? "from pg_ray.run_directory down, each directory must be the server's OS user's, open to no one else but to pass through (mode 0711)." :
							   "above pg_ray.run_directory, each must be root's or the server's OS user's, and one that others may write in root's and sticky."),
					 errhint("Point pg_ray.run_directory at a directory of the server's OS user, or one pg_ray may create.")));
		}
		/* the node's OS user passes through to its own directory */
		if (under_root && !node_dir && (st.st_mode & 07777) != (S_IRWXU | S_IXGRP | S_IXOTH) &&
			fchmod(fd, S_IRWXU | S_IXGRP | S_IXOTH) != 0)
		{
			int			save_errno = errno;

			close(fd);
			errno = save_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not change the mode of directory \"%s\": %m", name)));
		}
	}
	close(dir_fd);
	pfree(copy);
}

/*
 * local_spawn
 *		Start a node's process in a session of its own, as the node's OS
 *		user (through pg_ray_launch, which gives it its run directory and
 *		keeps the pid), with its output in <run directory>.log, which stays
 *		the server's OS user's: the node writes it through the descriptor it
 *		is given.  Between fork and exec the child only makes
 *		async-signal-safe calls: it sets up its session, descriptors and
 *		signals, so that nothing of the server leaks into Ray.
 */
pid_t
local_spawn(const char *run_dir, char **argv, char **envp, const LocalUser *user)
{
	char	   *log_path = psprintf("%s.log", run_dir);
	int			log_fd;
	struct stat log_stat;
	int			null_fd;
	pid_t		pid;
	int			argc = 0;
	char	  **launch_argv;

	while (argv[argc] != NULL)
		argc++;
	launch_argv = palloc0(sizeof(char *) * (argc + 9));
	launch_argv[0] = local_launcher_path();
	launch_argv[1] = "start";
	launch_argv[2] = (char *) user->name;
	launch_argv[3] = (char *) run_dir;
	/* a head restarted next to its surviving workers would think it runs already */
	launch_argv[4] = "--remove";
	launch_argv[5] = "r/ray_current_cluster";
	launch_argv[6] = "--";
	for (int i = 0; i < argc; i++)
		launch_argv[7 + i] = argv[i];
	if (access(launch_argv[0], X_OK) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not run \"%s\": %m", launch_argv[0]),
				 errdetail("Local groups run their Ray nodes as OS users of their own, through this launcher."),
				 errhint("Install it with make install as root (docs/operations.md).")));

	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
				  S_IRUSR | S_IWUSR);
	if (log_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", log_path)));
	if (fstat(log_fd, &log_stat) != 0 || !S_ISREG(log_stat.st_mode) || log_stat.st_uid != geteuid())
	{
		close(log_fd);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("\"%s\" is not a regular file of the server's OS user", log_path)));
	}
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
		static const char failed[] = "pg_ray: could not execute the node's launcher\n";

		(void) setsid();
		local_child_setup(null_fd, log_fd, log_fd);
		if (chdir("/") == 0)
			execve(launch_argv[0], launch_argv, envp);
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
	local_wait_for_user(pid, user);
	return pid;
}

/*
 * local_exit_reason
 *		Why a node's leader is gone: its exit status when the worker reaped
 *		it, and the last line of its log, which is where Ray says why.
 */
char *
local_exit_reason(pid_t pid, const char *run_dir)
{
	StringInfoData reason;
	char	   *log_path = psprintf("%s.log", run_dir);
	int			fd;
	struct stat log_stat;
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

	/* a regular file only: a FIFO put there would hold the worker */
	fd = open(log_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &log_stat) != 0 || !S_ISREG(log_stat.st_mode)))
	{
		close(fd);
		fd = -1;
	}
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
				appendStringInfo(&reason, " (last log line: %s)", ray_text_to_server(line, strlen(line)));
		}
		close(fd);
	}
	return reason.data;
}
