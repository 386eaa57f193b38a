/*-------------------------------------------------------------------------
 *
 * cli.h
 *		Declarations shared by the files of the pg_ray command-line client.
 *
 * The client speaks only SQL: every verb is a call of pg_ray's functions or
 * a query of its views, made as the role the user connects as, so the
 * database's roles, row-level security and privileges decide what the user
 * may see and do, exactly as in psql.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/cli.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_CLI_H
#define PG_RAY_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "libpq-fe.h"

/* Exit statuses, as psql's: 0 done, 1 failed, 2 could not connect. */
#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_NO_CONNECTION 2
/* 128 + SIGINT, as a shell reports a program interrupted by ^C */
#define EXIT_INTERRUPTED 130

typedef enum OutputFormat
{
	FORMAT_TABLE,
	FORMAT_JSON
} OutputFormat;

/* Options every verb takes: where to connect and how to print. */
typedef struct CommonOptions
{
	const char *verb;			/* "job submit": for messages */
	const char *dbname;			/* -d: a database name, conninfo or URI */
	const char *host;
	const char *port;
	const char *username;
	int			prompt_password;	/* -1 never (-w), 0 when asked, 1 always (-W) */
	OutputFormat format;
} CommonOptions;

/*
 * The long options of CommonOptions, and --help, for getopt_long tables of
 * the verbs; cli_common_option() applies one, cli_is_help() recognizes
 * --help and -?.  Their short letters are "d:h:p:U:wW"; the verbs' option
 * strings start with ':' so that getopt_long reports a missing argument
 * apart from an unknown option.
 */
#define CLI_COMMON_SHORT "d:h:p:U:wW"
#define CLI_OPT_FORMAT 1000
#define CLI_OPT_HELP 1001
#define CLI_COMMON_LONG \
	{"help", no_argument, NULL, CLI_OPT_HELP}, \
	{"dbname", required_argument, NULL, 'd'}, \
	{"host", required_argument, NULL, 'h'}, \
	{"port", required_argument, NULL, 'p'}, \
	{"username", required_argument, NULL, 'U'}, \
	{"no-password", no_argument, NULL, 'w'}, \
	{"password", no_argument, NULL, 'W'}, \
	{"format", required_argument, NULL, CLI_OPT_FORMAT}

/* report.c */
extern const char *cli_progname;
extern void cli_error(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void cli_usage_error(const char *verb, const char *fmt,...) __attribute__((format(printf, 2, 3)));
extern void cli_option_error(const char *verb, int opt, char **argv);

/* options.c */
extern bool cli_common_option(CommonOptions *options, int opt, const char *arg);
extern void cli_print_common_help(void);
extern bool cli_is_help(int opt);

/* db.c */
extern PGconn *cli_connect(const CommonOptions *options);
extern PGresult *cli_exec(PGconn *conn, const char *sql, int nparams,
						  const char *const *values);
extern PGresult *cli_exec_binary_param(PGconn *conn, const char *sql, int nparams,
									   const char *const *values, int binary_param,
									   int binary_length);
extern void cli_print_server_error(const PGresult *result);
extern bool cli_connection_lost(PGconn *conn);
extern void cli_set_notices_quiet(bool quiet);
extern bool cli_interrupted(void);
extern void cli_watch_interrupts(PGconn *conn);

/* format.c */
extern char *cli_local_time(const char *epoch_text);
extern char *cli_duration(const char *seconds_text);
extern int	cli_summary_length(const char *message);
extern char *cli_abbreviate(const char *text, size_t max_bytes);
extern void cli_print_rows(const char *const *headers, int ncolumns, char *const *cells,
						   int nrows);
extern void cli_print_json_result(const PGresult *result);
extern char *cli_shell_join(int argc, char *const *argv);

/* workdir.c */
extern char *cli_zip_working_dir(const char *path, const char *excludes,
								 size_t *zip_length);

/* job.c, job_submit.c, group.c */
extern int	cli_job(int argc, char **argv);
extern int	cli_job_submit(int argc, char **argv);
extern int	cli_group(int argc, char **argv);

/* follow.c */
extern int	cli_follow_job(PGconn *conn, const char *job_id, FILE *log_out,
						   bool exit_by_state, bool stop_requested);
extern bool cli_print_job_json(PGconn *conn, const char *id);

#endif							/* PG_RAY_CLI_H */
