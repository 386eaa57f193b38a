/*-------------------------------------------------------------------------
 *
 * format.c
 *		How the client prints: times in the terminal's local time, durations
 *		in words, result sets as aligned tables, JSON as the server made it,
 *		and an entrypoint's words joined as a shell would read them back.
 *
 * Times travel from the server as seconds since the epoch, so that they are
 * shown in the local time of the user's terminal (TZ) whatever the
 * server's TimeZone is.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/format.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/*
 * cli_local_time
 *		"2026-11-23 22:31:25 UTC" for an epoch given as text, in local time;
 *		"" for NULL or empty.  The string is the caller's to free.
 */
char *
cli_local_time(const char *epoch_text)
{
	char		buffer[64];
	time_t		when;
	struct tm	local;

	if (epoch_text == NULL || epoch_text[0] == '\0')
		return strdup("");
	when = (time_t) strtod(epoch_text, NULL);
	if (localtime_r(&when, &local) == NULL ||
		strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%S %Z", &local) == 0)
		return strdup(epoch_text);
	return strdup(buffer);
}

/*
 * cli_duration
 *		"1h 02m 03s", "4m 05s" or "6.2s" for a number of seconds given as
 *		text; "" for NULL or empty.  The string is the caller's to free.
 */
char *
cli_duration(const char *seconds_text)
{
	char		buffer[64];
	double		seconds;
	long		whole;

	if (seconds_text == NULL || seconds_text[0] == '\0')
		return strdup("");
	seconds = strtod(seconds_text, NULL);
	whole = (long) seconds;
	if (whole >= 3600)
		snprintf(buffer, sizeof(buffer), "%ldh %02ldm %02lds", whole / 3600, whole / 60 % 60, whole % 60);
	else if (whole >= 60)
		snprintf(buffer, sizeof(buffer), "%ldm %02lds", whole / 60, whole % 60);
	else
		snprintf(buffer, sizeof(buffer), "%.1fs", seconds);
	return strdup(buffer);
}

/*
 * cli_summary_length
 *		How much of a job's message to show: its first line, and of Ray's
 *		message of a failed run, which goes on with the end of the log
 *		after ", last available logs", only what precedes that; the log is
 *		shown where it belongs.
 */
int
cli_summary_length(const char *message)
{
	const char *tail = strstr(message, ", last available logs");
	size_t		length = strcspn(message, "\n");

	if (tail != NULL && (size_t) (tail - message) < length)
		length = tail - message;
	return (int) length;
}

/*
 * format_width
 *		How many columns a UTF-8 string takes on a terminal, taking each
 *		character as one column (continuation bytes take none).
 */
static int
format_width(const char *text)
{
	int			width = 0;

	for (; *text; text++)
		if (((unsigned char) *text & 0xC0) != 0x80)
			width++;
	return width;
}

/*
 * cli_abbreviate
 *		text, or its first max_bytes - 3 bytes and "..." if it is longer,
 *		cut on a character boundary.  The string is the caller's to free.
 */
char *
cli_abbreviate(const char *text, size_t max_bytes)
{
	size_t		length = strlen(text);
	char	   *result;

	if (length <= max_bytes)
		return strdup(text);
	length = max_bytes - 3;
	while (length > 0 && ((unsigned char) text[length] & 0xC0) == 0x80)
		length--;
	result = malloc(length + 4);
	if (result == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	memcpy(result, text, length);
	strcpy(result + length, "...");
	return result;
}

/*
 * cli_print_rows
 *		Print rows of cells (row after row, ncolumns each) as aligned columns
 *		under their headers, as "ray job list" and kubectl print theirs.
 */
void
cli_print_rows(const char *const *headers, int ncolumns, char *const *cells, int nrows)
{
	int		   *widths = calloc(ncolumns, sizeof(int));

	if (widths == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	for (int c = 0; c < ncolumns; c++)
	{
		widths[c] = format_width(headers[c]);
		for (int r = 0; r < nrows; r++)
		{
			int			w = format_width(cells[r * ncolumns + c]);

			if (w > widths[c])
				widths[c] = w;
		}
	}
	for (int r = -1; r < nrows; r++)
	{
		for (int c = 0; c < ncolumns; c++)
		{
			const char *value = r < 0 ? headers[c] : cells[r * ncolumns + c];
			bool		last = c == ncolumns - 1;

			/* a newline or tab in a cell would break the columns */
			for (const char *p = value; *p; p++)
				putchar((unsigned char) *p < ' ' ? ' ' : *p);
			if (!last)
				printf("%*s", widths[c] - format_width(value) + 2, "");
		}
		putchar('\n');
	}
	free(widths);
}

/*
 * cli_print_json_result
 *		Print the one JSON value a query made, on a line of its own.
 */
void
cli_print_json_result(const PGresult *result)
{
	puts(PQntuples(result) > 0 && !PQgetisnull(result, 0, 0) ? PQgetvalue(result, 0, 0) : "null");
}

/*
 * format_needs_quotes
 *		Whether a shell would read a word as something else unless quoted.
 */
static bool
format_needs_quotes(const char *word)
{
	if (word[0] == '\0')
		return true;
	return word[strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					   "0123456789_@%+=:,./-")] != '\0';
}

/*
 * cli_shell_join
 *		The words of an entrypoint as one command line a POSIX shell reads
 *		back into the same words (Ray runs the entrypoint with a shell).
 *		The string is the caller's to free.
 */
char *
cli_shell_join(int argc, char *const *argv)
{
	size_t		size = 1;
	char	   *line;
	char	   *out;

	for (int i = 0; i < argc; i++)
		size += strlen(argv[i]) * 4 + 3;
	line = out = malloc(size);
	if (line == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	for (int i = 0; i < argc; i++)
	{
		const char *word = argv[i];

		if (i > 0)
			*out++ = ' ';
		if (!format_needs_quotes(word))
		{
			strcpy(out, word);
			out += strlen(word);
			continue;
		}
		*out++ = '\'';
		for (; *word; word++)
		{
			if (*word == '\'')
			{
				memcpy(out, "'\\''", 4);
				out += 4;
			}
			else
				*out++ = *word;
		}
		*out++ = '\'';
	}
	*out = '\0';
	return line;
}
