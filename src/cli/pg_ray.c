/*-------------------------------------------------------------------------
 *
 * pg_ray.c
 *		The pg_ray command-line client: "pg_ray job submit|list|status|logs|
 *		stop" and "pg_ray group list|status", the verbs of "ray job", spoken
 *		through the database instead of a Ray dashboard.
 *
 * This file dispatches the verbs and holds what they share: the connection
 * options, which mean what they mean to psql (-d takes a database name, a
 * conninfo string or a URI; PG* variables, .pgpass and service files work
 * through libpq), and the way errors are reported.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/pg_ray.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/*
 * pg_ray_usage
 *		The top-level help: the verbs there are.
 */
static void
pg_ray_usage(void)
{
	printf("%s is the command-line client of pg_ray: Ray jobs and resource groups,\n"
		   "through PostgreSQL.\n\n"
		   "Usage:\n"
		   "  %s job submit [OPTION]... -- ENTRYPOINT...\n"
		   "  %s job list | status ID | logs ID [--follow] | stop ID [--wait]\n"
		   "  %s group list | status NAME\n\n"
		   "Options:\n"
		   "  -V, --version            output version information, then exit\n"
		   "  -?, --help               show this help, then exit\n\n"
		   "\"%s job --help\" and \"%s job submit --help\" tell more.  Connection\n"
		   "settings come as psql's: -d CONNINFO or URI, PG* variables, .pgpass.\n\n"
		   "Exit status: 0 done (for \"job submit\": the job succeeded), 1 failed,\n"
		   "2 no connection to the server, 130 interrupted while following a job.\n",
		   cli_progname, cli_progname, cli_progname, cli_progname, cli_progname, cli_progname);
}

/*
 * main
 *		Dispatch on the first word: job or group.
 */
int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* getopt_long's complaints are made by cli_option_error */
	opterr = 0;

	if (argc < 2)
	{
		cli_usage_error(NULL, "no command given");
		return EXIT_FAILED;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0 ||
		strcmp(argv[1], "help") == 0)
	{
		pg_ray_usage();
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
	{
		printf("pg_ray (pg_ray) %s\n", CLI_VERSION);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "job") == 0)
		return cli_job(argc - 1, argv + 1);
	if (strcmp(argv[1], "group") == 0)
		return cli_group(argc - 1, argv + 1);
	cli_usage_error(NULL, "unknown command \"%s\"; it is \"job\" or \"group\"", argv[1]);
	return EXIT_FAILED;
}
