/*-------------------------------------------------------------------------
 *
 * job.c
 *		"pg_ray job submit|list|status|logs|stop": the verbs of "ray job",
 *		each one call of pg_ray's SQL API as the connecting role.
 *
 * submit zips the working directory here, on the client, and sends it with
 * the job (ray.submit_job's working_dir), so the database is the only thing
 * the user needs to reach.  What the user may see is what ray.jobs shows
 * them: their own jobs (all jobs for a ray_admin).
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

/* Long options of the verbs beyond the common ones, past getopt's letters. */
enum
{
	OPT_GROUP = 2000,
	OPT_WORKING_DIR,
	OPT_RUNTIME_ENV_JSON,
	OPT_METADATA_JSON,
	OPT_NUM_CPUS,
	OPT_NUM_GPUS,
	OPT_MEMORY,
	OPT_RESOURCES,
	OPT_MAX_ATTEMPTS,
	OPT_NO_WAIT,
	OPT_STATE,
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
 * job_check_json
 *		Whether a command-line value reads as a JSON object, asked of the
 *		server, which says what is wrong with it as it would in SQL.
 */
static bool
job_check_json(PGconn *conn, const char *option, const char *value)
{
	const char *params[1] = {value};
	PGresult   *result = cli_exec(conn, "SELECT jsonb_typeof($1::jsonb) = 'object'", 1, params);
	bool		ok = PQresultStatus(result) == PGRES_TUPLES_OK &&
		strcmp(PQgetvalue(result, 0, 0), "t") == 0;

	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "%s: error: %s is not valid JSON\n", cli_progname, option);
		cli_print_server_error(result);
	}
	else if (!ok)
		cli_error("%s must be a JSON object", option);
	PQclear(result);
	return ok;
}

/*
 * job_runtime_env_working_dir
 *		The local directory or zip file a runtime_env names as working_dir
 *		("" when it names none, or a URI such as s3://..., which is left in
 *		the runtime_env for Ray to fetch), with the runtime_env left without
 *		it: it is uploaded from here, as "ray job submit" does with it.  *excludes gets the
 *		runtime_env's "excludes" patterns, one per line.  Asked of the
 *		server, which parses JSON already.
 */
static char *
job_runtime_env_working_dir(PGconn *conn, const char *runtime_env, char **rest, char **excludes)
{
	const char *params[1] = {runtime_env};
	PGresult   *result = cli_exec(conn,
								  "SELECT CASE WHEN $1::jsonb ->> 'working_dir' LIKE '%://%' THEN ''"
								  " ELSE coalesce($1::jsonb ->> 'working_dir', '') END, "
								  "CASE WHEN $1::jsonb ->> 'working_dir' LIKE '%://%' THEN $1::jsonb::text"
								  " ELSE ($1::jsonb - 'working_dir')::text END, "
								  "CASE jsonb_typeof($1::jsonb -> 'excludes') WHEN 'array' THEN "
								  " (SELECT string_agg(e, E'\\n') FROM jsonb_array_elements_text($1::jsonb -> 'excludes') e) END",
								  1, params);
	char	   *dir;

	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		cli_print_server_error(result);
		exit(EXIT_FAILED);
	}
	dir = strdup(PQgetvalue(result, 0, 0));
	*rest = strdup(PQgetvalue(result, 0, 1));
	*excludes = PQgetisnull(result, 0, 2) ? NULL : strdup(PQgetvalue(result, 0, 2));
	PQclear(result);
	return dir;
}

/*
 * job_print_json_row
 *		Print a job's row of ray.jobs as a JSON object; false (error
 *		printed) if it cannot be read.
 */
static bool
job_print_json_row(PGconn *conn, const char *id)
{
	const char *params[1] = {id};
	PGresult   *result = cli_exec(conn, "SELECT to_jsonb(j) FROM ray.jobs j WHERE j.job_id = $1",
								  1, params);
	bool		ok = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1;

	if (ok)
		cli_print_json_result(result);
	else
		cli_print_server_error(result);
	PQclear(result);
	return ok;
}

/*
 * job_working_dir_limit
 *		The largest working directory the server takes, in bytes.
 */
static long long
job_working_dir_limit(PGconn *conn)
{
	PGresult   *result = cli_exec(conn,
								  "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'pg_ray.max_working_dir_bytes'",
								  0, NULL);
	long long	limit = 0x3fffffff;

	if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
		limit = atoll(PQgetvalue(result, 0, 0));
	PQclear(result);
	return limit;
}

/* What "job submit" sends, and what it allocates on the way (freed by its caller). */
typedef struct SubmitRequest
{
	const char *group;
	const char *working_dir;
	const char *runtime_env;
	const char *metadata;
	const char *num_cpus;
	const char *num_gpus;
	const char *memory;
	const char *resources;
	const char *max_attempts;
	bool		no_wait;
	OutputFormat format;
	char	   *entrypoint;
	char	   *owned_runtime_env;	/* runtime_env without a local working_dir */
	char	   *env_dir;
	char	   *excludes;
	char	   *zip;
	size_t		zip_length;
	char	   *job_id;
} SubmitRequest;

/*
 * job_submit_connected
 *		Upload the working directory, queue the job with ray.submit_job and,
 *		unless --no-wait, follow it; the exit status.
 */
static int
job_submit_connected(PGconn *conn, SubmitRequest *r)
{
	PGresult   *result;

	if (r->runtime_env != NULL)
	{
		if (!job_check_json(conn, "--runtime-env-json", r->runtime_env))
			return EXIT_FAILED;
		r->env_dir = job_runtime_env_working_dir(conn, r->runtime_env, &r->owned_runtime_env,
												 &r->excludes);
		r->runtime_env = r->owned_runtime_env;
		if (r->env_dir[0] != '\0')
		{
			if (r->working_dir != NULL)
			{
				cli_error("the job names two working directories: --working-dir and \"working_dir\" in --runtime-env-json");
				return EXIT_FAILED;
			}
			r->working_dir = r->env_dir;
		}
	}
	if (r->metadata != NULL && !job_check_json(conn, "--metadata-json", r->metadata))
		return EXIT_FAILED;
	if (r->resources != NULL && !job_check_json(conn, "--entrypoint-resources", r->resources))
		return EXIT_FAILED;
	if (r->working_dir != NULL)
	{
		long long	limit = job_working_dir_limit(conn);

		r->zip = cli_zip_working_dir(r->working_dir, r->excludes, &r->zip_length);
		if (r->zip == NULL)
			return EXIT_FAILED;
		/* refused here rather than after sending it all */
		if ((long long) r->zip_length > limit)
		{
			cli_error("working directory is too large: %zu bytes", r->zip_length);
			fprintf(stderr, "DETAIL:  The limit is %lld bytes (pg_ray.max_working_dir_bytes).\n"
					"HINT:  Leave data out of the working directory (.gitignore, .rayignore) and read it from tables.\n",
					limit);
			return EXIT_FAILED;
		}
	}

	{
		const char *params[10] = {r->group, r->entrypoint, r->runtime_env, r->metadata, r->num_cpus,
		r->num_gpus, r->memory, r->resources, r->max_attempts, r->zip};

		result = cli_exec_binary_param(conn,
									   "SELECT ray.submit_job(resource_group => $1, entrypoint => $2, "
									   "runtime_env => coalesce($3::jsonb, '{}'), metadata => coalesce($4::jsonb, '{}'), "
									   "entrypoint_num_cpus => $5::numeric, entrypoint_num_gpus => $6::numeric, "
									   "entrypoint_memory => $7::bigint, entrypoint_resources => coalesce($8::jsonb, '{}'), "
									   "max_attempts => coalesce($9::integer, 1), working_dir => $10::bytea)",
									   10, params, 9, (int) r->zip_length);
	}
	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		cli_print_server_error(result);
		PQclear(result);
		return EXIT_FAILED;
	}
	r->job_id = strdup(PQgetvalue(result, 0, 0));
	PQclear(result);

	/* the id alone on stdout, for id=$(pg_ray job submit --no-wait ...) */
	fprintf(stderr, "Job %s submitted to resource group \"%s\".\n", r->job_id, r->group);
	if (r->no_wait)
	{
		if (r->format == FORMAT_JSON)
			printf("{\"job_id\": %s}\n", r->job_id);
		else
			printf("%s\n", r->job_id);
		return EXIT_OK;
	}
	else
	{
		/* in JSON, the log is for the eyes and the job's row for programs */
		int			status = cli_follow_job(conn, r->job_id, r->format == FORMAT_JSON ? stderr : stdout,
											true, false);

		if (r->format == FORMAT_JSON && status != EXIT_INTERRUPTED &&
			!job_print_json_row(conn, r->job_id))
			status = EXIT_FAILED;
		return status;
	}
}

/*
 * job_submit_help
 *		--help of "job submit".
 */
static void
job_submit_help(void)
{
	printf("Submit a Ray job to a resource group and follow its log until it ends.\n\n"
		   "Usage:\n  %s job submit [OPTION]... -- ENTRYPOINT...\n\n"
		   "Options:\n"
		   "  -g, --resource-group=NAME     resource group to run on (default: $PG_RAY_RESOURCE_GROUP)\n"
		   "      --working-dir=DIR         zip DIR here and run the job in it (.git and the\n"
		   "                                patterns of .gitignore and .rayignore files left out)\n"
		   "      --runtime-env-json=JSON   Ray runtime_env; a local \"working_dir\" in it is zipped\n"
		   "                                as --working-dir is, \"excludes\" patterns apply to it\n"
		   "      --metadata-json=JSON      metadata of the job, a JSON object of strings\n"
		   "      --entrypoint-num-cpus=N   CPUs for the entrypoint\n"
		   "      --entrypoint-num-gpus=N   GPUs for the entrypoint\n"
		   "      --entrypoint-memory=BYTES memory for the entrypoint\n"
		   "      --entrypoint-resources=JSON  custom resources for the entrypoint\n"
		   "      --max-attempts=N          runs to try if Ray's infrastructure fails (default 1)\n"
		   "      --no-wait                 print the job id on stdout and return at once\n\n"
		   "Unless --no-wait, the driver log is printed on stdout as it grows and the job's\n"
		   "states on stderr; the exit status is 0 only if the job succeeded.  ^C stops\n"
		   "following, not the job.\n", cli_progname);
	cli_print_common_help();
}

/*
 * job_submit
 *		"job submit": queue the job with ray.submit_job, then follow it.
 */
static int
job_submit(int argc, char **argv)
{
	static const struct option long_options[] = {
		CLI_COMMON_LONG,
		{"resource-group", required_argument, NULL, 'g'},
		{"working-dir", required_argument, NULL, OPT_WORKING_DIR},
		{"runtime-env-json", required_argument, NULL, OPT_RUNTIME_ENV_JSON},
		{"metadata-json", required_argument, NULL, OPT_METADATA_JSON},
		{"entrypoint-num-cpus", required_argument, NULL, OPT_NUM_CPUS},
		{"entrypoint-num-gpus", required_argument, NULL, OPT_NUM_GPUS},
		{"entrypoint-memory", required_argument, NULL, OPT_MEMORY},
		{"entrypoint-resources", required_argument, NULL, OPT_RESOURCES},
		{"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
		{"no-wait", no_argument, NULL, OPT_NO_WAIT},
		{NULL, 0, NULL, 0}
	};
	CommonOptions options = {.verb = "job submit"};
	const char *group = getenv("PG_RAY_RESOURCE_GROUP");
	const char *working_dir = NULL;
	const char *runtime_env = NULL;
	const char *metadata = NULL;
	const char *num_cpus = NULL;
	const char *num_gpus = NULL;
	const char *memory = NULL;
	const char *resources = NULL;
	const char *max_attempts = NULL;
	bool		no_wait = false;
	SubmitRequest request = {0};
	PGconn	   *conn;
	int			status;
	int			opt;

	while ((opt = getopt_long(argc, argv, "+:" CLI_COMMON_SHORT "g:", long_options, NULL)) != -1)
	{
		if (cli_common_option(&options, opt, optarg))
			continue;
		if (cli_is_help(opt))
		{
			job_submit_help();
			return EXIT_OK;
		}
		switch (opt)
		{
			case 'g':
				group = optarg;
				break;
			case OPT_WORKING_DIR:
				working_dir = optarg;
				break;
			case OPT_RUNTIME_ENV_JSON:
				runtime_env = optarg;
				break;
			case OPT_METADATA_JSON:
				metadata = optarg;
				break;
			case OPT_NUM_CPUS:
				num_cpus = optarg;
				break;
			case OPT_NUM_GPUS:
				num_gpus = optarg;
				break;
			case OPT_MEMORY:
				memory = optarg;
				break;
			case OPT_RESOURCES:
				resources = optarg;
				break;
			case OPT_MAX_ATTEMPTS:
				max_attempts = optarg;
				break;
			case OPT_NO_WAIT:
				no_wait = true;
				break;
			default:
				cli_option_error("job submit", opt, argv);
				return EXIT_FAILED;
		}
	}
	if (optind >= argc)
	{
		cli_usage_error("job submit", "no entrypoint given; put it after \"--\", as in \"%s job submit -- python script.py\"",
						cli_progname);
		return EXIT_FAILED;
	}
	if (group == NULL || group[0] == '\0')
	{
		cli_usage_error("job submit", "no resource group given; use --resource-group or set PG_RAY_RESOURCE_GROUP");
		return EXIT_FAILED;
	}
	request.group = group;
	request.working_dir = working_dir;
	request.runtime_env = runtime_env;
	request.metadata = metadata;
	request.num_cpus = num_cpus;
	request.num_gpus = num_gpus;
	request.memory = memory;
	request.resources = resources;
	request.max_attempts = max_attempts;
	request.no_wait = no_wait;
	request.format = options.format;
	request.entrypoint = cli_shell_join(argc - optind, argv + optind);

	conn = cli_connect(&options);
	status = job_submit_connected(conn, &request);
	PQfinish(conn);
	free(request.entrypoint);
	free(request.owned_runtime_env);
	free(request.env_dir);
	free(request.excludes);
	free(request.zip);
	free(request.job_id);
	return status;
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
			"SELECT job_id, resource_group, owner, state, extract(epoch FROM submitted_at),"
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
							  " j.attempts || ' of ' || j.max_attempts, j.message, j.ray_submission_id,"
							  " CASE WHEN j.rows_total IS NOT NULL THEN j.rows_processed || ' of ' || j.rows_total"
							  "      || ' rows scored (' || coalesce(j.progress_pct, 0) || '%)' END,"
							  " j.rows_written, j.driver_exit_code, j.stopped_by"
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
		"Ray submission", "Progress", "Rows written", "Exit code", "Stopped by"};
		const char *params[1] = {id};
		PGresult   *events;

		printf("Job %s: %s\n", id, PQgetvalue(result, 0, 0));
		for (int c = 1; c < 16; c++)
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
	if (options.format == FORMAT_JSON && status == EXIT_OK && !job_print_json_row(conn, id))
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
		return job_submit(argc - 1, argv + 1);
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
