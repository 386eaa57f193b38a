/*-------------------------------------------------------------------------
 *
 * workdir.c
 *		Zipping a working directory on the client, leaving out what "ray
 *		job submit" leaves out.
 *
 * Ray's job submission uploads the working directory without the files that
 * the patterns of a .gitignore or .rayignore file in any of its directories
 * match (each file's patterns apply below its directory), nor those that
 * runtime_env's "excludes" patterns match (relative to the root); a path
 * that any of them excludes is left out, and an excluded directory is not
 * entered.  pg_ray also leaves out .git and __pycache__, as
 * ray.zip_directory does on the server.  Symbolic links to files are
 * followed; those to directories are not, so a link cannot make the walk go
 * round in circles.  Files are at the root of the archive, as Ray's package
 * protocol wants; empty directories are not kept.  A .zip file given as the
 * working directory is sent as it is, as Ray does with one.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/workdir.c
 *
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "cli.h"
#include "ignore.h"

/* The ignore files of one walk, innermost last. */
typedef struct WorkdirWalk
{
	zip_t	   *archive;
	const char *root;
	IgnoreList **lists;
	int			nlists;
	int			capacity;
	int			files;
	long long	bytes;
	bool		failed;
} WorkdirWalk;

/*
 * workdir_join
 *		"a/b" from "a" and "b", or "b" when a is empty; malloc'd.
 */
static char *
workdir_join(const char *a, const char *b)
{
	size_t		size = strlen(a) + strlen(b) + 2;
	char	   *joined = malloc(size);

	if (joined == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	if (a[0] == '\0')
		snprintf(joined, size, "%s", b);
	else
		snprintf(joined, size, "%s/%s", a, b);
	return joined;
}

/*
 * workdir_push_list
 *		Keep the patterns of one ignore file or the excludes for the rest of
 *		the walk below base.
 */
static void
workdir_push_list(WorkdirWalk *walk, IgnoreList *list)
{
	if (walk->nlists == walk->capacity)
	{
		walk->capacity = walk->capacity ? walk->capacity * 2 : 8;
		walk->lists = realloc(walk->lists, walk->capacity * sizeof(IgnoreList *));
		if (walk->lists == NULL)
		{
			cli_error("out of memory");
			exit(EXIT_FAILED);
		}
	}
	walk->lists[walk->nlists++] = list;
}

/*
 * workdir_read_file
 *		The whole of a file, malloc'd, its size in *length; NULL with errno
 *		set if it cannot be read.
 */
static char *
workdir_read_file(const char *path, size_t *length)
{
	FILE	   *file = fopen(path, "rb");
	char	   *content = NULL;
	FILE	   *memory;
	char		buffer[65536];
	size_t		n;
	int			saved_errno;

	if (file == NULL)
		return NULL;
	*length = 0;
	memory = open_memstream(&content, length);
	if (memory == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	while ((n = fread(buffer, 1, sizeof(buffer), file)) > 0)
		fwrite(buffer, 1, n, memory);
	saved_errno = errno;
	if (ferror(file))
	{
		fclose(memory);
		fclose(file);
		free(content);
		errno = saved_errno;
		return NULL;
	}
	fclose(memory);
	fclose(file);
	return content;
}

/*
 * workdir_read_ignore_file
 *		Keep the patterns of directory/name, relative to base, if there is
 *		such a file.  A file that is there but cannot be read fails the walk:
 *		uploading what it was meant to leave out could leak a secret.
 */
static void
workdir_read_ignore_file(WorkdirWalk *walk, const char *directory, const char *name,
						 const char *base, int *pushed)
{
	char	   *path = workdir_join(directory, name);
	size_t		length;
	char	   *text = workdir_read_file(path, &length);
	IgnoreList *list;

	if (text == NULL)
	{
		if (errno != ENOENT)
		{
			cli_error("could not read \"%s\": %s", path, strerror(errno));
			walk->failed = true;
		}
		free(path);
		return;
	}
	list = ignore_list_parse(text, length, base);
	free(text);
	free(path);
	if (list == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	workdir_push_list(walk, list);
	(*pushed)++;
}

/*
 * workdir_compare_names
 *		Order directory entries by their bytes, not by the locale: the same
 *		directory makes the same archive (and so the same package name)
 *		whoever zips it.
 */
static int
workdir_compare_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * workdir_excluded
 *		Whether any pattern list in force leaves the path out: as in Ray, a
 *		path is left out when one list excludes it, and a "!" pattern undoes
 *		an exclusion only within its own list.
 */
static bool
workdir_excluded(const WorkdirWalk *walk, const char *relative, bool is_dir)
{
	for (int i = 0; i < walk->nlists; i++)
		if (ignore_list_match(walk->lists[i], relative, is_dir) == IGNORE_EXCLUDE)
			return true;
	return false;
}

/*
 * workdir_add_directory
 *		Add what is below one directory (relative to the root), depth first.
 *		Sets walk->failed, with the reason printed, on an error.
 */
static void
workdir_add_directory(WorkdirWalk *walk, const char *relative)
{
	char	   *full = relative[0] ? workdir_join(walk->root, relative) : strdup(walk->root);
	int			pushed = 0;
	struct dirent **entries;
	int			count;

	workdir_read_ignore_file(walk, full, ".gitignore", relative, &pushed);
	workdir_read_ignore_file(walk, full, ".rayignore", relative, &pushed);

	count = scandir(full, &entries, NULL, workdir_compare_names);
	if (count < 0)
	{
		cli_error("could not read directory \"%s\": %s", full, strerror(errno));
		walk->failed = true;
	}
	for (int i = 0; i < count; i++)
	{
		const char *name = entries[i]->d_name;
		char	   *child;
		char	   *child_full;
		struct stat st;

		if (walk->failed || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
			strcmp(name, ".git") == 0 || strcmp(name, "__pycache__") == 0)
		{
			free(entries[i]);
			continue;
		}
		child = workdir_join(relative, name);
		child_full = workdir_join(walk->root, child);
		if (lstat(child_full, &st) != 0)
		{
			cli_error("could not read \"%s\": %s", child_full, strerror(errno));
			walk->failed = true;
			st.st_mode = 0;
		}
		else if (S_ISLNK(st.st_mode) && (stat(child_full, &st) != 0 || S_ISDIR(st.st_mode)))
			st.st_mode = 0;		/* a dangling link or one to a directory */
		if (S_ISDIR(st.st_mode) && !workdir_excluded(walk, child, true))
			workdir_add_directory(walk, child);
		else if (S_ISREG(st.st_mode) && !workdir_excluded(walk, child, false))
		{
			zip_source_t *source = zip_source_file(walk->archive, child_full, 0, -1);

			if (source == NULL || zip_file_add(walk->archive, child, source, ZIP_FL_ENC_UTF_8) < 0)
			{
				cli_error("could not add \"%s\" to the working directory: %s", child_full,
						  zip_strerror(walk->archive));
				if (source != NULL)
					zip_source_free(source);
				walk->failed = true;
			}
			walk->files++;
			walk->bytes += st.st_size;
		}
		free(child);
		free(child_full);
		free(entries[i]);
	}
	if (count >= 0)
		free(entries);
	while (pushed-- > 0)
		ignore_list_free(walk->lists[--walk->nlists]);
	free(full);
}

/*
 * workdir_read_zip
 *		A working directory given as a zip file, as Ray also takes it: sent
 *		as it is (the server checks that it is a zip).
 */
static char *
workdir_read_zip(const char *path, size_t *zip_length)
{
	char	   *zip = workdir_read_file(path, zip_length);

	if (zip == NULL)
		cli_error("could not read working directory \"%s\": %s", path, strerror(errno));
	else
		fprintf(stderr, "Uploading working directory \"%s\": %zu bytes.\n", path, *zip_length);
	return zip;
}

/*
 * cli_zip_working_dir
 *		The directory at path as a zip archive in memory (malloc'd, its size
 *		in *zip_length), without what the ignore files and excludes (patterns
 *		one per line, or NULL) leave out; or the zip file at path.  NULL, with the reason printed, if
 *		it cannot be made.
 */
char *
cli_zip_working_dir(const char *path, const char *excludes, size_t *zip_length)
{
	WorkdirWalk walk = {0};
	struct stat st;
	zip_source_t *buffer;
	zip_error_t error;
	zip_stat_t	zst;
	char	   *zip = NULL;

	if (stat(path, &st) != 0)
	{
		cli_error("could not read working directory \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	if (S_ISREG(st.st_mode) && strlen(path) > 4 && strcmp(path + strlen(path) - 4, ".zip") == 0)
		return workdir_read_zip(path, zip_length);
	if (!S_ISDIR(st.st_mode))
	{
		cli_error("working directory \"%s\" is not a directory or a .zip file", path);
		return NULL;
	}
	zip_error_init(&error);
	buffer = zip_source_buffer_create(NULL, 0, 0, &error);
	if (buffer == NULL)
	{
		cli_error("could not create a zip buffer: %s", zip_error_strerror(&error));
		return NULL;
	}
	zip_source_keep(buffer);
	walk.archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
	if (walk.archive == NULL)
	{
		cli_error("could not create a zip archive: %s", zip_error_strerror(&error));
		zip_source_free(buffer);
		return NULL;
	}
	walk.root = path;
	if (excludes != NULL && excludes[0] != '\0')
	{
		IgnoreList *list = ignore_list_parse(excludes, strlen(excludes), "");

		if (list == NULL)
		{
			cli_error("out of memory");
			exit(EXIT_FAILED);
		}
		workdir_push_list(&walk, list);
	}

	workdir_add_directory(&walk, "");
	while (walk.nlists > 0)
		ignore_list_free(walk.lists[--walk.nlists]);
	free(walk.lists);

	if (!walk.failed && walk.files == 0)
	{
		cli_error("working directory \"%s\" has no files to upload", path);
		fprintf(stderr, "DETAIL:  .git, __pycache__, links to directories and what .gitignore, .rayignore and runtime_env excludes match are left out.\n");
		walk.failed = true;
	}
	if (walk.failed)
	{
		zip_discard(walk.archive);
		zip_source_free(buffer);
		return NULL;
	}
	if (zip_close(walk.archive) < 0)
	{
		cli_error("could not zip \"%s\": %s", path, zip_strerror(walk.archive));
		zip_discard(walk.archive);
		zip_source_free(buffer);
		return NULL;
	}
	if (zip_source_stat(buffer, &zst) == 0 && zip_source_open(buffer) == 0)
	{
		zip = malloc(zst.size > 0 ? zst.size : 1);
		if (zip != NULL && zip_source_read(buffer, zip, zst.size) == (zip_int64_t) zst.size)
			*zip_length = zst.size;
		else
		{
			free(zip);
			zip = NULL;
		}
		zip_source_close(buffer);
	}
	zip_source_free(buffer);
	if (zip == NULL)
		cli_error("could not read back the zip of \"%s\"", path);
	else
		fprintf(stderr, "Uploading working directory \"%s\": %d files, %lld bytes, %zu zipped.\n",
				path, walk.files, walk.bytes, *zip_length);
	return zip;
}
