/*-------------------------------------------------------------------------
 *
 * local_disk.c
 *		The disk use of local worker nodes, measured without holding up the
 *		worker.
 *
 * A worker node's disk_gb bounds what its run directory takes, and only
 * the node's OS user may read that directory, so pg_ray_launch disk-usage
 * counts it.  A tenant decides how long that takes (millions of files), so
 * the worker never waits for it: a round starts a probe (a launcher whose
 * answer comes on a pipe) and a later round collects it, at most
 * LOCAL_DISK_PROBES at once and each for at most LOCAL_DISK_PROBE_MS.  A
 * probe that fails or runs out of time is recorded as a measurement
 * without a number, so the node waits pg_ray.disk_check_interval before
 * the next one rather than being probed every round.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/local_disk.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "utils/timestamp.h"

#include "local_internal.h"
#include "spi_util.h"

/* How many probes run at once, and how long one may take. */
#define LOCAL_DISK_PROBES 4
#define LOCAL_DISK_PROBE_MS 60000

/* A launcher counting one node's run directory. */
typedef struct LocalDiskProbe
{
	int64		node_id;
	pid_t		pid;
	int			fd;				/* the read end of its standard output */
	TimestampTz deadline;
	char		answer[32];
	int			length;
} LocalDiskProbe;

static LocalDiskProbe local_disk_probes[LOCAL_DISK_PROBES];
static int	local_disk_probe_count = 0;

/*
 * local_disk_measure
 *		Start measuring a node's run directory, unless it is being measured
 *		already or as many probes as may run do: then a later round asks
 *		again (the node's measurement is still due).
 */
void
local_disk_measure(int64 node_id, const LocalUser *user, const char *run_dir)
{
	LocalDiskProbe *probe;
	int			pipe_fds[2];
	char	   *argv[5];

	if (user->uid == geteuid() || local_disk_probe_count >= LOCAL_DISK_PROBES)
		return;
	for (int i = 0; i < local_disk_probe_count; i++)
		if (local_disk_probes[i].node_id == node_id)
			return;
	if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
		return;
	argv[0] = local_launcher_path();
	argv[1] = "disk-usage";
	argv[2] = (char *) user->name;
	argv[3] = (char *) run_dir;
	argv[4] = NULL;
	probe = &local_disk_probes[local_disk_probe_count];
	probe->pid = local_launch_start(argv, pipe_fds[1]);
	close(pipe_fds[1]);
	if (probe->pid < 0)
	{
		close(pipe_fds[0]);
		return;
	}
	probe->node_id = node_id;
	probe->fd = pipe_fds[0];
	probe->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LOCAL_DISK_PROBE_MS);
	probe->length = 0;
	local_disk_probe_count++;
}

/*
 * local_disk_record
 *		Record a probe's answer (a number of bytes, or -1 for none) through
 *		ray._local_node_disk_used, which replaces a node over its disk_gb.
 */
static void
local_disk_record(int64 node_id, int64 bytes)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(node_id), Int64GetDatum(bytes)};
	char		nulls[2] = {' ', bytes < 0 ? 'n' : ' '};

	pg_ray_spi_exec("SELECT ray._local_node_disk_used($1, $2)", 2, types, values, nulls);
}

/*
 * local_disk_answer
 *		The bytes a finished probe printed, or -1 if it printed no number.
 */
static int64
local_disk_answer(LocalDiskProbe *probe)
{
	char	   *end;
	int64		bytes;

	probe->answer[probe->length] = '\0';
	errno = 0;
	bytes = strtoll(probe->answer, &end, 10);
	if (errno != 0 || end == probe->answer || *end != '\n' || bytes < 0)
		return -1;
	return bytes;
}

/*
 * local_disk_collect
 *		Inside a round's transaction: record what the finished probes said,
 *		and give up on those past their time (killed: their pipe is still
 *		open, so they still run and their pid is theirs; the worker reaps
 *		them with its nodes).  The probes are settled (descriptors closed,
 *		the array compacted) before anything is recorded, so that an error
 *		while recording leaves no closed descriptor behind to be read or
 *		closed again.  Whether probes are still running.
 */
bool
local_disk_collect(void)
{
	int			kept = 0;
	int			finished = 0;
	int64		finished_ids[LOCAL_DISK_PROBES];
	int64		finished_bytes[LOCAL_DISK_PROBES];

	for (int i = 0; i < local_disk_probe_count; i++)
	{
		LocalDiskProbe *probe = &local_disk_probes[i];
		ssize_t		n = 1;
		bool		done = false;
		int64		bytes = -1;

		while (n > 0 && probe->length < (int) sizeof(probe->answer) - 1)
		{
			n = read(probe->fd, probe->answer + probe->length, sizeof(probe->answer) - 1 - probe->length);
			if (n > 0)
				probe->length += (int) n;
		}
		if (n == 0 || probe->length >= (int) sizeof(probe->answer) - 1)
		{
			/* its standard output is closed: it has exited */
			done = true;
			bytes = local_disk_answer(probe);
		}
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			done = true;
		else if (GetCurrentTimestamp() >= probe->deadline)
		{
			(void) kill(probe->pid, SIGKILL);
			done = true;
			ereport(WARNING,
					(errmsg("pg_ray gave up measuring the disk use of Ray node " INT64_FORMAT " after %d ms",
							probe->node_id, LOCAL_DISK_PROBE_MS),
					 errdetail("Its run directory holds too much to count in that time; it is counted again after pg_ray.disk_check_interval.")));
		}
		if (!done)
		{
			local_disk_probes[kept++] = *probe;
			continue;
		}
		close(probe->fd);
		finished_ids[finished] = probe->node_id;
		finished_bytes[finished++] = bytes;
	}
	local_disk_probe_count = kept;
	for (int i = 0; i < finished; i++)
		local_disk_record(finished_ids[i], finished_bytes[i]);
	return kept > 0;
}

/*
 * local_disk_forget
 *		Give up on every probe (the extension was dropped and created anew:
 *		node ids start again, and an old answer would be taken for a new
 *		node's).  Those still running are killed.
 */
void
local_disk_forget(void)
{
	for (int i = 0; i < local_disk_probe_count; i++)
	{
		LocalDiskProbe *probe = &local_disk_probes[i];
		char		byte;

		/* still running (its pipe open and nothing in it): its pid is its own */
		if (read(probe->fd, &byte, 1) < 0 && errno == EAGAIN)
			(void) kill(probe->pid, SIGKILL);
		close(probe->fd);
	}
	local_disk_probe_count = 0;
}
