/*-------------------------------------------------------------------------
 *
 * ignore.h
 *		Which files of a working directory are left out of an upload.
 *
 * Ray's job submission skips the files named by the .gitignore and
 * .rayignore files it finds in every directory of a working directory, and
 * by the "excludes" patterns of the runtime_env.  This module reads such
 * pattern lists and answers, for one path at a time, what a list says about
 * it, with the pattern rules of gitignore(5).  A list remembers the directory
 * its file lives in and speaks only about paths below it; the walker keeps
 * one list per ignore file it has passed and combines their verdicts.
 *
 * Plain C with libc only, no PostgreSQL headers: it is used by the
 * command-line client and unit-tested alone.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/ignore.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CLI_IGNORE_H
#define CLI_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

/* The ordered patterns of one source (one file, or the excludes), with the
 * directory they are relative to. */
typedef struct IgnoreList IgnoreList;

/* What one list says about one path. */
typedef enum IgnoreVerdict
{
	IGNORE_NONE,				/* no pattern of the list matched */
	IGNORE_EXCLUDE,				/* the last matching pattern leaves it out */
	IGNORE_INCLUDE				/* the last matching pattern was a "!..." */
} IgnoreVerdict;

/*
 * Parse the text of an ignore file, or newline-joined patterns.  base is the
 * directory the file lives in, relative to the root of the walk ("" or NULL
 * for the root), without a trailing slash.  Lines end in "\n" or "\r\n"; a
 * UTF-8 byte-order mark at the start is skipped.  Patterns that git would
 * never match (an unclosed "[", a trailing lone "\", an unknown "[:class:]")
 * are dropped.  Returns NULL on out-of-memory only.
 */
extern IgnoreList *ignore_list_parse(const char *text, size_t len, const char *base);

/* Release a list; NULL is allowed. */
extern void ignore_list_free(IgnoreList *list);

/* How many patterns the list kept (0 for a file of comments only). */
extern size_t ignore_list_length(const IgnoreList *list);

/*
 * What the list says about path: relative to the root of the walk,
 * '/'-separated, no leading or trailing slash; is_dir says whether it is a
 * directory.  Paths not strictly below the list's base never match.  A
 * directory that is excluded is meant not to be descended into; what lies
 * below it is not matched against the directory's patterns.
 */
extern IgnoreVerdict ignore_list_match(const IgnoreList *list, const char *path, bool is_dir);

#endif							/* CLI_IGNORE_H */
