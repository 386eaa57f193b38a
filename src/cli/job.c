/*-------------------------------------------------------------------------
 *
 * job.c
 *		"pg_ray job submit|list|status|logs|stop": the verbs of "ray job",
 *		each one call of pg_ray's SQL API as the connecting role.
 *
 * This file dispatches the job verbs and holds all but submit, which is in
 * job_submit.c.  What the user may see is what ray.jobs shows them: their
 * own jobs (all jobs for a ray_admin).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/job.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

/*
 * Long options of the verbs beyond the common ones, past getopt's letters
 * (and apart from those of "job submit" in job_submit.c).
 */
enum
{
	OPT_STATE = 2010,
	OPT_LIMIT,
	OPT_WAIT
};

/* The states of ray.job, as its CHECK constraint has them. */
#define JOB_STATES "QUEUED, SUBMITTING, PENDING, RUNNING, PUBLISHING, SUCCEEDED, FAILED, STOPPED"

/*
 * job_is_state
 *		Whether a word names a job state, in any case.
 */
static bool
job_is_state(const char *word)
{
	static const char *const states[] = {"QUEUED", "SUBMITTING", "PENDING", "RUNNING",
	"PUBLISHING", "SUCCEEDED", "FAILED", "STOPPED"};

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcasecmp(states[i], word) == 0)
			return true;
	return false;
}

/*
 * job_parse_id
 *		A job id argument, checked here so that a typo gets a clear message
 *		rather than a cast error from the server.
 */
static const char *
job_parse_id(const char *verb, int argc, char **argv)
{
	const char *id;

	if (optind >= argc)
	{
		cli_usage_error(verb, "no job id given");
		exit(EXIT_FAILED);
	}
	if (optind + 1 < argc)
	{
		cli_usage_error(verb, "too many arguments, starting with \"%s\"", argv[optind + 1]);
		exit(EXIT_FAILED);
	}
	id = argv[optind];
	if (id[0] == '\0' || strspn(id, "0123456789") != strlen(id) || strlen(id) > 18 ||
		strspn(id, "0") == strlen(id))
	{
		cli_usage_error(verb, "invalid job id \"%s\"; a job id is a positive whole number", id);
		exit(EXIT_FAILED);
	}
	return id;
}

/*
 * A verb that takes a job id, the common options and at most one flag of its
 * own: status, logs (--follow) and stop (--wait).
 */
typedef struct JobIdVerb
{
	const char *verb;			/* "job logs" */
	const char *summary;		/* what --help says it does */
	const char *flag;			/* its flag's long name, or NULL */
	int			flag_code;		/* the flag's short letter or OPT_ code */
	const char *flag_help;		/* the flag's line in --help */
} JobIdVerb;

/*
 * job_parse_id_verb
 *		Parse the command line of such a verb into options and *flag, and
 *		return its job id.  --help prints the verb's help and exits 0; a
 *		bad command line is reported and exits 1, as job_parse_id does.
 */
static const char *
job_parse_id_verb(const JobIdVerb *v, int argc, char **argv, CommonOptions *options, bool *flag)
{
	struct option long_options[] = {
		CLI_COMMON_LONG,
		{v->flag, no_argument, NULL, v->flag_code},
		{NULL, 0, NULL, 0}
	};
	char		short_options[32] = ":" CLI_COMMON_SHORT;
	int			opt;

	/* a flag with a short letter takes it too; the rest is zeros */
	if (v->flag && v->flag_code < 128)
		short_options[strlen(short_options)] = (char) v->flag_code;
	*flag = false;
	while ((opt = getopt_long(argc, argv, short_options, long_options, NULL)) != -1)
	{
		if (cli_common_option(options, opt, optarg))
			continue;
		if (cli_is_help(opt))
		{
			printf("%s\n\nUsage:\n  %s %s [OPTION]... ID\n", v->summary, cli_progname, v->verb);
			if (v->flag)
				printf("\nOptions:\n%s\n", v->flag_help);
			cli_print_common_help();
			exit(EXIT_OK);
		}
		if (v->flag && opt == v->flag_code)
		{
			*flag = true;
			continue;
		}
		cli_option_error(v->verb, opt, argv);
		exit(EXIT_FAILED);
	}
	return job_parse_id(v->verb, argc, argv);
}

/*
 * job_list
 *		"job list": the jobs ray.jobs shows the caller, the latest last.
 */
static int
job_list(int argc, char **argv)
{
	static const struct option long_options[] = {
		CLI_COMMON_LONG,
		{"resource-group", required_argument, NULL, 'g'},
		{"state", required_argument, NULL, OPT_STATE},
		{"limit", required_argument, NULL, OPT_LIMIT},
		{NULL, 0, NULL, 0}
	};
	static const char *const headers[] = {"JOB ID", "GROUP", "OWNER", "STATE", "SUBMITTED",
	"RUN TIME", "ENTRYPOINT"};
	CommonOptions options = {.verb = "job list"};
	const char *group = NULL;
	const char *state = NULL;
	const char *limit = "50";
	PGconn	   *conn;
	PGresult   *result;
	int			opt;

	while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT "g:", long_options, NULL)) != -1)
	{
		if (cli_common_option(&options, opt, optarg))
			continue;
		if (cli_is_help(opt))
		{
			printf("List the jobs you may see (your own; all of them for a ray_admin), the latest last.\n\n"
				   "Usage:\n  %s job list [OPTION]...\n\n"
				   "Options:\n"
				   "  -g, --resource-group=NAME  only the jobs of this resource group\n"
				   "      --state=STATE          only jobs in this state (QUEUED, RUNNING, FAILED, ...)\n"
				   "      --limit=N              the latest N jobs (default 50; 0 for all)\n",
				   cli_progname);
			cli_print_common_help();
			return EXIT_OK;
		}
		switch (opt)
		{
			case 'g':
				group = optarg;
				break;
			case OPT_STATE:
				state = optarg;
				if (!job_is_state(state))
				{
					cli_usage_error("job list", "invalid job state \"%s\"; it is one of %s", state, JOB_STATES);
					return EXIT_FAILED;
				}
				break;
			case OPT_LIMIT:
				if (optarg[0] == '\0' || strspn(optarg, "0123456789") != strlen(optarg) || strlen(optarg) > 9)
				{
					cli_usage_error("job list", "invalid limit \"%s\"; it is a whole number, 0 for all", optarg);
					return EXIT_FAILED;
				}
				limit = optarg;
				break;
			default:
				cli_option_error("job list", opt, argv);
				return EXIT_FAILED;
		}
	}
	if (optind < argc)
	{
		cli_usage_error("job list", "too many arguments, starting with \"%s\"", argv[optind]);
		return EXIT_FAILED;
	}

	conn = cli_connect(&options);
	{
		const char *params[3] = {group, state, limit};
		const char *select_json =
			"SELECT coalesce(json_agg(j ORDER BY j.job_id), '[]') FROM ("
			" SELECT * FROM ray.jobs WHERE ($1::text IS NULL OR resource_group = $1)"
			" AND ($2::text IS NULL OR state = upper($2))"
			" ORDER BY job_id DESC LIMIT nullif($3::bigint, 0)) j";
		const char *select_rows =
			"SELECT job_id, resource_group, owner,"
			" state || coalesce(' #' || queue_position, ''), extract(epoch FROM submitted_at),"
			" extract(epoch FROM coalesce(finished_at, now()) - started_at),"
			" CASE WHEN kind = 'batch_inference' THEN 'batch inference into ' || target_table"
			"      ELSE entrypoint END"
			" FROM (SELECT * FROM ray.jobs WHERE ($1::text IS NULL OR resource_group = $1)"
			" AND ($2::text IS NULL OR state = upper($2))"
			" ORDER BY job_id DESC LIMIT nullif($3::bigint, 0)) j ORDER BY job_id";

		result = cli_exec(conn, options.format == FORMAT_JSON ? select_json : select_rows, 3, params);
	}
	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		cli_print_server_error(result);
		PQclear(result);
		PQfinish(conn);
		return EXIT_FAILED;
	}
	if (options.format == FORMAT_JSON)
		cli_print_json_result(result);
	else if (PQntuples(result) == 0)
		printf("No jobs.\n");
	else
	{
		int			nrows = PQntuples(result);
		char	  **cells = calloc((size_t) nrows * 7, sizeof(char *));

		for (int r = 0; r < nrows; r++)
		{
			const char *entrypoint = PQgetvalue(result, r, 6);

			cells[r * 7 + 0] = strdup(PQgetvalue(result, r, 0));
			cells[r * 7 + 1] = strdup(PQgetvalue(result, r, 1));
			cells[r * 7 + 2] = strdup(PQgetvalue(result, r, 2));
			cells[r * 7 + 3] = strdup(PQgetvalue(result, r, 3));
			cells[r * 7 + 4] = cli_local_time(PQgetvalue(result, r, 4));
			cells[r * 7 + 5] = cli_duration(PQgetvalue(result, r, 5));
			cells[r * 7 + 6] = cli_abbreviate(entrypoint, 60);
		}
		cli_print_rows(headers, 7, cells, nrows);
		for (int i = 0; i < nrows * 7; i++)
			free(cells[i]);
		free(cells);
	}
	PQclear(result);
	PQfinish(conn);
	return EXIT_OK;
}

/*
 * job_status
 *		"job status ID": the job's row and its history of states.
 */
static int
job_status(int argc, char **argv)
{
	static const JobIdVerb verb = {"job status",
	"Show a job: its state, times, attempts, progress, message and history."};
	CommonOptions options = {.verb = "job status"};
	bool		unused;
	const char *id = job_parse_id_verb(&verb, argc, argv, &options, &unused);
	PGconn	   *conn;
	PGresult   *result;

	conn = cli_connect(&options);
	{
		const char *params[1] = {id};

		if (options.format == FORMAT_JSON)
			result = cli_exec(conn,
							  "SELECT to_jsonb(j) || jsonb_build_object('events', "
							  " (SELECT coalesce(jsonb_agg(to_jsonb(e) - 'job_id' - 'resource_group' - 'owner'"
							  "  ORDER BY e.event_id), '[]') FROM ray.job_events e WHERE e.job_id = j.job_id))"
							  " FROM ray.jobs j WHERE j.job_id = $1", 1, params);
		else
			result = cli_exec(conn,
							  "SELECT j.state, j.resource_group, j.owner, j.kind,"
							  " CASE WHEN j.kind = 'batch_inference' THEN 'batch inference into ' || j.target_table"
							  "      ELSE j.entrypoint END,"
							  " extract(epoch FROM j.submitted_at), extract(epoch FROM j.started_at),"
							  " extract(epoch FROM j.finished_at),"
							  " extract(epoch FROM coalesce(j.finished_at, now()) - j.started_at),"
							  " (j.attempts - j.ray_requeues) || ' of ' || j.max_attempts"
							  "      || CASE WHEN j.ray_requeues > 0 THEN ' (and ' || j.ray_requeues"
							  "      || ' run(s) Ray could not start, requeued)' ELSE '' END,"
							  " j.message, j.ray_submission_id,"
							  " CASE WHEN j.rows_total IS NOT NULL THEN j.rows_processed || ' of ' || j.rows_total"
							  "      || ' rows scored (' || coalesce(j.progress_pct, 0) || '%)' END,"
							  " j.rows_written, j.driver_exit_code, j.stopped_by, j.priority,"
							  " j.queue_position || ' in the queue of resource group ' || j.resource_group"
							  " FROM ray.jobs j WHERE j.job_id = $1", 1, params);
	}
	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		cli_print_server_error(result);
		PQclear(result);
		PQfinish(conn);
		return EXIT_FAILED;
	}
	if (PQntuples(result) == 0)
	{
		cli_error("job %s does not exist", id);
		fprintf(stderr, "HINT:  \"%s job list\" lists the jobs you may see.\n", cli_progname);
		PQclear(result);
		PQfinish(conn);
		return EXIT_FAILED;
	}
	if (options.format == FORMAT_JSON)
		cli_print_json_result(result);
	else
	{
		static const char *const labels[] = {NULL, "Resource group", "Owner", "Kind", "Entrypoint",
			"Submitted", "Started", "Finished", "Run time", "Attempts", "Message",
		"Ray submission", "Progress", "Rows written", "Exit code", "Stopped by", "Priority",
		"Queue position"};
		const char *params[1] = {id};
		PGresult   *events;

		printf("Job %s: %s\n", id, PQgetvalue(result, 0, 0));
		for (int c = 1; c < 18; c++)
		{
			char	   *value;

			if (PQgetisnull(result, 0, c))
				continue;
			if (c >= 5 && c <= 7)
				value = cli_local_time(PQgetvalue(result, 0, c));
			else if (c == 8)
				value = cli_duration(PQgetvalue(result, 0, c));
			else
				value = strdup(PQgetvalue(result, 0, c));
			if (value[0] != '\0')
				printf("  %-16s%.*s\n", labels[c], cli_summary_length(value), value);
			free(value);
		}
		events = cli_exec(conn,
						  "SELECT extract(epoch FROM at), to_state, coalesce(message, '')"
						  " FROM ray.job_events WHERE job_id = $1 ORDER BY event_id", 1, params);
		if (PQresultStatus(events) == PGRES_TUPLES_OK && PQntuples(events) > 0)
		{
			printf("History:\n");
			for (int r = 0; r < PQntuples(events); r++)
			{
				char	   *when = cli_local_time(PQgetvalue(events, r, 0));
				const char *message = PQgetvalue(events, r, 2);

				printf("  %s  %-11s %.*s\n", when, PQgetvalue(events, r, 1),
					   cli_summary_length(message), message);
				free(when);
			}
		}
		PQclear(events);
	}
	PQclear(result);
	PQfinish(conn);
	return EXIT_OK;
}

/*
 * job_logs
 *		"job logs ID [--follow]": the driver log, and with --follow the rest
 *		of it as it comes, until the job ends.
 */
static int
job_logs(int argc, char **argv)
{
	static const JobIdVerb verb = {"job logs",
		"Print a job's driver log: live from Ray while it runs, saved once it ended.",
		"follow", 'f', "  -f, --follow             print the log as it grows until the job ends"};
	CommonOptions options = {.verb = "job logs"};
	bool		follow;
	const char *id = job_parse_id_verb(&verb, argc, argv, &options, &follow);
	PGconn	   *conn;
	PGresult   *result;

	if (follow && options.format == FORMAT_JSON)
	{
		cli_usage_error("job logs", "--follow prints the log as text; --format json is for the whole log at once");
		return EXIT_FAILED;
	}
	conn = cli_connect(&options);
	if (follow)
	{
		int			status = cli_follow_job(conn, id, stdout, false, false);

		PQfinish(conn);
		return status;
	}
	{
		const char *params[1] = {id};

		result = cli_exec(conn, options.format == FORMAT_JSON ?
						  "SELECT pg_catalog.json_build_object('job_id', $1::bigint, 'log', ray.job_logs($1))" :
						  "SELECT ray.job_logs($1)", 1, params);
	}
	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		cli_print_server_error(result);
		PQclear(result);
		PQfinish(conn);
		return EXIT_FAILED;
	}
	if (options.format == FORMAT_JSON)
		cli_print_json_result(result);
	else
		fwrite(PQgetvalue(result, 0, 0), 1, PQgetlength(result, 0, 0), stdout);
	PQclear(result);
	PQfinish(conn);
	return EXIT_OK;
}

/*
 * job_stop
 *		"job stop ID [--wait]": ask for the stop (ray.stop_job) and, with
 *		--wait, follow the job until it has ended.
 */
static int
job_stop(int argc, char **argv)
{
	static const JobIdVerb verb = {"job stop",
		"Stop a job: a queued job ends at once, a running one is stopped through Ray.",
		"wait", OPT_WAIT, "      --wait               wait until the job has ended"};
	CommonOptions options = {.verb = "job stop"};
	bool		wait;
	const char *id = job_parse_id_verb(&verb, argc, argv, &options, &wait);
	PGconn	   *conn;
	PGresult   *result;
	int			status = EXIT_OK;

	conn = cli_connect(&options);
	{
		const char *params[1] = {id};

		result = cli_exec(conn, "SELECT ray.stop_job($1)", 1, params);
	}
	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		cli_print_server_error(result);
		PQclear(result);
		PQfinish(conn);
		return EXIT_FAILED;
	}
	if (strcmp(PQgetvalue(result, 0, 0), "t") == 0)
	{
		fprintf(stderr, "Stop of job %s requested.\n", id);
		if (wait)
			status = cli_follow_job(conn, id, NULL, false, true);
	}
	if (options.format == FORMAT_JSON && status == EXIT_OK && !cli_print_job_json(conn, id))
		status = EXIT_FAILED;
	PQclear(result);
	PQfinish(conn);
	return status;
}

/*
 * job_help
 *		--help of "job".
 */
static void
job_help(void)
{
	printf("Ray jobs, through PostgreSQL.\n\n"
		   "Usage:\n"
		   "  %s job submit [OPTION]... -- ENTRYPOINT...   submit a job and follow it\n"
		   "  %s job list [OPTION]...                      list your jobs\n"
		   "  %s job status [OPTION]... ID                 show a job\n"
		   "  %s job logs [OPTION]... ID [--follow]        print a job's driver log\n"
		   "  %s job stop [OPTION]... ID [--wait]          stop a job\n\n"
		   "\"%s job VERB --help\" tells more of each.\n",
		   cli_progname, cli_progname, cli_progname, cli_progname, cli_progname, cli_progname);
}

/*
 * cli_job
 *		Dispatch "job VERB".
 */
int
cli_job(int argc, char **argv)
{
	if (argc < 2)
	{
		cli_usage_error("job", "no job command given");
		return EXIT_FAILED;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0)
	{
		job_help();
		return EXIT_OK;
	}
	/* getopt starts over for the verb's own arguments */
	optind = 1;
	if (strcmp(argv[1], "submit") == 0)
		return cli_job_submit(argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return job_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return job_status(argc - 1, argv + 1);
	if (strcmp(argv[1], "logs") == 0)
		return job_logs(argc - 1, argv + 1);
	if (strcmp(argv[1], "stop") == 0)
		return job_stop(argc - 1, argv + 1);
	cli_usage_error("job", "unknown job command \"%s\"; it is submit, list, status, logs or stop", argv[1]);
	return EXIT_FAILED;
}
