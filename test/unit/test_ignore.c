/*
 * test_ignore.c
 *		Unit tests of the ignore-file matcher, in TAP.
 *
 * Each case is one pattern list, one path and what git (gitignore(5)) says
 * about it; a wrong answer here is a secret uploaded to the cluster or a
 * source file missing from a job's working directory.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cli/ignore.h"

#define IS_FILE false
#define IS_DIR true

#include "tap.h"

/*
 * parse
 *		Parse patterns under base, bailing out if memory runs out.
 */
static IgnoreList *
parse(const char *patterns, const char *base)
{
	IgnoreList *list = ignore_list_parse(patterns, strlen(patterns), base);

	if (list == NULL)
	{
		printf("Bail out! out of memory parsing \"%s\"\n", patterns);
		exit(1);
	}
	return list;
}

/*
 * verdict
 *		What the patterns, read from a file in base, say about path.
 */
static IgnoreVerdict
verdict(const char *patterns, const char *base, const char *path, bool is_dir)
{
	IgnoreList *list = parse(patterns, base);
	IgnoreVerdict v = ignore_list_match(list, path, is_dir);

	ignore_list_free(list);
	return v;
}

#define EXCLUDED(pat, path, is_dir) (verdict((pat), "", (path), (is_dir)) == IGNORE_EXCLUDE)
#define UNTOUCHED(pat, path, is_dir) (verdict((pat), "", (path), (is_dir)) == IGNORE_NONE)
#define INCLUDED(pat, path, is_dir) (verdict((pat), "", (path), (is_dir)) == IGNORE_INCLUDE)

static void
test_lines(void)
{
	IgnoreList *list;

	list = parse("", "");
	ok(list != NULL && ignore_list_length(list) == 0 &&
	   ignore_list_match(list, "x", IS_FILE) == IGNORE_NONE,
	   "an empty file keeps no pattern and matches nothing");
	ignore_list_free(list);

	list = parse("# build output\n\n   \n#*.o\n", "");
	ok(ignore_list_length(list) == 0, "comments and blank lines keep no pattern");
	ok(ignore_list_match(list, "# build output", IS_FILE) == IGNORE_NONE &&
	   ignore_list_match(list, "x.o", IS_FILE) == IGNORE_NONE,
	   "a commented-out pattern matches nothing, not even the comment's text");
	ignore_list_free(list);

	ok(EXCLUDED("\\#notes", "#notes", IS_FILE), "\"\\#\" matches a name starting with #");
	ok(EXCLUDED(" #x", " #x", IS_FILE), "a # after a space does not start a comment");

	ok(EXCLUDED("foo   ", "foo", IS_FILE), "trailing spaces are trimmed");
	ok(UNTOUCHED("foo\\ ", "foo", IS_FILE) && EXCLUDED("foo\\ ", "foo ", IS_FILE),
	   "an escaped trailing space is kept");
	ok(EXCLUDED("foo\\  ", "foo ", IS_FILE), "spaces after an escaped space are trimmed");
	ok(UNTOUCHED(" foo", "foo", IS_FILE) && EXCLUDED(" foo", " foo", IS_FILE),
	   "leading spaces are part of the pattern");
	ok(EXCLUDED("foo\t", "foo\t", IS_FILE) && UNTOUCHED("foo\t", "foo", IS_FILE),
	   "a trailing tab is not trimmed");

	list = parse("a.log\r\nb.log\r\n/c\r\n", "");
	ok(ignore_list_match(list, "a.log", IS_FILE) == IGNORE_EXCLUDE &&
	   ignore_list_match(list, "b.log", IS_FILE) == IGNORE_EXCLUDE &&
	   ignore_list_match(list, "c", IS_FILE) == IGNORE_EXCLUDE,
	   "CRLF line endings are understood");
	ignore_list_free(list);

	ok(EXCLUDED("x\ny", "y", IS_FILE), "the last line needs no newline");
	ok(EXCLUDED("\xef\xbb\xbf*.tmp\n", "a.tmp", IS_FILE), "a UTF-8 byte-order mark is skipped");
}

static void
test_names_and_anchors(void)
{
	ok(EXCLUDED("*.log", "x.log", IS_FILE), "\"*.log\" matches at the top");
	ok(EXCLUDED("*.log", "a/b/x.log", IS_FILE), "\"*.log\" matches at any depth");
	ok(UNTOUCHED("*.log", "x.log.txt", IS_FILE), "\"*.log\" does not match x.log.txt");
	ok(EXCLUDED("*", ".env", IS_FILE), "\"*\" matches dot files");
	ok(EXCLUDED("foo", "a/foo", IS_DIR) && EXCLUDED("foo", "foo", IS_FILE),
	   "a bare name matches a file or a directory at any depth");
	ok(UNTOUCHED("foo", "foobar", IS_FILE) && UNTOUCHED("foo", "foo.c", IS_FILE),
	   "a bare name matches whole names only");

	ok(EXCLUDED("foo/", "foo", IS_DIR), "\"foo/\" matches a directory foo");
	ok(UNTOUCHED("foo/", "foo", IS_FILE), "\"foo/\" does not match a file foo");
	ok(EXCLUDED("foo/", "a/b/foo", IS_DIR), "\"foo/\" matches a directory foo at any depth");

	ok(EXCLUDED("/foo", "foo", IS_FILE), "\"/foo\" matches foo at the top");
	ok(UNTOUCHED("/foo", "a/foo", IS_FILE), "\"/foo\" does not match a/foo");
	ok(EXCLUDED("/build/", "build", IS_DIR) && UNTOUCHED("/build/", "build", IS_FILE) &&
	   UNTOUCHED("/build/", "src/build", IS_DIR),
	   "\"/build/\" is anchored and directories only");

	ok(EXCLUDED("a/b", "a/b", IS_FILE), "\"a/b\" matches a/b");
	ok(UNTOUCHED("a/b", "x/a/b", IS_FILE), "a middle slash anchors: \"a/b\" does not match x/a/b");
	ok(EXCLUDED("doc/frotz/", "doc/frotz", IS_DIR) && UNTOUCHED("doc/frotz/", "a/doc/frotz", IS_DIR),
	   "\"doc/frotz/\" is anchored despite its trailing slash");
	ok(EXCLUDED("a/*.c", "a/x.c", IS_FILE), "\"a/*.c\" matches a/x.c");
	ok(UNTOUCHED("a/*.c", "a/b/x.c", IS_FILE), "\"a/*.c\" does not match a/b/x.c");
	ok(UNTOUCHED("a/*.c", "b/a/x.c", IS_FILE), "\"a/*.c\" does not match b/a/x.c");
	ok(UNTOUCHED("a/*", "a/b/c", IS_FILE) && EXCLUDED("a/*", "a/b", IS_DIR),
	   "\"*\" never crosses a slash");
	ok(UNTOUCHED("x/a?c", "x/a/c", IS_FILE) && EXCLUDED("x/a?c", "x/abc", IS_FILE),
	   "\"?\" matches one byte but not a slash");
	ok(UNTOUCHED("a?", "a", IS_FILE) && UNTOUCHED("a?", "abc", IS_FILE),
	   "\"?\" matches exactly one byte");
	ok(UNTOUCHED("Foo", "foo", IS_FILE), "matching is case-sensitive");
}

static void
test_double_stars(void)
{
	ok(EXCLUDED("**/foo", "foo", IS_FILE) && EXCLUDED("**/foo", "a/b/foo", IS_FILE),
	   "\"**/foo\" matches foo at the top and at any depth");
	ok(EXCLUDED("**/foo/bar", "foo/bar", IS_FILE) && EXCLUDED("**/foo/bar", "x/y/foo/bar", IS_FILE) &&
	   UNTOUCHED("**/foo/bar", "foo/x/bar", IS_FILE),
	   "\"**/foo/bar\" matches bar directly in any foo");
	ok(EXCLUDED("a/**/b", "a/b", IS_FILE), "\"a/**/b\" matches a/b (zero directories)");
	ok(EXCLUDED("a/**/b", "a/x/b", IS_FILE) && EXCLUDED("a/**/b", "a/x/y/z/b", IS_FILE),
	   "\"a/**/b\" matches through any number of directories");
	ok(UNTOUCHED("a/**/b", "a/xb", IS_FILE) && UNTOUCHED("a/**/b", "x/a/b", IS_FILE),
	   "\"a/**/b\" needs whole directories and is anchored");
	ok(EXCLUDED("a/**/**/b", "a/b", IS_FILE) && EXCLUDED("a/**/**/b", "a/x/y/b", IS_FILE),
	   "repeated \"**/\" still matches zero or more directories");
	ok(EXCLUDED("a/**", "a/x", IS_FILE) && EXCLUDED("a/**", "a/x/y", IS_FILE),
	   "\"a/**\" matches everything inside a");
	ok(UNTOUCHED("a/**", "a", IS_DIR), "\"a/**\" does not match a itself");
	ok(EXCLUDED("**", "x", IS_FILE) && EXCLUDED("**", "a/b/c", IS_DIR), "\"**\" matches everything");
	ok(EXCLUDED("foo/**/", "foo/x", IS_DIR) && UNTOUCHED("foo/**/", "foo/x", IS_FILE),
	   "\"foo/**/\" matches only directories inside foo");
	ok(EXCLUDED("a/**b", "a/xb", IS_FILE) && UNTOUCHED("a/**b", "a/x/b", IS_FILE),
	   "a \"**\" that is not a whole component is a plain \"*\"");
	ok(EXCLUDED("***.c", "x.c", IS_FILE), "several stars in a name act as one");
}

static void
test_negation(void)
{
	IgnoreList *list;

	list = parse("*.log\n!keep.log\n", "");
	ok(ignore_list_match(list, "keep.log", IS_FILE) == IGNORE_INCLUDE, "a later \"!\" re-includes");
	ok(ignore_list_match(list, "other.log", IS_FILE) == IGNORE_EXCLUDE, "others stay excluded");
	ok(ignore_list_match(list, "x.txt", IS_FILE) == IGNORE_NONE, "unmatched paths get no verdict");
	ignore_list_free(list);

	ok(EXCLUDED("!keep.log\n*.log\n", "keep.log", IS_FILE), "the last matching pattern wins, even over \"!\"");
	ok(INCLUDED("a/**\n!a/keep\n", "a/keep", IS_FILE) && EXCLUDED("a/**\n!a/keep\n", "a/other", IS_FILE),
	   "a file can be re-included inside \"a/**\"");
	ok(EXCLUDED("\\!important", "!important", IS_FILE), "\"\\!\" matches a name starting with !");
	ok(INCLUDED("!!x", "!x", IS_FILE), "only the first ! negates");

	list = parse("!\n/\n!/\n", "");
	ok(ignore_list_length(list) == 0 && ignore_list_match(list, "x", IS_FILE) == IGNORE_NONE,
	   "\"!\", \"/\" and \"!/\" alone are no patterns");
	ignore_list_free(list);
}

static void
test_escapes_and_classes(void)
{
	IgnoreList *list;

	ok(EXCLUDED("\\*", "*", IS_FILE) && UNTOUCHED("\\*", "x", IS_FILE), "\"\\*\" matches a literal star only");
	ok(EXCLUDED("a\\?", "a?", IS_FILE) && UNTOUCHED("a\\?", "ab", IS_FILE), "\"\\?\" matches a literal ?");
	ok(EXCLUDED("\\[x]", "[x]", IS_FILE) && UNTOUCHED("\\[x]", "x", IS_FILE), "\"\\[\" matches a literal [");

	ok(EXCLUDED("[abc].txt", "b.txt", IS_FILE) && UNTOUCHED("[abc].txt", "d.txt", IS_FILE),
	   "a class matches one of its members");
	ok(EXCLUDED("file[0-9]", "file7", IS_FILE) && UNTOUCHED("file[0-9]", "filex", IS_FILE),
	   "a class with a range");
	ok(EXCLUDED("[!a].txt", "b.txt", IS_FILE) && UNTOUCHED("[!a].txt", "a.txt", IS_FILE),
	   "\"[!...]\" negates");
	ok(EXCLUDED("[^a].txt", "b.txt", IS_FILE) && UNTOUCHED("[^a].txt", "a.txt", IS_FILE),
	   "\"[^...]\" negates");
	ok(EXCLUDED("[]]x", "]x", IS_FILE) && EXCLUDED("[!]]x", "ax", IS_FILE) && UNTOUCHED("[!]]x", "]x", IS_FILE),
	   "a ] first in a class is a member");
	ok(EXCLUDED("[a-]", "-", IS_FILE) && EXCLUDED("[-a]", "-", IS_FILE) && UNTOUCHED("[a-]", "b", IS_FILE),
	   "a - first or last in a class is a member");
	ok(EXCLUDED("[a-c-e]", "-", IS_FILE) && EXCLUDED("[a-c-e]", "e", IS_FILE) && UNTOUCHED("[a-c-e]", "d", IS_FILE),
	   "a range cannot start another range");
	ok(EXCLUDED("[\\]]", "]", IS_FILE) && EXCLUDED("[a\\-z]", "-", IS_FILE) && UNTOUCHED("[a\\-z]", "m", IS_FILE),
	   "\"\\\" escapes inside a class");
	ok(EXCLUDED("v[[:digit:]]", "v1", IS_FILE) && UNTOUCHED("v[[:digit:]]", "va", IS_FILE) &&
	   EXCLUDED("[[:upper:][:digit:]]x", "Qx", IS_FILE),
	   "POSIX classes inside brackets");
	ok(UNTOUCHED("x[/]y", "x/y", IS_FILE) && UNTOUCHED("d/x[!a]y", "d/x/y", IS_FILE) &&
	   EXCLUDED("d/x[!a]y", "d/xby", IS_FILE),
	   "a class never matches a slash");

	list = parse("[abc\n*.c[\nfoo\\\n[[:nosuch:]]\n[[:alpha:\n", "");
	ok(ignore_list_length(list) == 0 &&
	   ignore_list_match(list, "[abc", IS_FILE) == IGNORE_NONE &&
	   ignore_list_match(list, "foo\\", IS_FILE) == IGNORE_NONE,
	   "patterns git never matches (open [, trailing \\, unknown class) are dropped");
	ignore_list_free(list);
	ok(EXCLUDED("[[:]x", ":x", IS_FILE) && EXCLUDED("[[:]x", "[x", IS_FILE),
	   "a \"[:\" without \":]\" is an ordinary [");
}

static void
test_bases(void)
{
	IgnoreList *list;

	list = parse("*.log\n/top\nbuild/\nx/y\n", "sub");
	ok(ignore_list_match(list, "sub/x.log", IS_FILE) == IGNORE_EXCLUDE,
	   "a list in sub matches sub/x.log");
	ok(ignore_list_match(list, "x.log", IS_FILE) == IGNORE_NONE,
	   "a list in sub does not match x.log above it");
	ok(ignore_list_match(list, "sub/deep/x.log", IS_FILE) == IGNORE_EXCLUDE,
	   "a list in sub matches names at any depth below it");
	ok(ignore_list_match(list, "subway/x.log", IS_FILE) == IGNORE_NONE,
	   "a sibling directory sharing sub's prefix is not below sub");
	ok(ignore_list_match(list, "sub", IS_DIR) == IGNORE_NONE,
	   "the list's own directory is not below it");
	ok(ignore_list_match(list, "sub/top", IS_FILE) == IGNORE_EXCLUDE &&
	   ignore_list_match(list, "top", IS_FILE) == IGNORE_NONE &&
	   ignore_list_match(list, "sub/a/top", IS_FILE) == IGNORE_NONE,
	   "\"/top\" in sub is anchored to sub");
	ok(ignore_list_match(list, "sub/a/build", IS_DIR) == IGNORE_EXCLUDE,
	   "\"build/\" in sub matches directories below sub");
	ok(ignore_list_match(list, "sub/x/y", IS_FILE) == IGNORE_EXCLUDE &&
	   ignore_list_match(list, "x/y", IS_FILE) == IGNORE_NONE,
	   "a slash pattern in sub is relative to sub");
	ignore_list_free(list);

	list = parse("*.bin\n", "a/b/");
	ok(ignore_list_match(list, "a/b/c/d.bin", IS_FILE) == IGNORE_EXCLUDE &&
	   ignore_list_match(list, "a/d.bin", IS_FILE) == IGNORE_NONE,
	   "a nested base, given with a trailing slash, works");
	ignore_list_free(list);

	list = ignore_list_parse("data/\n*.ckpt", strlen("data/\n*.ckpt"), NULL);
	ok(list != NULL && ignore_list_match(list, "data", IS_DIR) == IGNORE_EXCLUDE &&
	   ignore_list_match(list, "m/w.ckpt", IS_FILE) == IGNORE_EXCLUDE,
	   "newline-joined excludes with a NULL base apply from the root");
	ignore_list_free(list);
}

/*
 * test_pathological
 *		Patterns and paths that make a backtracking matcher take exponential
 *		time.  ignore.c never backtracks; one that did would not finish here
 *		(no clock is read: tests do not time things).
 */
static void
test_pathological(void)
{
	char		pattern[1024];
	char		path[4200];
	char	   *longpath;
	size_t		n = 0;
	IgnoreList *list;
	bool		right = true;

	/* 200 times "*a", then "b": naive backtracking takes forever on a's */
	for (int i = 0; i < 200; i++)
	{
		pattern[n++] = '*';
		pattern[n++] = 'a';
	}
	pattern[n++] = 'b';
	pattern[n++] = '\n';
	/* and a deep "**" chain that only fails at its very end */
	for (int i = 0; i < 100; i++)
	{
		memcpy(pattern + n, "**/", 3);
		n += 3;
	}
	memcpy(pattern + n, "z\n", 3);
	list = parse(pattern, "");

	memset(path, 'a', 4000);
	path[4000] = '\0';
	right &= ignore_list_match(list, path, IS_FILE) == IGNORE_NONE;
	for (int i = 0; i < 1999; i++)
	{
		path[2 * i] = 'a';
		path[2 * i + 1] = '/';
	}
	path[3998] = 'y';
	path[3999] = '\0';
	right &= ignore_list_match(list, path, IS_FILE) == IGNORE_NONE;
	path[3998] = 'z';
	right &= ignore_list_match(list, path, IS_FILE) == IGNORE_EXCLUDE;

	/* a path too long for the stack buffers */
	longpath = malloc(20001);
	memset(longpath, 'a', 20000);
	longpath[19999] = 'b';
	longpath[20000] = '\0';
	right &= ignore_list_match(list, longpath, IS_FILE) == IGNORE_EXCLUDE;
	free(longpath);
	ignore_list_free(list);

	ok(right, "pathological patterns give the right answers");
}

int
main(void)
{
	test_lines();
	test_names_and_anchors();
	test_double_stars();
	test_negation();
	test_escapes_and_classes();
	test_bases();
	test_pathological();
	return tap_done();
}
