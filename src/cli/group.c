/*-------------------------------------------------------------------------
 *
 * group.c
 *		"pg_ray group list|status": resource groups as pg_ray's views show
 *		them, and what Ray's autoscaler says of a group's cluster ("ray
 *		status", through ray.cluster_status).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/group.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/*
 * group_parse_options
 *		The common options of a group verb, then at most max_args words;
 *		exits on a bad command line.  Returns the index of the first word,
 *		or -1 if --help was asked for.
 */
static int
group_parse_options(const char *verb, int argc, char **argv, CommonOptions *options, int max_args)
{
	static const struct option long_options[] = {
		CLI_COMMON_LONG,
		{NULL, 0, NULL, 0}
	};
	int			opt;

	options->verb = verb;
	while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT, long_options, NULL)) != -1)
	{
		if (cli_is_help(opt))
			return -1;
		if (!cli_common_option(options, opt, optarg))
		{
			cli_option_error(verb, opt, argv);
			exit(EXIT_FAILED);
		}
	}
	if (argc - optind > max_args)
	{
		cli_usage_error(verb, "too many arguments, starting with \"%s\"", argv[optind + max_args]);
		exit(EXIT_FAILED);
	}
	return optind;
}

/*
 * group_query_or_exit
 *		Run a query; on an error print it as the server said it and exit.
 */
static PGresult *
group_query_or_exit(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *result = cli_exec(conn, sql, nparams, params);

	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		cli_print_server_error(result);
		PQclear(result);
		PQfinish(conn);
		exit(EXIT_FAILED);
	}
	return result;
}

/*
 * group_print_result
 *		Print a whole result set as a table under the given headers.
 */
static void
group_print_result(const PGresult *result, const char *const *headers)
{
	int			ncolumns = PQnfields(result);
	int			nrows = PQntuples(result);
	char	  **cells = calloc((size_t) nrows * ncolumns + 1, sizeof(char *));

	if (cells == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	for (int r = 0; r < nrows; r++)
		for (int c = 0; c < ncolumns; c++)
			cells[r * ncolumns + c] = PQgetvalue(result, r, c);
	cli_print_rows(headers, ncolumns, cells, nrows);
	free(cells);
}

/*
 * group_list
 *		"group list": every resource group, its state and its workers.
 */
static int
group_list(int argc, char **argv)
{
	static const char *const headers[] = {"NAME", "PROVIDER", "STATE", "WORKERS", "MIN-MAX",
	"RAY", "OWNER"};
	CommonOptions options = {0};
	PGconn	   *conn;
	PGresult   *result;

	if (group_parse_options("group list", argc, argv, &options, 0) < 0)
	{
		printf("List the resource groups: provider, state, live workers and their bounds.\n\n"
			   "Usage:\n  %s group list [OPTION]...\n", cli_progname);
		cli_print_common_help();
		return EXIT_OK;
	}
	conn = cli_connect(&options);
	if (options.format == FORMAT_JSON)
	{
		result = group_query_or_exit(conn, "SELECT coalesce(json_agg(g ORDER BY g.name), '[]') "
									 "FROM ray.resource_groups g", 0, NULL);
		cli_print_json_result(result);
	}
	else
	{
		result = group_query_or_exit(conn,
									 "SELECT name, provider, state || CASE WHEN dropping THEN ' (dropping)' ELSE '' END,"
									 " live_workers::text, min_workers || '-' || max_workers,"
									 " coalesce(ray_version, ''), owner FROM ray.resource_groups ORDER BY name",
									 0, NULL);
		if (PQntuples(result) == 0)
			printf("No resource groups.\n");
		else
			group_print_result(result, headers);
	}
	PQclear(result);
	PQfinish(conn);
	return EXIT_OK;
}

/*
 * group_print_section
 *		Run a query about one group (its name is the one parameter) and
 *		print its rows as a table after a blank line; nothing if none.
 */
static void
group_print_section(PGconn *conn, const char *sql, const char *const *params, const char *const *headers)
{
	PGresult   *result = group_query_or_exit(conn, sql, 1, params);

	if (PQntuples(result) > 0)
	{
		putchar('\n');
		group_print_result(result, headers);
	}
	PQclear(result);
}

/*
 * group_status
 *		"group status NAME": the group, its worker groups, its nodes (local
 *		groups) and, when its head answers, what "ray status" would print.
 *		A group whose cluster cannot be asked is still shown: why not is
 *		said in place of Ray's report.
 */
static int
group_status(int argc, char **argv)
{
	static const char *const worker_headers[] = {"WORKER GROUP", "TYPE", "SPEC", "CPUS", "GPUS",
	"MEMORY MB", "MIN", "MAX", "DESIRED", "LIVE"};
	static const char *const node_headers[] = {"NODE", "KIND", "WORKER GROUP", "STATE", "CPUS",
	"GPUS", "PID"};
	CommonOptions options = {0};
	const char *name;
	PGconn	   *conn;
	PGresult   *result;
	PGresult   *ray_status;
	int			first;

	first = group_parse_options("group status", argc, argv, &options, 1);
	if (first < 0)
	{
		printf("Show a resource group: its state, worker groups, nodes, and Ray's own report\n"
			   "of its cluster (\"ray status\"), for those who may use it.\n\n"
			   "Usage:\n  %s group status [OPTION]... NAME\n", cli_progname);
		cli_print_common_help();
		return EXIT_OK;
	}
	if (first >= argc)
	{
		cli_usage_error("group status", "no resource group name given");
		return EXIT_FAILED;
	}
	name = argv[first];
	conn = cli_connect(&options);
	{
		const char *params[1] = {name};

		result = group_query_or_exit(conn,
									 "SELECT name, provider, state, coalesce(head_spec, ''), coalesce(dashboard_url, ''),"
									 " coalesce(ray_version, ''), owner, coalesce(last_error, ''),"
									 " extract(epoch FROM state_changed_at), to_jsonb(g)"
									 " FROM ray.resource_groups g WHERE name = $1", 1, params);
		if (PQntuples(result) == 0)
		{
			cli_error("resource group \"%s\" does not exist", name);
			fprintf(stderr, "HINT:  \"%s group list\" lists them.\n", cli_progname);
			PQclear(result);
			PQfinish(conn);
			return EXIT_FAILED;
		}
		ray_status = cli_exec(conn, "SELECT ray.cluster_status($1)", 1, params);
	}

	if (options.format == FORMAT_JSON)
	{
		const char *params[4] = {name, PQgetvalue(result, 0, 9),
			PQresultStatus(ray_status) == PGRES_TUPLES_OK ? PQgetvalue(ray_status, 0, 0) : NULL,
		PQresultStatus(ray_status) == PGRES_TUPLES_OK ? NULL : PQresultErrorField(ray_status, PG_DIAG_MESSAGE_PRIMARY)};
		PGresult   *json = group_query_or_exit(conn,
											   "SELECT $2::jsonb || jsonb_build_object("
											   " 'worker_groups', (SELECT coalesce(jsonb_agg(to_jsonb(w) - 'resource_group' ORDER BY w.name), '[]')"
											   "   FROM ray.worker_groups w WHERE w.resource_group = $1),"
											   " 'nodes', (SELECT coalesce(jsonb_agg(to_jsonb(n) - 'resource_group' ORDER BY n.node_id), '[]')"
											   "   FROM ray.nodes n WHERE n.resource_group = $1),"
											   " 'ray_status', $3::text, 'ray_status_error', $4::text)", 4, params);

		cli_print_json_result(json);
		PQclear(json);
	}
	else
	{
		const char *params[1] = {name};
		char	   *changed = cli_local_time(PQgetvalue(result, 0, 8));

		printf("Resource group %s: %s since %s\n", name, PQgetvalue(result, 0, 2), changed);
		free(changed);
		printf("  %-16s%s\n", "Provider", PQgetvalue(result, 0, 1));
		if (PQgetvalue(result, 0, 3)[0] != '\0')
			printf("  %-16s%s\n", "Head spec", PQgetvalue(result, 0, 3));
		if (PQgetvalue(result, 0, 4)[0] != '\0')
			printf("  %-16s%s\n", "Dashboard", PQgetvalue(result, 0, 4));
		if (PQgetvalue(result, 0, 5)[0] != '\0')
			printf("  %-16s%s\n", "Ray version", PQgetvalue(result, 0, 5));
		printf("  %-16s%s\n", "Owner", PQgetvalue(result, 0, 6));
		if (PQgetvalue(result, 0, 7)[0] != '\0')
			printf("  %-16s%s\n", "Last error", PQgetvalue(result, 0, 7));

		group_print_section(conn,
							"SELECT name, resource_type, spec, num_cpus::text, num_gpus::text, memory_mb::text,"
							" min_workers::text, max_workers::text, desired_workers::text, live_workers::text"
							" FROM ray.worker_groups WHERE resource_group = $1 ORDER BY name", params, worker_headers);
		group_print_section(conn,
							"SELECT node_id::text, kind, coalesce(worker_group, ''), state,"
							" coalesce(cpus::text, ''), coalesce(gpus::text, ''), coalesce(pid::text, '')"
							" FROM ray.nodes WHERE resource_group = $1 ORDER BY node_id", params, node_headers);

		putchar('\n');
		if (PQresultStatus(ray_status) == PGRES_TUPLES_OK)
			fputs(PQgetvalue(ray_status, 0, 0), stdout);
		else
			printf("Ray's report: not available: %s\n",
				   PQresultErrorField(ray_status, PG_DIAG_MESSAGE_PRIMARY));
	}
	PQclear(ray_status);
	PQclear(result);
	PQfinish(conn);
	return EXIT_OK;
}

/*
 * cli_group
 *		Dispatch "group VERB".
 */
int
cli_group(int argc, char **argv)
{
	if (argc < 2)
	{
		cli_usage_error("group", "no group command given");
		return EXIT_FAILED;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0)
	{
		printf("Ray resource groups, through PostgreSQL.\n\n"
			   "Usage:\n"
			   "  %s group list [OPTION]...           list the resource groups\n"
			   "  %s group status [OPTION]... NAME    show a resource group and its cluster\n",
			   cli_progname, cli_progname);
		return EXIT_OK;
	}
	optind = 1;
	if (strcmp(argv[1], "list") == 0)
		return group_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return group_status(argc - 1, argv + 1);
	cli_usage_error("group", "unknown group command \"%s\"; it is list or status", argv[1]);
	return EXIT_FAILED;
}
