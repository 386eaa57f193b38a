/*-------------------------------------------------------------------------
 *
 * db.c
 *		The client's connection to PostgreSQL: connecting the libpq way,
 *		running queries, printing the server's errors and notices as psql
 *		does, and cancelling a running query on ^C.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/db.c
 *
 *-------------------------------------------------------------------------
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

static bool db_notices_quiet = false;
static PGcancel *volatile db_cancel = NULL;
static volatile sig_atomic_t db_interrupted = 0;

/*
 * db_notice_processor
 *		Print a NOTICE as psql does ("NOTICE:  ..." on stderr), unless the
 *		caller asked for quiet: the follower polls ray.wait_job, whose
 *		notices it says in its own words.
 */
static void
db_notice_processor(void *arg, const char *message)
{
	if (!db_notices_quiet)
		fputs(message, stderr);
}

/*
 * cli_set_notices_quiet
 *		Hide (true) or show the server's notices from now on.
 */
void
cli_set_notices_quiet(bool quiet)
{
	db_notices_quiet = quiet;
}

/*
 * db_read_password
 *		Ask for a password on the terminal without echoing it; NULL if there
 *		is no terminal.  The buffer is the caller's to free.
 */
static char *
db_read_password(const char *user)
{
	FILE	   *tty = fopen("/dev/tty", "r+");
	struct termios saved;
	struct termios quiet;
	char	   *line = NULL;
	size_t		size = 0;
	ssize_t		length;

	if (tty == NULL)
		return NULL;
	if (user != NULL && user[0] != '\0')
		fprintf(tty, "Password for user %s: ", user);
	else
		fputs("Password: ", tty);
	fflush(tty);
	tcgetattr(fileno(tty), &saved);
	quiet = saved;
	quiet.c_lflag &= ~ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	length = getline(&line, &size, tty);
	tcsetattr(fileno(tty), TCSAFLUSH, &saved);
	fputc('\n', tty);
	fclose(tty);
	if (length < 0)
	{
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	return line;
}

/*
 * cli_connect
 *		Connect with the given options, everything else coming from libpq's
 *		defaults (PG* variables, .pgpass, service files).  Asks for a
 *		password when the server wants one and a terminal is there, as psql
 *		does.  On failure prints why and exits with EXIT_NO_CONNECTION.
 */
PGconn *
cli_connect(const CommonOptions *options)
{
	char	   *password = NULL;
	PGconn	   *conn;

	if (options->prompt_password == 1)
		password = db_read_password(options->username);

	for (;;)
	{
		const char *encoding = getenv("PGCLIENTENCODING");
		const char *keywords[] = {"host", "port", "user", "password", "dbname",
		"fallback_application_name", "client_encoding", NULL};
		const char *values[] = {options->host, options->port, options->username,
			password, options->dbname, "pg_ray",
		encoding != NULL ? encoding : "auto", NULL};

		conn = PQconnectdbParams(keywords, values, 1);
		if (PQstatus(conn) == CONNECTION_OK)
			break;
		if (PQconnectionNeedsPassword(conn) && password == NULL &&
			options->prompt_password != -1 && isatty(fileno(stdin)))
		{
			char	   *user = strdup(PQuser(conn));

			PQfinish(conn);
			password = db_read_password(user);
			free(user);
			if (password != NULL)
				continue;
			conn = NULL;
		}
		if (conn != NULL)
		{
			/* libpq's message ends with a newline, as psql prints it */
			fprintf(stderr, "%s: error: %s", cli_progname, PQerrorMessage(conn));
			PQfinish(conn);
		}
		else
			cli_error("no password given");
		exit(EXIT_NO_CONNECTION);
	}
	free(password);
	PQsetNoticeProcessor(conn, db_notice_processor, NULL);
	/* message, detail and hint; where in pg_ray's PL/pgSQL it arose is no help */
	PQsetErrorContextVisibility(conn, PQSHOW_CONTEXT_NEVER);

	/*
	 * As PostgreSQL's own client programs do: no schema of the user's can
	 * shadow the functions the client's queries name.
	 */
	PQclear(PQexec(conn, "SELECT pg_catalog.set_config('search_path', '', false)"));
	return conn;
}

/*
 * db_result
 *		A query's result, never NULL: where libpq made none (out of memory,
 *		a lost connection) an error result carrying the connection's error
 *		message stands in for it.
 */
static PGresult *
db_result(PGconn *conn, PGresult *result)
{
	if (result == NULL)
		result = PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
	if (result == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	return result;
}

/*
 * cli_exec
 *		Run one statement with text parameters, results in text.
 */
PGresult *
cli_exec(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	return db_result(conn, PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0));
}

/*
 * cli_exec_binary_param
 *		As cli_exec, with parameter number binary_param (0-based) sent as
 *		binary_length raw bytes: a bytea goes as it is, neither escaped nor
 *		doubled in size.
 */
PGresult *
cli_exec_binary_param(PGconn *conn, const char *sql, int nparams,
					  const char *const *values, int binary_param, int binary_length)
{
	int		   *lengths = calloc(nparams, sizeof(int));
	int		   *formats = calloc(nparams, sizeof(int));
	PGresult   *result;

	if (lengths == NULL || formats == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	lengths[binary_param] = binary_length;
	formats[binary_param] = 1;
	result = db_result(conn, PQexecParams(conn, sql, nparams, NULL, values, lengths, formats, 0));
	free(lengths);
	free(formats);
	return result;
}

/*
 * cli_print_server_error
 *		Print an error of the server as psql prints it: severity and
 *		message, then DETAIL and HINT lines.
 */
void
cli_print_server_error(const PGresult *result)
{
	const char *message = PQresultErrorMessage(result);

	if (message == NULL || message[0] == '\0')
		message = "ERROR:  the server answered nothing\n";
	fputs(message, stderr);
}

/*
 * cli_connection_lost
 *		Whether the connection is gone, rather than a query having failed.
 */
bool
cli_connection_lost(PGconn *conn)
{
	return PQstatus(conn) == CONNECTION_BAD;
}

/*
 * db_on_interrupt
 *		^C: cancel the query in flight (PQcancel is safe in a signal
 *		handler) and remember it, so a follower stops following.  The
 *		handler is reset after the first, so a second ^C ends the program
 *		whatever it is waiting for.
 */
static void
db_on_interrupt(int signo)
{
	char		errbuf[256];

	db_interrupted = 1;
	if (db_cancel != NULL)
		(void) PQcancel(db_cancel, errbuf, sizeof(errbuf));
}

/*
 * cli_watch_interrupts
 *		From now on, ^C cancels what runs on conn instead of killing the
 *		program, which then says what became of the job.
 */
void
cli_watch_interrupts(PGconn *conn)
{
	struct sigaction action;

	db_cancel = PQgetCancel(conn);
	memset(&action, 0, sizeof(action));
	action.sa_handler = db_on_interrupt;
	action.sa_flags = SA_RESTART | SA_RESETHAND;
	sigemptyset(&action.sa_mask);
	sigaction(SIGINT, &action, NULL);
}

/*
 * cli_interrupted
 *		Whether ^C was pressed since cli_watch_interrupts.
 */
bool
cli_interrupted(void)
{
	return db_interrupted != 0;
}
