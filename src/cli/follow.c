/*-------------------------------------------------------------------------
 *
 * follow.c
 *		Following a job until it ends: its driver log as it grows, its
 *		state changes in words and, for batch inference, a progress line.
 *
 * The pace is set by ray.wait_job, not by a sleep: each round waits in the
 * server on the condition variable the background worker signals, for at
 * most a second, and returns at once when the job ends.  Between waits the
 * client reads the job's row and its live log (ray.job_logs, which asks the
 * group's Ray head) and prints what it has not printed yet.  The log goes to
 * stdout, everything said about the job to stderr, so that "pg_ray job
 * submit ... > run.log" keeps the driver's output alone.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/cli/follow.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* What has been shown so far. */
typedef struct Follower
{
	PGconn	   *conn;
	const char *job_id;
	FILE	   *log_out;		/* where the log goes; NULL: nowhere */
	char	   *log;			/* the log as last fetched */
	size_t		log_length;
	char	   *state;			/* the state last reported */
	int			attempt;
	int			progress;		/* last percent shown, -1 none */
	bool		progress_line_open; /* a \r-updated line waits for its \n */
	bool		terminal;		/* stderr is a terminal */
} Follower;

/*
 * follow_state_words
 *		What a job in a state does, as the rest of a sentence "Job 7 ...".
 */
static const char *
follow_state_words(const char *state)
{
	static const char *const words[][2] = {
		{"QUEUED", "is queued"},
		{"SUBMITTING", "is being submitted to Ray"},
		{"PENDING", "is pending in Ray, waiting for resources or its runtime environment"},
		{"RUNNING", "is running"},
		{"PUBLISHING", "is publishing its results"},
		{"SUCCEEDED", "succeeded"},
		{"FAILED", "failed"},
		{"STOPPED", "was stopped"},
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(words[i][0], state) == 0)
			return words[i][1];
	return "is in an unknown state";
}

/*
 * follow_close_progress_line
 *		End an open progress line before anything else is printed.
 */
static void
follow_close_progress_line(Follower *f)
{
	if (f->progress_line_open)
	{
		fputc('\n', stderr);
		f->progress_line_open = false;
	}
}

/*
 * follow_print_new_log
 *		Print the part of the log not printed yet.  The log grows at its end;
 *		when it is cut at its front (pg_ray.max_log_bytes), the end of what
 *		was printed is found in it again; a log that starts afresh (a new
 *		attempt) is printed whole.  An empty or shorter answer, as Ray gives
 *		for a moment when a run ends, is not a new log.
 */
static void
follow_print_new_log(Follower *f, const char *log, size_t length)
{
	const char *from = log;

	if (length == 0)
		return;
	if (f->log != NULL)
	{
		if (length <= f->log_length && memcmp(log, f->log, length) == 0)
			return;
		if (length >= f->log_length && memcmp(log, f->log, f->log_length) == 0)
			from = log + f->log_length;
		else
		{
			size_t		anchor = f->log_length < 512 ? f->log_length : 512;
			const char *needle = f->log + f->log_length - anchor;
			const char *found = NULL;
			const char *at = log;

			while ((at = memmem(at, length - (at - log), needle, anchor)) != NULL)
			{
				found = at;
				at++;
			}
			if (found != NULL)
				from = found + anchor;
		}
	}
	if (from < log + length)
	{
		follow_close_progress_line(f);
		fwrite(from, 1, length - (from - log), f->log_out);
		fflush(f->log_out);
	}
	free(f->log);
	f->log = malloc(length);
	if (f->log == NULL)
	{
		cli_error("out of memory");
		exit(EXIT_FAILED);
	}
	memcpy(f->log, log, length);
	f->log_length = length;
}

/*
 * follow_report
 *		Say what changed in the job's row: its state (and attempt), and how
 *		many rows a batch inference run has scored.  The row is (state,
 *		attempts, max_attempts, rows_processed, rows_total, message).
 */
static void
follow_report(Follower *f, const PGresult *row)
{
	const char *state = PQgetvalue(row, 0, 0);
	int			attempt = atoi(PQgetvalue(row, 0, 1));
	int			max_attempts = atoi(PQgetvalue(row, 0, 2));

	if (f->state == NULL || strcmp(f->state, state) != 0 || f->attempt != attempt)
	{
		follow_close_progress_line(f);
		/* a second attempt is news; the first is what anyone expects */
		if (attempt > 1)
			fprintf(stderr, "Job %s %s (attempt %d of %d).\n", f->job_id,
					follow_state_words(state), attempt, max_attempts);
		else
			fprintf(stderr, "Job %s %s.\n", f->job_id, follow_state_words(state));
		free(f->state);
		f->state = strdup(state);
		f->attempt = attempt;
	}
	if (!PQgetisnull(row, 0, 3) && !PQgetisnull(row, 0, 4))
	{
		long long	done = atoll(PQgetvalue(row, 0, 3));
		long long	total = atoll(PQgetvalue(row, 0, 4));
		int			percent = total > 0 ? (int) (done * 100 / total) : 0;

		if (total > 0 && done > 0 && percent != f->progress &&
			(f->terminal || percent / 10 != f->progress / 10))
		{
			if (f->terminal)
			{
				fprintf(stderr, "\rJob %s: %lld of %lld rows scored (%d%%)", f->job_id,
						done, total, percent);
				f->progress_line_open = true;
			}
			else
				fprintf(stderr, "Job %s: %lld of %lld rows scored (%d%%)\n", f->job_id,
						done, total, percent);
			f->progress = percent;
		}
	}
}

/*
 * follow_round
 *		One look at the job: its row and, if it is shown, its log.  False if the
 *		server answered with an error (printed).
 */
static bool
follow_round(Follower *f, bool *ended)
{
	const char *params[1] = {f->job_id};
	PGresult   *result;

	result = cli_exec(f->conn,
					  "SELECT state, attempts, max_attempts, rows_processed, rows_total, message "
					  "FROM ray.jobs WHERE job_id = $1", 1, params);
	if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1)
	{
		if (PQresultStatus(result) == PGRES_TUPLES_OK)
			cli_error("job %s does not exist", f->job_id);
		else
			cli_print_server_error(result);
		PQclear(result);
		return false;
	}
	*ended = strcmp(PQgetvalue(result, 0, 0), "SUCCEEDED") == 0 ||
		strcmp(PQgetvalue(result, 0, 0), "FAILED") == 0 ||
		strcmp(PQgetvalue(result, 0, 0), "STOPPED") == 0;
	if (f->log_out != NULL)
	{
		PGresult   *log = cli_exec(f->conn, "SELECT ray.job_logs($1)", 1, params);

		if (PQresultStatus(log) != PGRES_TUPLES_OK)
		{
			cli_print_server_error(log);
			PQclear(log);
			PQclear(result);
			return false;
		}
		follow_print_new_log(f, PQgetvalue(log, 0, 0), PQgetlength(log, 0, 0));
		PQclear(log);
	}
	follow_report(f, result);
	if (*ended)
	{
		const char *message = PQgetvalue(result, 0, 5);

		follow_close_progress_line(f);
		if (message[0] != '\0' && strcmp(PQgetvalue(result, 0, 0), "SUCCEEDED") != 0)
			fprintf(stderr, "%.*s\n", cli_summary_length(message), message);
	}
	PQclear(result);
	return true;
}

/*
 * cli_follow_job
 *		Follow a job until it ends or ^C, printing its driver log to log_out
 *		(unless NULL) as it grows.  Returns the exit status: with exit_by_state,
 *		EXIT_OK only if the job succeeded; otherwise EXIT_OK once it ended.
 *		^C leaves the job running and says how to stop it.
 */
int
cli_follow_job(PGconn *conn, const char *job_id, FILE *log_out, bool exit_by_state)
{
	Follower	f = {conn, job_id, log_out, NULL, 0, NULL, -1, -1, false, isatty(fileno(stderr))};
	const char *params[1] = {job_id};
	bool		ended = false;
	int			status = EXIT_FAILED;

	cli_watch_interrupts(conn);
	while (!cli_interrupted())
	{
		PGresult   *result;

		if (!follow_round(&f, &ended))
			break;
		if (ended)
		{
			status = !exit_by_state || strcmp(f.state, "SUCCEEDED") == 0 ? EXIT_OK : EXIT_FAILED;
			break;
		}
		cli_set_notices_quiet(true);
		result = cli_exec(conn, "SELECT ray.wait_job($1, interval '1 second')", 1, params);
		cli_set_notices_quiet(false);
		if (PQresultStatus(result) != PGRES_TUPLES_OK && !cli_interrupted())
		{
			cli_print_server_error(result);
			PQclear(result);
			break;
		}
		PQclear(result);
	}
	if (cli_interrupted())
	{
		follow_close_progress_line(&f);
		fprintf(stderr, "Stopped following job %s, which goes on; \"%s job stop %s\" stops it.\n",
				job_id, cli_progname, job_id);
		status = EXIT_INTERRUPTED;
	}
	free(f.log);
	free(f.state);
	return status;
}
