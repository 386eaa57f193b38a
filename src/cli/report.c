/*-------------------------------------------------------------------------
 *
 * report.c
 *		How the client reports what went wrong on its side: "pg_ray: error:
 *		..." on stderr, as PostgreSQL's own programs do.
 *
 * Every file of the client reports its errors through these, and they
 * call nothing else of the client.  (The server's errors are printed
 * as psql prints them, by db.c.)
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/report.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char *cli_progname = "pg_ray";

/*
 * cli_error
 *		Print "pg_ray: error: ..." on stderr, as PostgreSQL's own programs
 *		report what went wrong on the client side.
 */
void
cli_error(const char *fmt,...)
{
	va_list		args;

	fprintf(stderr, "%s: error: ", cli_progname);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
}

/*
 * cli_usage_error
 *		Report a bad command line and where to read about the right one.
 */
void
cli_usage_error(const char *verb, const char *fmt,...)
{
	va_list		args;

	fprintf(stderr, "%s: error: ", cli_progname);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	if (verb != NULL)
		fprintf(stderr, "\nTry \"%s %s --help\" for more information.\n", cli_progname, verb);
	else
		fprintf(stderr, "\nTry \"%s --help\" for more information.\n", cli_progname);
}

/*
 * cli_option_error
 *		Report what getopt_long found wrong (it is told not to say it
 *		itself, so that every message has the same form): an option that
 *		needs an argument and has none (':'), a long option given an
 *		argument it does not take (glibc then sets optopt to the option's
 *		value), or an option the verb does not know.
 */
void
cli_option_error(const char *verb, int opt, char **argv)
{
	const char *word = argv[optind - 1];
	bool		long_option = strncmp(word, "--", 2) == 0;

	if (opt == ':' && long_option)
		cli_usage_error(verb, "option \"%s\" needs an argument", word);
	else if (opt == ':')
		cli_usage_error(verb, "option \"-%c\" needs an argument", optopt);
	else if (long_option && optopt != 0)
		cli_usage_error(verb, "option \"%.*s\" takes no argument", (int) strcspn(word, "="), word);
	else if (long_option || optopt <= 0 || optopt > 127)
		cli_usage_error(verb, "unrecognized option \"%s\"", word);
	else
		cli_usage_error(verb, "unrecognized option \"-%c\"", optopt);
}
