/*-------------------------------------------------------------------------
 *
 * fuzz_workdir.c
 *		libFuzzer harness of the client's working-directory zip
 *		(cli_zip_working_dir in src/cli/workdir.c).
 *
 * The input describes a small directory tree, which the harness makes in a
 * temporary directory before zipping it the way "pg_ray job submit
 * --working-dir" does.  Sections are separated by NUL bytes:
 *
 *		excludes "\0" entry "\0" entry ...
 *
 * The first section is the runtime_env's "excludes", one pattern a line,
 * as the client passes them.  Each entry is a path, a newline and what the
 * path holds: a path ending in "/" is a directory; content starting with
 * "->" makes a symbolic link to the rest (a path inside the tree); anything
 * else is a regular file with that content.  A file named .gitignore or
 * .rayignore is an ignore file of its directory.  Empty path components
 * are dropped; an entry is left out if its path (or its link's target)
 * would leave the tree ("." or ".."), is more than FUZZ_MAX_DEPTH deep or
 * has a name over FUZZ_MAX_NAME bytes, or if it clashes with an earlier
 * entry.  At most FUZZ_MAX_ENTRIES entries are read.
 *
 * The archive is then read back with libzip and held against what the walk
 * had to put in it, worked out independently of workdir.c's walk: every
 * regular file (or link to one) that is not below or named .git or
 * __pycache__ and that no list in force excludes (the excludes, and the
 * ignore files of each directory above it, each speaking about its own
 * subtree), with its content, and nothing else.  A tree must be refused
 * where there is no such file, or where a directory the walk enters has an
 * ignore file that is there but cannot be read (a directory named
 * .gitignore, a link loop): uploading what it was meant to leave out could
 * leak a secret.  A tree may be refused where a name is not valid UTF-8 or
 * holds a control character, which libzip will not store as a UTF-8 name.
 * The walk's own memory is checked by the sanitizers, and its frees by
 * LeakSanitizer.
 *
 * Only workdir.c and ignore.c are linked, not the whole client: cli_error
 * is defined here.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_workdir.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "cli.h"
#include "fuzz_assert.h"
#include "ignore.h"

#define FUZZ_MAX_ENTRIES 24
#define FUZZ_MAX_DEPTH 4
#define FUZZ_MAX_NAME 40

typedef enum FuzzKind
{
	FUZZ_FILE,
	FUZZ_DIR,
	FUZZ_LINK
} FuzzKind;

/* One path the input asked for, and whether the harness could make it. */
typedef struct FuzzEntry
{
	char	   *path;			/* relative to the tree's root */
	FuzzKind	kind;
	const char *content;		/* file content, or link target */
	size_t		content_len;
	bool		made;
} FuzzEntry;

/* A file the archive must hold. */
typedef struct FuzzExpected
{
	char	   *path;
	char	   *content;
	size_t		content_len;
	bool		seen;
} FuzzExpected;

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The temporary directory of this process, and the tree's root in it. */
static char fuzz_tmp[] = "/tmp/pg_ray_fuzz_workdir.XXXXXX";
static char fuzz_root[sizeof(fuzz_tmp) + 8];

/* Where the client's progress line goes while the harness zips. */
static FILE *fuzz_devnull;

/* The directories of the tree, relative to its root, as nftw finds them. */
#define FUZZ_MAX_DIRS (FUZZ_MAX_ENTRIES * FUZZ_MAX_DEPTH)
static char *fuzz_dirs[FUZZ_MAX_DIRS];
static int	fuzz_ndirs;

/*
 * cli_error
 *		The client prints its errors; here they are formatted, so that a bad
 *		argument shows under the sanitizers, and dropped.
 */
void
cli_error(const char *fmt,...)
{
	char		message[1024];
	va_list		args;

	va_start(args, fmt);
	vsnprintf(message, sizeof(message), fmt, args);
	va_end(args);
}

/*
 * fuzz_remove_one
 *		nftw callback: remove one entry of the tree, children first.
 */
static int
fuzz_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void) st;
	(void) ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/*
 * fuzz_remove_tree
 *		Remove path and everything below it, not following links.
 */
static void
fuzz_remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		nftw(path, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * fuzz_cleanup
 *		At exit: remove the temporary directory.
 */
static void
fuzz_cleanup(void)
{
	fuzz_remove_tree(fuzz_tmp);
}

/*
 * LLVMFuzzerInitialize
 *		Make this process's temporary directory.
 */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	FUZZ_ASSERT(mkdtemp(fuzz_tmp) != NULL);
	snprintf(fuzz_root, sizeof(fuzz_root), "%s/w", fuzz_tmp);
	fuzz_devnull = fopen("/dev/null", "w");
	FUZZ_ASSERT(fuzz_devnull != NULL);
	atexit(fuzz_cleanup);
	return 0;
}

/*
 * fuzz_join
 *		"a/b", or "b" when a is empty; malloc'd.
 */
static char *
fuzz_join(const char *a, const char *b)
{
	size_t		size = strlen(a) + strlen(b) + 2;
	char	   *joined = malloc(size);

	FUZZ_ASSERT(joined != NULL);
	snprintf(joined, size, a[0] == '\0' ? "%s%s" : "%s/%s", a, b);
	return joined;
}

/*
 * fuzz_clean_path
 *		src[0..len) as a path inside the tree, malloc'd: empty components
 *		dropped; NULL if a component is "." or "..", holds a NUL, or is
 *		longer than FUZZ_MAX_NAME, or if there are none or too many.
 */
static char *
fuzz_clean_path(const char *src, size_t len)
{
	char	   *path = malloc(len + 1);
	size_t		n = 0;
	int			depth = 0;
	size_t		pos = 0;

	FUZZ_ASSERT(path != NULL);
	while (pos < len)
	{
		const char *slash = memchr(src + pos, '/', len - pos);
		size_t		clen = slash != NULL ? (size_t) (slash - (src + pos)) : len - pos;
		const char *comp = src + pos;

		pos += clen + 1;
		if (clen == 0)
			continue;
		if ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' && comp[1] == '.') ||
			clen > FUZZ_MAX_NAME || memchr(comp, '\0', clen) != NULL ||
			++depth > FUZZ_MAX_DEPTH)
		{
			free(path);
			return NULL;
		}
		if (n > 0)
			path[n++] = '/';
		memcpy(path + n, comp, clen);
		n += clen;
	}
	if (n == 0)
	{
		free(path);
		return NULL;
	}
	path[n] = '\0';
	return path;
}

/*
 * fuzz_parse_entry
 *		Read one "path\ncontent" section into entry; false to skip it.
 */
static bool
fuzz_parse_entry(const char *section, size_t len, FuzzEntry *entry)
{
	const char *eol = memchr(section, '\n', len);
	size_t		path_len = eol != NULL ? (size_t) (eol - section) : len;

	memset(entry, 0, sizeof(*entry));
	entry->path = fuzz_clean_path(section, path_len);
	if (entry->path == NULL)
		return false;
	entry->content = eol != NULL ? eol + 1 : section + len;
	entry->content_len = len - (size_t) (entry->content - section);
	if (path_len > 0 && section[path_len - 1] == '/')
		entry->kind = FUZZ_DIR;
	else if (entry->content_len >= 2 && memcmp(entry->content, "->", 2) == 0)
	{
		char	   *target = fuzz_clean_path(entry->content + 2, entry->content_len - 2);

		if (target == NULL)
		{
			free(entry->path);
			return false;
		}
		/* the cleaned target is the entry's to free: see fuzz_free_entry */
		entry->kind = FUZZ_LINK;
		entry->content = target;
		entry->content_len = strlen(target);
	}
	else
		entry->kind = FUZZ_FILE;
	return true;
}

/*
 * fuzz_free_entry
 *		Release what an entry owns: its path, and a link's cleaned target.
 */
static void
fuzz_free_entry(FuzzEntry *entry)
{
	free(entry->path);
	if (entry->kind == FUZZ_LINK)
		free((char *) entry->content);
}

/*
 * fuzz_make_entry
 *		Make one entry in the tree: its missing parents as directories, then
 *		itself.  Nothing is made where a parent is not a real directory or
 *		the path is taken.
 */
static bool
fuzz_make_entry(const FuzzEntry *entry)
{
	char	   *full = fuzz_join(fuzz_root, entry->path);
	char	   *slash = full + strlen(fuzz_root);
	struct stat st;
	bool		made = false;

	/* parents */
	while ((slash = strchr(slash + 1, '/')) != NULL)
	{
		*slash = '\0';
		if (lstat(full, &st) != 0)
		{
			if (mkdir(full, 0755) != 0)
				goto done;
		}
		else if (!S_ISDIR(st.st_mode))
			goto done;
		*slash = '/';
	}
	if (lstat(full, &st) == 0)
		goto done;
	if (entry->kind == FUZZ_DIR)
		made = mkdir(full, 0755) == 0;
	else if (entry->kind == FUZZ_LINK)
		made = symlink(entry->content, full) == 0;
	else
	{
		int			fd = open(full, O_WRONLY | O_CREAT | O_EXCL, 0644);

		if (fd >= 0)
		{
			made = write(fd, entry->content, entry->content_len) == (ssize_t) entry->content_len;
			close(fd);
		}
	}
done:
	free(full);
	return made;
}

/*
 * fuzz_read_file
 *		The whole content of a file, following links, malloc'd; NULL if it
 *		cannot be opened.  Read as workdir.c reads an ignore file, so that a
 *		directory read as one gives nothing.
 */
static char *
fuzz_read_file(const char *path, size_t *len)
{
	FILE	   *file = fopen(path, "r");
	char	   *text = NULL;
	FILE	   *memory;
	char		buffer[4096];
	size_t		n;

	*len = 0;
	if (file == NULL)
		return NULL;
	memory = open_memstream(&text, len);
	FUZZ_ASSERT(memory != NULL);
	while ((n = fread(buffer, 1, sizeof(buffer), file)) > 0)
		fwrite(buffer, 1, n, memory);
	fclose(memory);
	fclose(file);
	return text;
}

/*
 * fuzz_dir_excludes
 *		Whether an ignore file of the directory dir (relative; "" for the
 *		root) excludes path.
 */
static bool
fuzz_dir_excludes(const char *dir, const char *path, bool is_dir)
{
	static const char *const names[] = {".gitignore", ".rayignore"};
	bool		excluded = false;

	for (int i = 0; i < 2 && !excluded; i++)
	{
		char	   *relative = fuzz_join(dir, names[i]);
		char	   *full = fuzz_join(fuzz_root, relative);
		size_t		len;
		char	   *text = fuzz_read_file(full, &len);

		if (text != NULL)
		{
			IgnoreList *list = ignore_list_parse(text, len, dir);

			FUZZ_ASSERT(list != NULL);
			excluded = ignore_list_match(list, path, is_dir) == IGNORE_EXCLUDE;
			ignore_list_free(list);
			free(text);
		}
		free(relative);
		free(full);
	}
	return excluded;
}

/*
 * fuzz_excluded
 *		Whether the walk must leave path out (a file, or a directory if
 *		is_dir): a component named .git or __pycache__, or any of its leading
 *		paths (the directories above it, then itself) excluded by the
 *		excludes or by an ignore file of a directory above that leading path.
 */
static bool
fuzz_excluded(const char *path, IgnoreList *excludes, bool is_dir)
{
	char	   *copy = strdup(path);
	char	   *comps[FUZZ_MAX_DEPTH + 1];
	int			n = 0;
	bool		excluded = false;

	FUZZ_ASSERT(copy != NULL);
	for (char *c = strtok(copy, "/"); c != NULL; c = strtok(NULL, "/"))
	{
		FUZZ_ASSERT(n < FUZZ_MAX_DEPTH);
		comps[n++] = c;
		if (strcmp(c, ".git") == 0 || strcmp(c, "__pycache__") == 0)
			excluded = true;
	}
	for (int k = 1; k <= n && !excluded; k++)
	{
		char		leading[(FUZZ_MAX_NAME + 1) * (FUZZ_MAX_DEPTH + 1)] = "";
		char		dir[sizeof(leading)] = "";
		bool		leading_is_dir = k < n || is_dir;

		for (int i = 0; i < k; i++)
		{
			if (i > 0)
				strcat(leading, "/");
			strcat(leading, comps[i]);
		}
		if (excludes != NULL &&
			ignore_list_match(excludes, leading, leading_is_dir) == IGNORE_EXCLUDE)
			excluded = true;
		for (int j = 0; j < k && !excluded; j++)
		{
			if (j > 0)
			{
				if (j > 1)
					strcat(dir, "/");
				strcat(dir, comps[j - 1]);
			}
			excluded = fuzz_dir_excludes(dir, leading, leading_is_dir);
		}
	}
	free(copy);
	return excluded;
}

/*
 * fuzz_collect_dir
 *		nftw callback: note each directory below the root.
 */
static int
fuzz_collect_dir(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void) st;
	if (type == FTW_D && ftw->level > 0)
	{
		FUZZ_ASSERT(fuzz_ndirs < FUZZ_MAX_DIRS);
		fuzz_dirs[fuzz_ndirs] = strdup(path + strlen(fuzz_root) + 1);
		FUZZ_ASSERT(fuzz_dirs[fuzz_ndirs] != NULL);
		fuzz_ndirs++;
	}
	return 0;
}

/*
 * fuzz_ignore_file_unreadable
 *		Whether the directory dir (relative; "" for the root) has a .gitignore
 *		or .rayignore that is there but cannot be read: one that fopen finds
 *		(a dangling link is no file) but cannot open or read to the end.
 */
static bool
fuzz_ignore_file_unreadable(const char *dir)
{
	static const char *const names[] = {".gitignore", ".rayignore"};
	bool		unreadable = false;

	for (int i = 0; i < 2 && !unreadable; i++)
	{
		char	   *relative = fuzz_join(dir, names[i]);
		char	   *full = fuzz_join(fuzz_root, relative);
		FILE	   *file = fopen(full, "rb");

		if (file == NULL)
			unreadable = errno != ENOENT;
		else
		{
			char		buffer[4096];

			while (fread(buffer, 1, sizeof(buffer), file) > 0)
				;
			unreadable = ferror(file) != 0;
			fclose(file);
		}
		free(relative);
		free(full);
	}
	return unreadable;
}

/*
 * fuzz_zip_name_storable
 *		Whether libzip stores path as a UTF-8 name: strictly valid UTF-8
 *		without control characters.  (libzip is laxer about UTF-8; a name it
 *		takes must then come back as it was, which is checked too.)
 */
static bool
fuzz_zip_name_storable(const char *path)
{
	const unsigned char *p = (const unsigned char *) path;

	while (*p != '\0')
	{
		size_t		n;

		if (*p < 0x20 && *p != '\t' && *p != '\r')
			return false;
		if (*p < 0x80)
		{
			p++;
			continue;
		}
		if (*p >= 0xC2 && *p <= 0xDF)
			n = 1;
		else if (*p >= 0xE0 && *p <= 0xEF)
			n = 2;
		else if (*p >= 0xF0 && *p <= 0xF4)
			n = 3;
		else
			return false;
		for (size_t k = 1; k <= n; k++)
			if ((p[k] & 0xC0) != 0x80)
				return false;
		if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F) ||
			(p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] > 0x8F))
			return false;
		p += n + 1;
	}
	return true;
}

/*
 * fuzz_check_archive
 *		Read the zip back and check that it holds exactly the expected
 *		files, each with its content.
 */
static void
fuzz_check_archive(const char *zip, size_t zip_len, FuzzExpected *expected, int nexpected)
{
	zip_error_t error;
	zip_source_t *source;
	zip_t	   *archive;
	zip_int64_t count;

	zip_error_init(&error);
	source = zip_source_buffer_create(zip, zip_len, 0, &error);
	FUZZ_ASSERT(source != NULL);
	archive = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
	FUZZ_ASSERT(archive != NULL);
	count = zip_get_num_entries(archive, 0);
	FUZZ_ASSERT(count == nexpected);
	for (zip_int64_t i = 0; i < count; i++)
	{
		const char *name = zip_get_name(archive, (zip_uint64_t) i, ZIP_FL_ENC_RAW);
		FuzzExpected *want = NULL;
		zip_stat_t	st;
		zip_file_t *file;
		char	   *data;

		FUZZ_ASSERT(name != NULL);
		for (int k = 0; k < nexpected; k++)
			if (strcmp(expected[k].path, name) == 0)
				want = &expected[k];
		FUZZ_ASSERT(want != NULL && !want->seen);
		want->seen = true;
		FUZZ_ASSERT(zip_stat_index(archive, (zip_uint64_t) i, 0, &st) == 0);
		FUZZ_ASSERT(st.size == want->content_len);
		file = zip_fopen_index(archive, (zip_uint64_t) i, 0);
		FUZZ_ASSERT(file != NULL);
		data = malloc(want->content_len + 1);
		FUZZ_ASSERT(data != NULL);
		FUZZ_ASSERT(zip_fread(file, data, want->content_len + 1) == (zip_int64_t) want->content_len);
		FUZZ_ASSERT(memcmp(data, want->content, want->content_len) == 0);
		free(data);
		zip_fclose(file);
	}
	zip_discard(archive);
	zip_error_fini(&error);
}

/*
 * LLVMFuzzerTestOneInput
 *		Make the tree the input describes, zip it, check the archive.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *input = (const char *) data;
	const char *nul = memchr(input, '\0', size);
	size_t		excludes_len = nul != NULL ? (size_t) (nul - input) : size;
	char	   *excludes;
	IgnoreList *excludes_list = NULL;
	FuzzEntry	entries[FUZZ_MAX_ENTRIES];
	int			nentries = 0;
	FuzzExpected expected[FUZZ_MAX_ENTRIES];
	int			nexpected = 0;
	bool		storable = true;
	bool		unreadable;
	size_t		pos = excludes_len + 1;
	char	   *zip;
	size_t		zip_len = 0;
	FILE	   *saved_stderr;

	excludes = strndup(input, excludes_len);
	FUZZ_ASSERT(excludes != NULL);
	while (pos < size && nentries < FUZZ_MAX_ENTRIES)
	{
		const char *end = memchr(input + pos, '\0', size - pos);
		size_t		len = end != NULL ? (size_t) (end - (input + pos)) : size - pos;

		if (fuzz_parse_entry(input + pos, len, &entries[nentries]))
			nentries++;
		pos += len + 1;
	}

	fuzz_remove_tree(fuzz_root);
	FUZZ_ASSERT(mkdir(fuzz_root, 0755) == 0);
	for (int i = 0; i < nentries; i++)
		entries[i].made = fuzz_make_entry(&entries[i]);

	/* what the archive must hold */
	if (excludes[0] != '\0')
	{
		excludes_list = ignore_list_parse(excludes, strlen(excludes), "");
		FUZZ_ASSERT(excludes_list != NULL);
	}
	for (int i = 0; i < nentries; i++)
	{
		char	   *full;
		struct stat st;

		if (!entries[i].made || entries[i].kind == FUZZ_DIR)
			continue;
		full = fuzz_join(fuzz_root, entries[i].path);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
			!fuzz_excluded(entries[i].path, excludes_list, false))
		{
			FuzzExpected *want = &expected[nexpected++];

			want->path = entries[i].path;
			want->content = fuzz_read_file(full, &want->content_len);
			want->seen = false;
			FUZZ_ASSERT(want->content != NULL);
			if (!fuzz_zip_name_storable(want->path))
				storable = false;
		}
		free(full);
	}

	/* an ignore file of a directory the walk enters that cannot be read */
	fuzz_ndirs = 0;
	nftw(fuzz_root, fuzz_collect_dir, 16, FTW_PHYS);
	unreadable = fuzz_ignore_file_unreadable("");
	for (int i = 0; i < fuzz_ndirs; i++)
	{
		if (!unreadable && !fuzz_excluded(fuzz_dirs[i], excludes_list, true))
			unreadable = fuzz_ignore_file_unreadable(fuzz_dirs[i]);
		free(fuzz_dirs[i]);
	}

	/*
	 * The client prints one line per upload to stderr.  Only the stdio
	 * stream is swapped: the sanitizers and libFuzzer write to fd 2 or to
	 * a stream of their own, so a crash inside still reports.
	 */
	saved_stderr = stderr;
	stderr = fuzz_devnull;
	zip = cli_zip_working_dir(fuzz_root, excludes, &zip_len);
	stderr = saved_stderr;
	if (unreadable || nexpected == 0)
		FUZZ_ASSERT(zip == NULL);
	else if (zip == NULL)
		FUZZ_ASSERT(!storable);
	else
		fuzz_check_archive(zip, zip_len, expected, nexpected);

	free(zip);
	for (int i = 0; i < nexpected; i++)
		free(expected[i].content);
	for (int i = 0; i < nentries; i++)
		fuzz_free_entry(&entries[i]);
	ignore_list_free(excludes_list);
	free(excludes);
	fuzz_remove_tree(fuzz_root);
	return 0;
}
