/*-------------------------------------------------------------------------
 *
 * metrics_targets.c
 *		Keep a Prometheus file_sd targets file that lists the metrics port
 *		of every running local Ray node.
 *
 * Ray's own metrics (tasks, actors, object store, resources, GPUs) are
 * exported by each node's metrics agent on its metrics export port, which
 * for a local node is the sixth port of its block, on loopback.  Prometheus
 * finds them through this file (file_sd_configs), which the worker rewrites
 * at the end of a round whenever the nodes changed: each node a target of
 * its own, labelled with its resource group, node kind, worker group and
 * slot, so that dashboards can sum a group's nodes.  What it lists comes
 * from ray._metrics_targets (sql/views.sql).
 *
 * The file is replaced whole (written beside it, then renamed), so
 * Prometheus never reads half of one.  A file that cannot be written does
 * not fail the round: the worker says so in the log, once for each reason,
 * and tries again in its next round.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/metrics_targets.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor/spi.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "metrics_targets.h"
#include "pg_ray.h"
#include "spi_util.h"

/* what was last written, and where (NULL: nothing yet) */
static char *targets_written = NULL;
static char *targets_written_to = NULL;
/* why the last write failed, so that it is logged once (NULL: it did not) */
static char *targets_failure = NULL;

/*
 * metrics_targets_note_failure
 *		Log why the file could not be written, unless that was logged last.
 */
static void
metrics_targets_note_failure(const char *why)
{
	if (targets_failure != NULL && strcmp(targets_failure, why) == 0)
		return;
	ereport(WARNING,
			(errmsg("pg_ray worker could not write the metrics targets file \"%s\": %s",
					pg_ray_metrics_targets_file, why),
			 errhint("Check pg_ray.metrics_targets_file: its directory must be writable by the server's OS user.")));
	if (targets_failure != NULL)
		pfree(targets_failure);
	targets_failure = MemoryContextStrdup(TopMemoryContext, why);
}

/*
 * metrics_targets_write
 *		Replace the file with content: write it beside the file, then
 *		rename it over the file.  Returns false, with why, if it could not.
 */
static bool
metrics_targets_write(const char *path, const char *content, char **why)
{
	char	   *temporary = psprintf("%s.tmp", path);
	size_t		length = strlen(content);
	int			fd;

	/*
	 * A new file, never one found there: in a directory others may write, a
	 * link planted under the temporary name must not make the server's OS
	 * user write through it.
	 */
	if (unlink(temporary) != 0 && errno != ENOENT)
	{
		*why = psprintf("could not remove \"%s\": %m", temporary);
		return false;
	}
	fd = OpenTransientFile(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | PG_BINARY);
	if (fd < 0)
	{
		*why = psprintf("could not open \"%s\": %m", temporary);
		return false;
	}
	if (write(fd, content, length) != (ssize_t) length || fchmod(fd, 0644) != 0)
	{
		*why = psprintf("could not write \"%s\": %m", temporary);
		CloseTransientFile(fd);
		(void) unlink(temporary);
		return false;
	}
	if (CloseTransientFile(fd) != 0 || rename(temporary, path) != 0)
	{
		*why = psprintf("could not rename \"%s\" to \"%s\": %m", temporary, path);
		(void) unlink(temporary);
		return false;
	}
	return true;
}

/*
 * pg_ray_metrics_targets_round
 *		In a round (within its transaction, SPI connected): if
 *		pg_ray.metrics_targets_file names a file and the targets differ from
 *		what was last written there, write them.
 */
void
pg_ray_metrics_targets_round(void)
{
	char	   *content;
	char	   *why = NULL;
	bool		isnull;

	if (pg_ray_metrics_targets_file == NULL || pg_ray_metrics_targets_file[0] == '\0')
		return;
	pg_ray_spi_exec("SELECT ray._metrics_targets()", 0, NULL, NULL, NULL);
	if (SPI_processed != 1)
		elog(ERROR, "ray._metrics_targets() returned " UINT64_FORMAT " rows", SPI_processed);
	content = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (targets_written != NULL && strcmp(targets_written, content) == 0 &&
		strcmp(targets_written_to, pg_ray_metrics_targets_file) == 0)
		return;
	if (!metrics_targets_write(pg_ray_metrics_targets_file, content, &why))
	{
		metrics_targets_note_failure(why);
		return;
	}
	if (targets_written != NULL)
	{
		pfree(targets_written);
		pfree(targets_written_to);
	}
	targets_written = MemoryContextStrdup(TopMemoryContext, content);
	targets_written_to = MemoryContextStrdup(TopMemoryContext, pg_ray_metrics_targets_file);
	if (targets_failure != NULL)
	{
		pfree(targets_failure);
		targets_failure = NULL;
	}
}
