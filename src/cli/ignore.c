/*-------------------------------------------------------------------------
 *
 * ignore.c
 *		Which files of a working directory are left out of an upload.
 *
 * Ray reads .gitignore and .rayignore files, and the runtime_env's
 * "excludes", as git wildmatch patterns.  We follow gitignore(5) and git's
 * wildmatch.c: "#" comments, trailing spaces trimmed unless escaped, "\"
 * escapes, "!" negation, a trailing "/" for directories only, patterns with
 * a slash anchored to the file's directory and the others matched against
 * the last component at any depth, "*", "?", "[...]" that never cross a
 * "/", and "**" as a whole path component: leading (any directories above),
 * trailing (everything inside) or between slashes (zero or more
 * directories); a "**" elsewhere is a plain "*".
 *
 * Each pattern is compiled once into a list of tokens.  Matching runs over
 * the tokens once, keeping the set of text positions reachable so far, so a
 * pattern with many stars costs its length times the path's length and
 * never backtracks: a hostile ignore file cannot stall an upload.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/ignore.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ignore.h"

/* Paths up to this long are matched with buffers on the stack. */
#define IGNORE_STACK_PATH 4096

typedef enum IgnoreTokenKind
{
	IGNORE_TOKEN_BYTE,			/* this byte exactly */
	IGNORE_TOKEN_ONE,			/* "?": any byte but '/' */
	IGNORE_TOKEN_CLASS,			/* "[...]": a byte of the set, never '/' */
	IGNORE_TOKEN_STAR,			/* "*": any run of bytes without '/' */
	IGNORE_TOKEN_ALL,			/* "**" at the end: any run of bytes */
	IGNORE_TOKEN_DIRS			/* "**" + "/": nothing, or a run ending in '/' */
} IgnoreTokenKind;

typedef struct IgnoreToken
{
	IgnoreTokenKind kind;
	unsigned char byte;			/* for IGNORE_TOKEN_BYTE */
	size_t		class_index;	/* for IGNORE_TOKEN_CLASS */
} IgnoreToken;

/* A set of bytes, one bit each. */
typedef struct IgnoreClass
{
	uint8_t		bits[32];
} IgnoreClass;

typedef struct IgnorePattern
{
	IgnoreToken *tokens;
	size_t		ntokens;
	IgnoreClass *classes;
	size_t		nclasses;
	bool		negated;		/* "!pattern": re-includes */
	bool		dir_only;		/* "pattern/": directories only */
	bool		whole_path;		/* had a slash: matched against the path
								 * below base, else against its last name */
} IgnorePattern;

struct IgnoreList
{
	char	   *base;			/* "" for the root */
	size_t		base_len;
	IgnorePattern *patterns;
	size_t		npatterns;
	size_t		capacity;
};

/* How compiling one pattern went. */
typedef enum IgnoreCompileResult
{
	IGNORE_COMPILED,
	IGNORE_MALFORMED,			/* git never matches it: drop it */
	IGNORE_NOMEM
} IgnoreCompileResult;

/*
 * ignore_class_add
 *		Put byte c in the set.
 */
static void
ignore_class_add(IgnoreClass *cls, unsigned int c)
{
	cls->bits[c >> 3] |= (uint8_t) (1u << (c & 7));
}

/*
 * ignore_class_has
 *		Whether byte c is in the set.
 */
static bool
ignore_class_has(const IgnoreClass *cls, unsigned char c)
{
	return (cls->bits[c >> 3] >> (c & 7)) & 1;
}

/*
 * ignore_posix_class
 *		Add the members of "[:name:]" to the set; false for a name git does
 *		not know, which makes the whole pattern malformed.
 *
 * Only ASCII bytes are members, as in git, whose ctype ignores the locale:
 * a program that called setlocale() must not see different uploads.
 */
static bool
ignore_posix_class(const char *name, size_t len, IgnoreClass *cls)
{
	static const struct
	{
		const char *name;
		int			(*member) (int c);
	}			classes[] = {
		{"alnum", isalnum}, {"alpha", isalpha}, {"blank", isblank},
		{"cntrl", iscntrl}, {"digit", isdigit}, {"graph", isgraph},
		{"lower", islower}, {"print", isprint}, {"punct", ispunct},
		{"space", isspace}, {"upper", isupper}, {"xdigit", isxdigit}
	};

	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
	{
		if (strlen(classes[i].name) != len ||
			memcmp(classes[i].name, name, len) != 0)
			continue;
		for (int c = 1; c < 128; c++)
			if (classes[i].member(c))
				ignore_class_add(cls, (unsigned int) c);
		return true;
	}
	return false;
}

/*
 * ignore_parse_class
 *		Read the bracket expression at *pp (which points at its '[') into
 *		cls and move *pp past its closing ']'.
 *
 * This mirrors the bracket rules of git's wildmatch.c so that odd classes
 * mean what they mean to git: "!" or "^" first negates, a "]" first is a
 * member, "\" escapes, "a-z" is a range unless the "-" is first or last,
 * "[:alpha:]" names a POSIX class, and a "[:" without ":]" is just a "[".
 * An unclosed bracket makes git give up on the pattern, so we call it
 * malformed rather than reading the "[" literally.
 */
static IgnoreCompileResult
ignore_parse_class(const char **pp, IgnoreClass *cls)
{
	const unsigned char *p = (const unsigned char *) *pp + 1;
	bool		negated = false;
	unsigned int prev = 0;		/* last member, if a range may start there */
	unsigned int ch;

	memset(cls, 0, sizeof(*cls));
	if (*p == '!' || *p == '^')
	{
		negated = true;
		p++;
	}
	ch = *p;
	do
	{
		if (ch == '\0')
			return IGNORE_MALFORMED;
		if (ch == '\\')
		{
			ch = *++p;
			if (ch == '\0')
				return IGNORE_MALFORMED;
			ignore_class_add(cls, ch);
		}
		else if (ch == '-' && prev != 0 && p[1] != '\0' && p[1] != ']')
		{
			ch = *++p;
			if (ch == '\\')
			{
				ch = *++p;
				if (ch == '\0')
					return IGNORE_MALFORMED;
			}
			for (unsigned int c = prev; c <= ch; c++)
				ignore_class_add(cls, c);
			ch = 0;				/* a range cannot start a range */
		}
		else if (ch == '[' && p[1] == ':')
		{
			const unsigned char *name = p + 2;
			const unsigned char *end = name;

			while (*end != '\0' && *end != ']')
				end++;
			if (*end == '\0')
				return IGNORE_MALFORMED;
			if (end == name || end[-1] != ':')
				ignore_class_add(cls, '[');
			else
			{
				if (!ignore_posix_class((const char *) name,
										(size_t) (end - 1 - name), cls))
					return IGNORE_MALFORMED;
				p = end;
				ch = 0;
			}
		}
		else
			ignore_class_add(cls, ch);
		prev = ch;
		ch = *++p;
	} while (ch != ']');

	if (negated)
	{
		for (size_t i = 0; i < sizeof(cls->bits); i++)
			cls->bits[i] = (uint8_t) ~cls->bits[i];
	}
	/* Paths hold no NUL, and no class ever matches a '/'. */
	cls->bits[0] &= (uint8_t) ~1u;
	cls->bits['/' >> 3] &= (uint8_t) ~(1u << ('/' & 7));

	*pp = (const char *) p + 1;
	return IGNORE_COMPILED;
}

/*
 * ignore_compile
 *		Turn the glob p (already stripped of "!", the trailing "/" and the
 *		leading "/") into pat's tokens.
 *
 * A "**" is special only as a whole path component, as in git: "**" + "/"
 * becomes IGNORE_TOKEN_DIRS, which with the "/" already before it gives
 * "a/" + "**" + "/b" its zero-or-more-directories meaning; a "**" at the
 * end (or before an escaped slash) matches anything, slashes included.
 * Anywhere else consecutive stars are one "*".
 */
static IgnoreCompileResult
ignore_compile(IgnorePattern *pat, const char *p)
{
	const char *start = p;
	size_t		len = strlen(p);
	size_t		nbrackets = 0;

	for (size_t i = 0; i < len; i++)
		if (p[i] == '[')
			nbrackets++;
	pat->tokens = malloc((len + 1) * sizeof(IgnoreToken));
	pat->classes = malloc((nbrackets + 1) * sizeof(IgnoreClass));
	if (pat->tokens == NULL || pat->classes == NULL)
		return IGNORE_NOMEM;

	while (*p != '\0')
	{
		IgnoreToken *tok = &pat->tokens[pat->ntokens];

		if (*p == '\\')
		{
			/* git's wildmatch never matches a pattern ending in "\". */
			if (p[1] == '\0')
				return IGNORE_MALFORMED;
			tok->kind = IGNORE_TOKEN_BYTE;
			tok->byte = (unsigned char) p[1];
			p += 2;
		}
		else if (*p == '?')
		{
			tok->kind = IGNORE_TOKEN_ONE;
			p++;
		}
		else if (*p == '*')
		{
			const char *stars = p;

			while (*p == '*')
				p++;
			if (p - stars >= 2 &&
				(stars == start || stars[-1] == '/') &&
				(*p == '\0' || *p == '/' || (p[0] == '\\' && p[1] == '/')))
			{
				if (*p == '/')
				{
					tok->kind = IGNORE_TOKEN_DIRS;
					p++;
				}
				else
					tok->kind = IGNORE_TOKEN_ALL;
			}
			else
				tok->kind = IGNORE_TOKEN_STAR;
		}
		else if (*p == '[')
		{
			IgnoreCompileResult result;

			result = ignore_parse_class(&p, &pat->classes[pat->nclasses]);
			if (result != IGNORE_COMPILED)
				return result;
			tok->kind = IGNORE_TOKEN_CLASS;
			tok->class_index = pat->nclasses++;
		}
		else
		{
			tok->kind = IGNORE_TOKEN_BYTE;
			tok->byte = (unsigned char) *p;
			p++;
		}
		pat->ntokens++;
	}
	return IGNORE_COMPILED;
}

/*
 * ignore_trim_trailing_spaces
 *		Cut the spaces at the end of buf, except one escaped by "\".
 *
 * This is git's trim_trailing_spaces(): "foo\ " keeps its space, and a "\"
 * escapes whatever follows it, so "foo\\ " loses its space.  Only spaces
 * count; tabs stay.
 */
static void
ignore_trim_trailing_spaces(char *buf)
{
	char	   *last_space = NULL;

	for (char *p = buf; *p != '\0'; p++)
	{
		if (*p == ' ')
		{
			if (last_space == NULL)
				last_space = p;
			continue;
		}
		if (*p == '\\')
		{
			p++;
			if (*p == '\0')
				return;
		}
		last_space = NULL;
	}
	if (last_space != NULL)
		*last_space = '\0';
}

/*
 * ignore_pattern_free
 *		Release what one pattern owns.
 */
static void
ignore_pattern_free(IgnorePattern *pat)
{
	free(pat->tokens);
	free(pat->classes);
}

/*
 * ignore_add_line
 *		Parse one line of an ignore file and append its pattern to list.
 *
 * Comments, blank lines and patterns git would never match add nothing.
 * Returns false on out-of-memory only.
 */
static bool
ignore_add_line(IgnoreList *list, const char *line, size_t len)
{
	IgnorePattern pat;
	IgnoreCompileResult result;
	char	   *buf;
	char	   *p;
	size_t		plen;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0 || line[0] == '#')
		return true;

	buf = malloc(len + 1);
	if (buf == NULL)
		return false;
	memcpy(buf, line, len);
	buf[len] = '\0';			/* a NUL inside the line ends it, as in git */
	ignore_trim_trailing_spaces(buf);

	memset(&pat, 0, sizeof(pat));
	p = buf;
	if (*p == '!')
	{
		pat.negated = true;
		p++;
	}
	plen = strlen(p);
	if (plen > 0 && p[plen - 1] == '/')
	{
		pat.dir_only = true;
		p[--plen] = '\0';
	}
	if (plen == 0)
	{
		/* "", "!", "/": git matches nothing with these */
		free(buf);
		return true;
	}
	pat.whole_path = (strchr(p, '/') != NULL);
	if (*p == '/')
		p++;

	result = ignore_compile(&pat, p);
	free(buf);
	if (result != IGNORE_COMPILED)
	{
		ignore_pattern_free(&pat);
		return result != IGNORE_NOMEM;
	}

	if (list->npatterns == list->capacity)
	{
		size_t		capacity = list->capacity == 0 ? 8 : list->capacity * 2;
		IgnorePattern *patterns;

		patterns = realloc(list->patterns, capacity * sizeof(IgnorePattern));
		if (patterns == NULL)
		{
			ignore_pattern_free(&pat);
			return false;
		}
		list->patterns = patterns;
		list->capacity = capacity;
	}
	list->patterns[list->npatterns++] = pat;
	return true;
}

/*
 * ignore_list_parse
 *		Read the patterns of one ignore file, or of newline-joined
 *		excludes, that apply below the directory base.
 */
IgnoreList *
ignore_list_parse(const char *text, size_t len, const char *base)
{
	IgnoreList *list;
	size_t		base_len;
	size_t		pos = 0;

	list = calloc(1, sizeof(IgnoreList));
	if (list == NULL)
		return NULL;

	if (base == NULL)
		base = "";
	base_len = strlen(base);
	while (base_len > 0 && base[base_len - 1] == '/')
		base_len--;
	list->base = malloc(base_len + 1);
	if (list->base == NULL)
	{
		ignore_list_free(list);
		return NULL;
	}
	memcpy(list->base, base, base_len);
	list->base[base_len] = '\0';
	list->base_len = base_len;

	/* git skips a UTF-8 byte-order mark, which some editors write. */
	if (text != NULL && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;

	while (text != NULL && pos < len)
	{
		const char *eol = memchr(text + pos, '\n', len - pos);
		size_t		line_len = eol != NULL ? (size_t) (eol - (text + pos)) : len - pos;

		if (!ignore_add_line(list, text + pos, line_len))
		{
			ignore_list_free(list);
			return NULL;
		}
		pos += line_len + 1;
	}
	return list;
}

/*
 * ignore_list_free
 *		Release a list and everything it owns.
 */
void
ignore_list_free(IgnoreList *list)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->npatterns; i++)
		ignore_pattern_free(&list->patterns[i]);
	free(list->patterns);
	free(list->base);
	free(list);
}

/*
 * ignore_list_length
 *		The number of patterns kept, so that a walker can forget a file that
 *		holds only comments.
 */
size_t
ignore_list_length(const IgnoreList *list)
{
	return list == NULL ? 0 : list->npatterns;
}

/*
 * ignore_pattern_matches
 *		Whether pat matches all of text[0..len).
 *
 * at[i] says whether the tokens seen so far can match exactly text[0..i);
 * each token turns it into the next array in one pass.  The stars never
 * backtrack, so the cost is bounded by tokens times bytes whatever the
 * pattern.  at and next hold len + 1 bytes each.
 */
static bool
ignore_pattern_matches(const IgnorePattern *pat, const char *text, size_t len,
					   unsigned char *at, unsigned char *next)
{
	const unsigned char *t = (const unsigned char *) text;

	memset(at, 0, len + 1);
	at[0] = 1;
	for (size_t k = 0; k < pat->ntokens; k++)
	{
		const IgnoreToken *tok = &pat->tokens[k];
		unsigned char *swap;
		bool		any = false;
		bool		run = false;

		switch (tok->kind)
		{
			case IGNORE_TOKEN_BYTE:
			case IGNORE_TOKEN_ONE:
			case IGNORE_TOKEN_CLASS:
				next[0] = 0;
				for (size_t i = 0; i < len; i++)
				{
					bool		fits;

					if (tok->kind == IGNORE_TOKEN_BYTE)
						fits = (t[i] == tok->byte);
					else if (tok->kind == IGNORE_TOKEN_ONE)
						fits = (t[i] != '/');
					else
						fits = ignore_class_has(&pat->classes[tok->class_index], t[i]);
					next[i + 1] = at[i] && fits;
					any |= next[i + 1];
				}
				break;

			case IGNORE_TOKEN_STAR:
				/* reachable from an earlier position with no '/' between */
				for (size_t j = 0; j <= len; j++)
				{
					run |= at[j];
					next[j] = run;
					any |= run;
					if (j < len && t[j] == '/')
						run = false;
				}
				break;

			case IGNORE_TOKEN_ALL:
				for (size_t j = 0; j <= len; j++)
				{
					run |= at[j];
					next[j] = run;
					any |= run;
				}
				break;

			case IGNORE_TOKEN_DIRS:
				/* stay put, or skip to just after any later '/' */
				for (size_t j = 0; j <= len; j++)
				{
					next[j] = at[j] || (j > 0 && t[j - 1] == '/' && run);
					any |= next[j];
					run |= at[j];
				}
				break;
		}
		if (!any)
			return false;
		swap = at;
		at = next;
		next = swap;
	}
	return at[len] != 0;
}

/*
 * ignore_list_match
 *		What list says about path: the verdict of its last pattern that
 *		matches, as git reads an ignore file.
 *
 * A pattern with a slash is matched against the path below the list's
 * base, one without against the path's last name, so "*.log" reaches every
 * depth and "a/x*.c" only a's own files.  If a path longer than
 * IGNORE_STACK_PATH cannot get the memory to be matched, it is excluded:
 * leaving a file out is the safer mistake for an upload.
 */
IgnoreVerdict
ignore_list_match(const IgnoreList *list, const char *path, bool is_dir)
{
	unsigned char stack[2 * (IGNORE_STACK_PATH + 1)];
	unsigned char *buf = stack;
	IgnoreVerdict verdict = IGNORE_NONE;
	const char *rel;
	const char *name;
	size_t		rel_len;

	if (list == NULL || path == NULL || list->npatterns == 0)
		return IGNORE_NONE;

	rel = path;
	if (list->base_len > 0)
	{
		if (strncmp(path, list->base, list->base_len) != 0 ||
			path[list->base_len] != '/')
			return IGNORE_NONE;
		rel = path + list->base_len + 1;
	}
	if (*rel == '\0')
		return IGNORE_NONE;
	rel_len = strlen(rel);
	name = strrchr(rel, '/');
	name = name != NULL ? name + 1 : rel;

	if (rel_len > IGNORE_STACK_PATH)
	{
		buf = malloc(2 * (rel_len + 1));
		if (buf == NULL)
			return IGNORE_EXCLUDE;
	}

	for (size_t i = list->npatterns; i-- > 0;)
	{
		const IgnorePattern *pat = &list->patterns[i];
		const char *text = pat->whole_path ? rel : name;
		size_t		text_len = pat->whole_path ? rel_len : strlen(name);

		if (pat->dir_only && !is_dir)
			continue;
		if (ignore_pattern_matches(pat, text, text_len, buf, buf + text_len + 1))
		{
			verdict = pat->negated ? IGNORE_INCLUDE : IGNORE_EXCLUDE;
			break;
		}
	}

	if (buf != stack)
		free(buf);
	return verdict;
}
