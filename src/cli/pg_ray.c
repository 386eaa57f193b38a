/*-------------------------------------------------------------------------
 *
 * pg_ray.c
 *		The pg_ray command-line client: "pg_ray job submit|list|status|logs|
 *		stop" and "pg_ray group list|status", the verbs of "ray job", spoken
 *		through the database instead of a Ray dashboard.
 *
 * This file dispatches the verbs, which are in job.c (job_submit.c for
 * "job submit") and group.c.  The options every verb takes are in
 * options.c, and the way errors are reported in report.c.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/pg_ray.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

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
		printf("pg_ray (pg_ray) %s\n", PG_RAY_VERSION);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "job") == 0)
		return cli_job(argc - 1, argv + 1);
	if (strcmp(argv[1], "group") == 0)
		return cli_group(argc - 1, argv + 1);
	cli_usage_error(NULL, "unknown command \"%s\"; it is \"job\" or \"group\"", argv[1]);
	return EXIT_FAILED;
}
