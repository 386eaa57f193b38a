/*-------------------------------------------------------------------------
 *
 * job_submit.c
 *		"pg_ray job submit": queue a job with ray.submit_job as the
 *		connecting role, then follow it until it ends.
 *
 * submit zips the working directory here, on the client, and sends it with
 * the job (ray.submit_job's working_dir), so the database is the only thing
 * the user needs to reach.  A local "working_dir" in --runtime-env-json is
 * zipped the same way, as "ray job submit" does with it.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/job_submit.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/*
 * Long options of "job submit" beyond the common ones, past getopt's
 * letters (and apart from those of the other job verbs in job.c).
 */
enum
{
	OPT_WORKING_DIR = 2001,
	OPT_RUNTIME_ENV_JSON,
	OPT_METADATA_JSON,
	OPT_NUM_CPUS,
	OPT_NUM_GPUS,
	OPT_MEMORY,
	OPT_RESOURCES,
	OPT_MAX_ATTEMPTS,
	OPT_PRIORITY,
	OPT_NO_WAIT
};

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
	const char *priority;
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
		const char *params[11] = {r->group, r->entrypoint, r->runtime_env, r->metadata, r->num_cpus,
		r->num_gpus, r->memory, r->resources, r->max_attempts, r->zip, r->priority};

		result = cli_exec_binary_param(conn,
									   "SELECT ray.submit_job(resource_group => $1, entrypoint => $2, "
									   "runtime_env => coalesce($3::jsonb, '{}'), metadata => coalesce($4::jsonb, '{}'), "
									   "entrypoint_num_cpus => $5::numeric, entrypoint_num_gpus => $6::numeric, "
									   "entrypoint_memory => $7::bigint, entrypoint_resources => coalesce($8::jsonb, '{}'), "
									   "max_attempts => coalesce($9::integer, 1), working_dir => $10::bytea, "
									   "priority => coalesce($11::integer, 0))",
									   11, params, 9, (int) r->zip_length);
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
			!cli_print_job_json(conn, r->job_id))
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
		   "      --priority=N              -1000 to 1000; higher starts first in its group (default 0)\n"
		   "      --no-wait                 print the job id on stdout and return at once\n\n"
		   "Unless --no-wait, the driver log is printed on stdout as it grows and the job's\n"
		   "states on stderr; the exit status is 0 only if the job succeeded.  ^C stops\n"
		   "following, not the job.\n", cli_progname);
	cli_print_common_help();
}

/*
 * cli_job_submit
 *		"job submit": queue the job with ray.submit_job, then follow it.
 *		Called by cli_job with the verb's arguments.
 */
int
cli_job_submit(int argc, char **argv)
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
		{"priority", required_argument, NULL, OPT_PRIORITY},
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
	const char *priority = NULL;
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
			case OPT_PRIORITY:
				priority = optarg;
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
	request.priority = priority;
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
