/*-------------------------------------------------------------------------
 *
 * options.c
 *		The options every verb takes: where to connect, how to print, and
 *		--help.
 *
 * The connection options mean what they mean to psql (-d takes a
 * database name, a conninfo string or a URI; PG* variables, .pgpass and
 * service files work through libpq).  The verbs' getopt_long tables
 * include them through CLI_COMMON_LONG (cli.h).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/options.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/*
 * cli_is_help
 *		Whether getopt_long's answer asks for help: --help, or -?, which
 *		getopt reports as an unknown option '?'.
 */
bool
cli_is_help(int opt)
{
	return opt == CLI_OPT_HELP || (opt == '?' && optopt == '?');
}

/*
 * cli_common_option
 *		Apply one of the options every verb takes; false if opt is not one.
 */
bool
cli_common_option(CommonOptions *options, int opt, const char *arg)
{
	switch (opt)
	{
		case 'd':
			options->dbname = arg;
			return true;
		case 'h':
			options->host = arg;
			return true;
		case 'p':
			options->port = arg;
			return true;
		case 'U':
			options->username = arg;
			return true;
		case 'w':
			options->prompt_password = -1;
			return true;
		case 'W':
			options->prompt_password = 1;
			return true;
		case CLI_OPT_FORMAT:
			if (strcmp(arg, "table") == 0)
				options->format = FORMAT_TABLE;
			else if (strcmp(arg, "json") == 0)
				options->format = FORMAT_JSON;
			else
			{
				cli_usage_error(options->verb, "invalid output format \"%s\"; it is \"table\" or \"json\"",
								arg);
				exit(EXIT_FAILED);
			}
			return true;
	}
	return false;
}

/*
 * cli_print_common_help
 *		The part of every verb's --help that describes the common options.
 */
void
cli_print_common_help(void)
{
	printf("\nOutput:\n"
		   "      --format=FORMAT      table (default) or json\n"
		   "\nConnection options (as psql's; PG* variables, .pgpass and service files apply):\n"
		   "  -d, --dbname=DBNAME      database name, conninfo string or URI\n"
		   "  -h, --host=HOSTNAME      database server host or socket directory\n"
		   "  -p, --port=PORT          database server port\n"
		   "  -U, --username=USERNAME  database user name\n"
		   "  -w, --no-password        never prompt for password\n"
		   "  -W, --password           force password prompt\n"
		   "  -?, --help               show this help, then exit\n");
}
