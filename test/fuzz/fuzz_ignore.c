/*-------------------------------------------------------------------------
 *
 * fuzz_ignore.c
 *		libFuzzer harness of the client's ignore patterns (src/cli/ignore.c):
 *		ignore_list_parse and ignore_list_match.
 *
 * The input is the text of an ignore file, then optionally a NUL and a path
 * to match, then optionally a NUL and the directory the file lives in:
 *
 *		patterns [ "\0" path [ "\0" base ] ]
 *
 * so that a plain .gitignore is a seed as it is.  The text is matched
 * against the given path and a fixed set of usual ones, each as a file and
 * as a directory, and what comes back is checked:
 *
 *	- parsing never fails (it may only on out-of-memory) and keeps no more
 *	  patterns than the text has lines;
 *	- a verdict is one of the three, and the same when asked again;
 *	- the same text read from a subdirectory says about "base/path" what it
 *	  says from the root about "path", and nothing about paths outside base
 *	  or about base itself;
 *	- paths longer than the matcher's stack buffers (4096 bytes) are matched
 *	  too, on the heap;
 *	- where every line is simple enough for fnmatch(3) to mean the same as
 *	  git (literal bytes, "?", "*" but not "**", plain bracket sets, a
 *	  leading "!", a leading or trailing "/", comments), the verdict is the
 *	  one fnmatch with FNM_PATHNAME gives, the last matching line winning.
 *
 * The matcher's promise not to backtrack is what -timeout guards: a pattern
 * that took exponential time would be reported as a timeout.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_ignore.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_assert.h"
#include "ignore.h"

/* Longer than IGNORE_STACK_PATH in ignore.c, so matching goes to the heap. */
#define FUZZ_LONG_PREFIX_DIRS 2100

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Paths of a usual working directory, matched against every input. */
static const char *const fuzz_usual_paths[] = {
	"a", "a.log", ".env", "build", "build/out.o", "src/main.c", "src/.cache/x.pyc",
	"docs/a/b/c.md", "node_modules/pkg/index.js", "data/2024/01/x.csv", "a/b",
	"logs/debug.log", "foo/bar/baz", "x y", "#notes", "!important", "dir\\name"
};

/*
 * fuzz_copy_path
 *		A malloc'd copy of src[0..len) as ignore_list_match wants paths:
 *		'/'-separated, without empty components, so no leading or trailing
 *		slash.  *had_trailing_slash says whether src ended in one, which the
 *		harness reads as "this is a directory".
 */
static char *
fuzz_copy_path(const char *src, size_t len, bool *had_trailing_slash)
{
	char	   *path = malloc(len + 1);
	size_t		n = 0;

	FUZZ_ASSERT(path != NULL);
	for (size_t i = 0; i < len; i++)
	{
		if (src[i] == '/' && (n == 0 || path[n - 1] == '/'))
			continue;
		path[n++] = src[i];
	}
	if (n > 0 && path[n - 1] == '/')
		n--;
	path[n] = '\0';
	if (had_trailing_slash != NULL)
		*had_trailing_slash = len > 0 && src[len - 1] == '/';
	return path;
}

/*
 * fuzz_join
 *		"a/b", malloc'd.
 */
static char *
fuzz_join(const char *a, const char *b)
{
	size_t		size = strlen(a) + strlen(b) + 2;
	char	   *joined = malloc(size);

	FUZZ_ASSERT(joined != NULL);
	snprintf(joined, size, "%s/%s", a, b);
	return joined;
}

/*
 * fuzz_simple_bracket
 *		Whether the bracket expression at p (its '[') is a plain set on which
 *		fnmatch and git agree: an optional '!', then letters, digits and
 *		ascending ranges of them, then ']'.  *end is set past the ']'.
 */
static bool
fuzz_simple_bracket(const char *p, const char *limit, const char **end)
{
	const char *q = p + 1;
	int			members = 0;

	if (q < limit && *q == '!')
		q++;
	while (q < limit && *q != ']')
	{
		if (!isalnum((unsigned char) *q))
			return false;
		if (q + 2 < limit && q[1] == '-' && isalnum((unsigned char) q[2]))
		{
			if ((unsigned char) q[2] < (unsigned char) q[0])
				return false;
			q += 3;
		}
		else
			q++;
		members++;
	}
	if (q >= limit || members == 0)
		return false;
	*end = q + 1;
	return true;
}

/*
 * fuzz_simple_line
 *		Whether one line of the text means the same to fnmatch as to git.
 */
static bool
fuzz_simple_line(const char *line, size_t len)
{
	const char *p = line;
	const char *limit = line + len;

	if (len == 0 || line[0] == '#')
		return true;
	if (*p == '!')
		p++;
	while (p < limit)
	{
		if (*p == '[')
		{
			if (!fuzz_simple_bracket(p, limit, &p))
				return false;
			continue;
		}
		if (*p == '*' && p + 1 < limit && p[1] == '*')
			return false;
		if (!isalnum((unsigned char) *p) && strchr("._-/*?", *p) == NULL)
			return false;
		p++;
	}
	return true;
}

/*
 * fuzz_simple_text
 *		Whether every line of the text is simple (see fuzz_simple_line).
 */
static bool
fuzz_simple_text(const char *text, size_t len)
{
	size_t		pos = 0;

	while (pos < len)
	{
		const char *eol = memchr(text + pos, '\n', len - pos);
		size_t		line_len = eol != NULL ? (size_t) (eol - (text + pos)) : len - pos;

		if (!fuzz_simple_line(text + pos, line_len))
			return false;
		pos += line_len + 1;
	}
	return true;
}

/*
 * fuzz_expected_verdict
 *		What a simple text says about path, worked out with fnmatch(3): the
 *		last line that matches decides, as in gitignore(5).
 */
static IgnoreVerdict
fuzz_expected_verdict(const char *text, size_t len, const char *path, bool is_dir)
{
	IgnoreVerdict verdict = IGNORE_NONE;
	const char *name = strrchr(path, '/');
	size_t		pos = 0;

	name = name != NULL ? name + 1 : path;
	while (pos < len)
	{
		const char *eol = memchr(text + pos, '\n', len - pos);
		size_t		line_len = eol != NULL ? (size_t) (eol - (text + pos)) : len - pos;
		char	   *line = malloc(line_len + 1);
		char	   *p = line;
		bool		negated = false;
		bool		dir_only = false;
		bool		whole_path;
		size_t		plen;

		FUZZ_ASSERT(line != NULL);
		memcpy(line, text + pos, line_len);
		line[line_len] = '\0';
		pos += line_len + 1;
		if (line_len == 0 || line[0] == '#')
		{
			free(line);
			continue;
		}
		if (*p == '!')
		{
			negated = true;
			p++;
		}
		plen = strlen(p);
		if (plen > 0 && p[plen - 1] == '/')
		{
			dir_only = true;
			p[--plen] = '\0';
		}
		if (plen == 0 || (dir_only && !is_dir))
		{
			free(line);
			continue;
		}
		whole_path = strchr(p, '/') != NULL;
		if (*p == '/')
			p++;
		if (fnmatch(p, whole_path ? path : name, FNM_PATHNAME) == 0)
			verdict = negated ? IGNORE_INCLUDE : IGNORE_EXCLUDE;
		free(line);
	}
	return verdict;
}

/*
 * fuzz_check_path
 *		Match one path, as a file and as a directory, and check the verdicts.
 */
static void
fuzz_check_path(const IgnoreList *root, const IgnoreList *below_base, const char *base,
				const char *text, size_t len, bool simple, const char *path)
{
	char	   *in_base = fuzz_join(base, path);

	if (path[0] == '\0')
	{
		/* no path is empty: the list has nothing to say about it */
		FUZZ_ASSERT(ignore_list_match(root, path, false) == IGNORE_NONE);
		free(in_base);
		return;
	}
	for (int is_dir = 0; is_dir <= 1; is_dir++)
	{
		IgnoreVerdict verdict = ignore_list_match(root, path, is_dir);

		FUZZ_ASSERT(verdict == IGNORE_NONE || verdict == IGNORE_EXCLUDE ||
					verdict == IGNORE_INCLUDE);
		FUZZ_ASSERT(ignore_list_match(root, path, is_dir) == verdict);
		FUZZ_ASSERT(ignore_list_match(below_base, in_base, is_dir) == verdict);
		if (strncmp(path, base, strlen(base)) != 0 || path[strlen(base)] != '/')
			FUZZ_ASSERT(ignore_list_match(below_base, path, is_dir) == IGNORE_NONE);
		if (simple)
			FUZZ_ASSERT(verdict == fuzz_expected_verdict(text, len, path, is_dir));
	}
	free(in_base);
}

/*
 * fuzz_check_long_path
 *		Match path below FUZZ_LONG_PREFIX_DIRS directories, longer than the
 *		matcher's stack buffers; for a simple text, against fnmatch too.
 */
static void
fuzz_check_long_path(const IgnoreList *root, const char *text, size_t len, bool simple,
					 const char *path)
{
	size_t		path_len = strlen(path);
	char	   *long_path = malloc(2 * FUZZ_LONG_PREFIX_DIRS + path_len + 1);
	IgnoreVerdict verdict;

	FUZZ_ASSERT(long_path != NULL);
	for (size_t i = 0; i < FUZZ_LONG_PREFIX_DIRS; i++)
		memcpy(long_path + 2 * i, "d/", 2);
	memcpy(long_path + 2 * FUZZ_LONG_PREFIX_DIRS, path, path_len + 1);
	verdict = ignore_list_match(root, long_path, false);
	FUZZ_ASSERT(verdict == IGNORE_NONE || verdict == IGNORE_EXCLUDE ||
				verdict == IGNORE_INCLUDE);
	if (simple)
		FUZZ_ASSERT(verdict == fuzz_expected_verdict(text, len, long_path, false));
	free(long_path);
}

/*
 * LLVMFuzzerTestOneInput
 *		Split the input into patterns, path and base; parse and match.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	const char *nul = memchr(text, '\0', size);
	size_t		text_len = nul != NULL ? (size_t) (nul - text) : size;
	char	   *path = NULL;
	char	   *base = NULL;
	char	   *base_slash;
	bool		path_is_dir = false;
	bool		simple;
	size_t		lines = 1;
	IgnoreList *root;
	IgnoreList *root_null;
	IgnoreList *below_base;
	IgnoreList *below_base_slash;

	if (nul != NULL)
	{
		const char *rest = nul + 1;
		size_t		rest_len = size - text_len - 1;
		const char *nul2 = memchr(rest, '\0', rest_len);
		size_t		path_len = nul2 != NULL ? (size_t) (nul2 - rest) : rest_len;

		path = fuzz_copy_path(rest, path_len, &path_is_dir);
		if (nul2 != NULL)
		{
			const char *base_start = nul2 + 1;
			size_t		base_len = rest_len - path_len - 1;

			/* the base ends at a third NUL, if any */
			base = fuzz_copy_path(base_start, strnlen(base_start, base_len), NULL);
		}
	}
	if (base == NULL || base[0] == '\0')
	{
		free(base);
		base = strdup("sub/dir");
		FUZZ_ASSERT(base != NULL);
	}
	base_slash = fuzz_join(base, "");	/* "base/": read as "base" */

	for (size_t i = 0; i < text_len; i++)
		if (text[i] == '\n')
			lines++;
	simple = fuzz_simple_text(text, text_len);

	root = ignore_list_parse(text, text_len, "");
	root_null = ignore_list_parse(text, text_len, NULL);
	below_base = ignore_list_parse(text, text_len, base);
	below_base_slash = ignore_list_parse(text, text_len, base_slash);
	FUZZ_ASSERT(root != NULL && root_null != NULL && below_base != NULL &&
				below_base_slash != NULL);
	FUZZ_ASSERT(ignore_list_length(root) <= lines);
	FUZZ_ASSERT(ignore_list_length(root_null) == ignore_list_length(root));
	FUZZ_ASSERT(ignore_list_length(below_base) == ignore_list_length(root));
	FUZZ_ASSERT(ignore_list_length(below_base_slash) == ignore_list_length(root));

	/* the base directory itself is not below the base */
	FUZZ_ASSERT(ignore_list_match(below_base, base, true) == IGNORE_NONE);

	for (size_t i = 0; i < sizeof(fuzz_usual_paths) / sizeof(fuzz_usual_paths[0]); i++)
		fuzz_check_path(root, below_base, base, text, text_len, simple, fuzz_usual_paths[i]);
	if (path != NULL)
	{
		char	   *in_base = fuzz_join(base, path);

		fuzz_check_path(root, below_base, base, text, text_len, simple, path);
		fuzz_check_long_path(root, text, text_len, simple, path);
		if (path[0] != '\0')
		{
			FUZZ_ASSERT(ignore_list_match(root_null, path, path_is_dir) ==
						ignore_list_match(root, path, path_is_dir));
			FUZZ_ASSERT(ignore_list_match(below_base_slash, in_base, path_is_dir) ==
						ignore_list_match(root, path, path_is_dir));
		}
		free(in_base);
	}
	else
		fuzz_check_long_path(root, text, text_len, simple, "a.log");

	ignore_list_free(root);
	ignore_list_free(root_null);
	ignore_list_free(below_base);
	ignore_list_free(below_base_slash);
	ignore_list_free(NULL);
	free(path);
	free(base);
	free(base_slash);
	return 0;
}
