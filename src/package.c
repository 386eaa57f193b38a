/*-------------------------------------------------------------------------
 *
 * package.c
 *		Working directories: ray.zip_directory, which zips a directory on
 *		the database server for ray.submit_job's working_dir, and the
 *		package of a batch inference run.
 *
 * The same zipping makes the package of a batch inference run: the runner
 * installed with the extension, and the run's credentials
 * (ray._runner_package).
 *
 * Clients send their working directory as a zip (bytea) with the job; this
 * is the same for a directory that lives on the server.  Reading server
 * files is a privilege PostgreSQL gives superusers and pg_read_server_files,
 * as for COPY FROM a file, and so does this function.  The archive has the
 * files at its root, as Ray's package protocol wants, leaves out .git and
 * __pycache__ as Ray does, and follows no symbolic links, so it cannot be
 * used to read outside the directory.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/package.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>
#include <zip.h>

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "package.h"
#include "pg_ray.h"
#include "schema_version.h"

PG_FUNCTION_INFO_V1(pg_ray_zip_directory);
PG_FUNCTION_INFO_V1(pg_ray_runner_package);

/* where a run's package holds its credentials; the runner reads this file */
#define RUNNER_CREDENTIALS_FILE "pg_ray_run_credentials.json"

typedef struct ZipWalk
{
	zip_t	   *archive;
	const char *root;
	int64		total_bytes;
	int			files;
} ZipWalk;

static void package_add_directory(ZipWalk *walk, const char *relative);
static void package_add_content(ZipWalk *walk, const char *name, const char *content);

/*
 * package_discard
 *		Drop the archive before an error unwinds: libzip's objects are freed
 *		by libzip's own functions, and only once.
 */
static void
package_discard(ZipWalk *walk)
{
	if (walk->archive)
	{
		zip_discard(walk->archive);
		walk->archive = NULL;
	}
}

/*
 * package_add_file
 *		Add one regular file, by its path relative to the root.
 */
static void
package_add_file(ZipWalk *walk, const char *relative, const struct stat *st)
{
	char	   *full = psprintf("%s/%s", walk->root, relative);
	zip_source_t *source;

	walk->total_bytes += st->st_size;
	if (walk->total_bytes > pg_ray_max_working_dir_bytes)
	{
		package_discard(walk);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("directory \"%s\" is too large for a working directory", walk->root),
				 errdetail("Its files exceed pg_ray.max_working_dir_bytes (%d bytes).",
						   pg_ray_max_working_dir_bytes)));
	}
	source = zip_source_file(walk->archive, full, 0, -1);
	if (source == NULL || zip_file_add(walk->archive, relative, source, ZIP_FL_ENC_UTF_8) < 0)
	{
		char	   *why = pstrdup(zip_strerror(walk->archive));

		if (source)
			zip_source_free(source);
		package_discard(walk);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not add \"%s\" to the working directory", full),
				 errdetail("%s", why)));
	}
	walk->files++;
	pfree(full);
}

/*
 * package_add_content
 *		Add a file made of the given text, at the root.  libzip reads the
 *		text when the archive is closed, which is before it is freed.
 */
static void
package_add_content(ZipWalk *walk, const char *name, const char *content)
{
	zip_source_t *source;

	source = zip_source_buffer(walk->archive, content, strlen(content), 0);
	if (source == NULL || zip_file_add(walk->archive, name, source, ZIP_FL_ENC_UTF_8) < 0)
	{
		char	   *why = pstrdup(zip_strerror(walk->archive));

		if (source)
			zip_source_free(source);
		package_discard(walk);
		elog(ERROR, "could not add \"%s\" to a package: %s", name, why);
	}
}

/*
 * package_add_directory
 *		Add everything below one directory, depth first.
 */
static void
package_add_directory(ZipWalk *walk, const char *relative)
{
	char	   *full = relative[0] ? psprintf("%s/%s", walk->root, relative) : pstrdup(walk->root);
	DIR		   *dir = AllocateDir(full);
	struct dirent *entry;

	while ((entry = ReadDir(dir, full)) != NULL)
	{
		char	   *child;
		char	   *child_full;
		struct stat st;

		CHECK_FOR_INTERRUPTS();
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0 ||
			strcmp(entry->d_name, ".git") == 0 || strcmp(entry->d_name, "__pycache__") == 0)
			continue;
		child = relative[0] ? psprintf("%s/%s", relative, entry->d_name) : pstrdup(entry->d_name);
		child_full = psprintf("%s/%s", walk->root, child);
		if (lstat(child_full, &st) != 0)
		{
			package_discard(walk);
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat \"%s\": %m", child_full)));
		}
		if (S_ISDIR(st.st_mode))
			package_add_directory(walk, child);
		else if (S_ISREG(st.st_mode))
			package_add_file(walk, child, &st);
		/* symbolic links and special files are left out */
		pfree(child);
		pfree(child_full);
	}
	FreeDir(dir);
	pfree(full);
}

/*
 * pg_ray_zip_path
 *		The directory at an absolute path as a zip, files at the root.  The
 *		caller has decided that the directory may be read.
 */
bytea *
pg_ray_zip_path(const char *path, const char *extra_name, const char *extra_content)
{
	struct stat st;
	ZipWalk		walk;
	zip_source_t *buffer;
	zip_error_t error;
	zip_stat_t	zst;
	bytea	   *result;

	if (!is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("path \"%s\" must be absolute", path)));
	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat \"%s\": %m", path)));
	if (!S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a directory", path)));

	/* build the archive in memory */
	zip_error_init(&error);
	buffer = zip_source_buffer_create(NULL, 0, 0, &error);
	if (buffer == NULL)
		elog(ERROR, "could not create a zip buffer: %s", zip_error_strerror(&error));
	zip_source_keep(buffer);
	walk.archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
	if (walk.archive == NULL)
	{
		zip_source_free(buffer);
		elog(ERROR, "could not create a zip archive: %s", zip_error_strerror(&error));
	}
	walk.root = path;
	walk.total_bytes = 0;
	walk.files = 0;

	PG_TRY();
	{
		package_add_directory(&walk, "");
		if (extra_name != NULL)
			package_add_content(&walk, extra_name, extra_content);
	}
	PG_CATCH();
	{
		package_discard(&walk);
		zip_source_free(buffer);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (walk.files == 0)
	{
		package_discard(&walk);
		zip_source_free(buffer);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("directory \"%s\" has no files to zip", path),
				 errdetail("Symbolic links, .git and __pycache__ are left out.")));
	}
	if (zip_close(walk.archive) < 0)
	{
		char	   *why = pstrdup(zip_strerror(walk.archive));

		zip_discard(walk.archive);
		zip_source_free(buffer);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not zip \"%s\"", path),
				 errdetail("%s", why)));
	}

	if (zip_source_stat(buffer, &zst) < 0 || zip_source_open(buffer) < 0)
	{
		zip_source_free(buffer);
		elog(ERROR, "could not read back the zip of \"%s\"", path);
	}
	result = (bytea *) palloc(VARHDRSZ + zst.size);
	SET_VARSIZE(result, VARHDRSZ + zst.size);
	if (zip_source_read(buffer, VARDATA(result), zst.size) != (zip_int64_t) zst.size)
	{
		zip_source_close(buffer);
		zip_source_free(buffer);
		elog(ERROR, "could not read back the zip of \"%s\"", path);
	}
	zip_source_close(buffer);
	zip_source_free(buffer);
	return result;
}

/*
 * pg_ray_zip_directory
 *		ray.zip_directory(path): the directory as a zip, files at the root.
 */
Datum
pg_ray_zip_directory(PG_FUNCTION_ARGS)
{
	pg_ray_require_current_schema();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("path must not be null")));
	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to zip a directory on the server"),
				 errdetail("Only roles with privileges of the \"%s\" role may read server files.",
						   "pg_read_server_files"),
				 errhint("Zip the directory on the client and pass it as working_dir.")));
	PG_RETURN_BYTEA_P(pg_ray_zip_path(text_to_cstring(PG_GETARG_TEXT_PP(0)), NULL, NULL));
}

/*
 * pg_ray_runner_package
 *		ray._runner_package(credentials): the batch inference runner
 *		installed with the extension (share/extension/pg_ray/runner), zipped
 *		as the working directory of a run, so that a cluster needs only Ray
 *		and the runner's Python packages.  With credentials, they are added
 *		as pg_ray_run_credentials.json: a run's password goes to the cluster
 *		in its package, unpacked in the node's private directory, rather than
 *		in its runtime environment, which Ray writes on the command line of
 *		every worker process of the job.
 */
Datum
pg_ray_runner_package(PG_FUNCTION_ARGS)
{
	char		share[MAXPGPATH];
	char		path[MAXPGPATH];
	char	   *credentials = NULL;

	pg_ray_require_current_schema();

	if (PG_NARGS() > 0 && !PG_ARGISNULL(0))
		credentials = text_to_cstring(PG_GETARG_TEXT_PP(0));
	get_share_path(my_exec_path, share);
	snprintf(path, sizeof(path), "%s/extension/pg_ray/runner", share);
	PG_RETURN_BYTEA_P(pg_ray_zip_path(path, credentials ? RUNNER_CREDENTIALS_FILE : NULL, credentials));
}
