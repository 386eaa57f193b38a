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
 * group's Ray head) and prints what it has not printed yet; a new attempt's
 * log is printed whole.  The log goes to
 * stdout, everything said about the job to stderr, so that "pg_ray job
 * submit ... > run.log" keeps the driver's output alone.  In JSON, "job
 * submit" and "job stop" print the job's row once they are done with it
 * (cli_print_job_json).
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
	char	   *log;			/* the log of this attempt as last printed */
	size_t		log_length;
	int			log_attempt;	/* the attempt whose log that is */
	bool		log_failing;	/* the last try to read the log failed */
	char	   *state;			/* the state last reported */
	int			attempt;
	int			progress;		/* last percent shown, -1 none */
	bool		progress_line_open; /* a \r-updated line waits for its \n */
	bool		terminal;		/* stderr is a terminal */
} Follower;

/* How a round ended. */
typedef enum FollowOutcome
{
	FOLLOW_GOES_ON,
	FOLLOW_ENDED,				/* the job has ended */
	FOLLOW_FAILED,				/* an error, printed */
	FOLLOW_DISCONNECTED			/* the connection is gone, said */
} FollowOutcome;

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
 * follow_is_terminal
 *		Whether a job in this state will never change again.
 */
static bool
follow_is_terminal(const char *state)
{
	return strcmp(state, "SUCCEEDED") == 0 || strcmp(state, "FAILED") == 0 ||
		strcmp(state, "STOPPED") == 0;
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
 * follow_resume_point
 *		Where in a newly fetched log (of the same attempt) the part not yet
 *		printed starts.  The log grows at its end and, past
 *		pg_ray.max_log_bytes, is cut at its front: the new log then starts
 *		somewhere inside the printed one, at the smallest shift at which all
 *		of the rest of the printed log matches.  NULL if no shift does (more
 *		was cut than was printed): the caller says so and prints it all.
 */
static const char *
follow_resume_point(const Follower *f, const char *log, size_t length)
{
	size_t		probe = length < 64 ? length : 64;

	if (length >= f->log_length && memcmp(log, f->log, f->log_length) == 0)
		return log + f->log_length;
	for (size_t shift = 1; shift < f->log_length; shift++)
	{
		const char *at = memmem(f->log + shift, f->log_length - shift, log, probe);
		size_t		overlap;

		if (at == NULL)
			break;
		shift = at - f->log;
		overlap = f->log_length - shift;
		if (overlap <= length && memcmp(log, at, overlap) == 0)
			return log + overlap;
	}
	return NULL;
}

/*
 * follow_print_new_log
 *		Print the part of the log not printed yet.  An empty answer, or one
 *		the printed log already holds, as Ray gives for a moment when a run
 *		ends, is not news.
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
		from = follow_resume_point(f, log, length);
		if (from == NULL)
		{
			follow_close_progress_line(f);
			fprintf(stderr, "[part of the log of job %s was cut before it was shown: pg_ray.max_log_bytes]\n",
					f->job_id);
			from = log;
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
 * follow_report_state
 *		Say that the job's state, or its attempt, changed.
 */
static void
follow_report_state(Follower *f, const char *state, int attempt, int max_attempts)
{
	if (f->state != NULL && strcmp(f->state, state) == 0 && f->attempt == attempt)
		return;
	follow_close_progress_line(f);
	/* a second attempt is news; the first is what anyone expects */
	if (attempt > 1 && !follow_is_terminal(state))
		fprintf(stderr, "Job %s %s (attempt %d of %d).\n", f->job_id,
				follow_state_words(state), attempt, max_attempts);
	else
		fprintf(stderr, "Job %s %s.\n", f->job_id, follow_state_words(state));
	free(f->state);
	f->state = strdup(state);
	f->attempt = attempt;
}

/*
 * follow_report_progress
 *		Say how many rows a batch inference run has scored: on a terminal one
 *		line updated in place, otherwise a line per tenth of the rows.
 */
static void
follow_report_progress(Follower *f, const PGresult *row)
{
	long long	done;
	long long	total;
	int			percent;

	if (PQgetisnull(row, 0, 3) || PQgetisnull(row, 0, 4))
		return;
	done = atoll(PQgetvalue(row, 0, 3));
	total = atoll(PQgetvalue(row, 0, 4));
	if (total <= 0 || done <= 0)
		return;
	percent = (int) (done * 100 / total);
	if (percent == f->progress ||
		(!f->terminal && f->progress >= 0 && percent / 10 == f->progress / 10))
		return;
	if (f->terminal)
	{
		fprintf(stderr, "\rJob %s: %lld of %lld rows scored (%d%%)", f->job_id, done, total, percent);
		f->progress_line_open = true;
	}
	else
		fprintf(stderr, "Job %s: %lld of %lld rows scored (%d%%)\n", f->job_id, done, total, percent);
	f->progress = percent;
}

/*
 * follow_query_failed
 *		What a failed query means: nothing to say after ^C (which cancelled
 *		it), the connection gone, or an error of the server, printed.
 */
static FollowOutcome
follow_query_failed(Follower *f, const PGresult *result)
{
	if (cli_interrupted())
		return FOLLOW_FAILED;
	if (cli_connection_lost(f->conn))
	{
		follow_close_progress_line(f);
		fprintf(stderr, "%s: error: lost the connection to the server: %s", cli_progname,
				PQerrorMessage(f->conn));
		fprintf(stderr, "Job %s goes on; \"%s job status %s\" tells how it does.\n",
				f->job_id, cli_progname, f->job_id);
		return FOLLOW_DISCONNECTED;
	}
	follow_close_progress_line(f);
	cli_print_server_error(result);
	return FOLLOW_FAILED;
}

/*
 * follow_show_log
 *		Fetch the job's log and print what is new.  A log that cannot be
 *		read (Ray's head restarting, a log past what one request brings) is
 *		said once and tried again next round: the job is what is followed.
 */
static void
follow_show_log(Follower *f, int attempt)
{
	const char *params[1] = {f->job_id};
	PGresult   *log;

	if (attempt != f->log_attempt)
	{
		/* a new attempt's log starts afresh and is printed whole */
		free(f->log);
		f->log = NULL;
		f->log_length = 0;
		f->log_attempt = attempt;
	}
	log = cli_exec(f->conn, "SELECT ray.job_logs($1)", 1, params);
	if (PQresultStatus(log) == PGRES_TUPLES_OK)
	{
		follow_print_new_log(f, PQgetvalue(log, 0, 0), PQgetlength(log, 0, 0));
		f->log_failing = false;
	}
	else if (!f->log_failing && !cli_interrupted() && !cli_connection_lost(f->conn))
	{
		follow_close_progress_line(f);
		fprintf(stderr, "%s: warning: could not read the log of job %s, trying again: %s\n",
				cli_progname, f->job_id, PQresultErrorField(log, PG_DIAG_MESSAGE_PRIMARY));
		f->log_failing = true;
	}
	PQclear(log);
}

/*
 * follow_round
 *		One look at the job: its row (state, attempt, progress) and, where
 *		it is shown, its log.
 */
static FollowOutcome
follow_round(Follower *f)
{
	const char *params[1] = {f->job_id};
	PGresult   *row;
	const char *state;
	int			attempt;
	bool		ended;

	row = cli_exec(f->conn,
				   "SELECT state, attempts, max_attempts, rows_processed, rows_total, message "
				   "FROM ray.jobs WHERE job_id = $1", 1, params);
	if (PQresultStatus(row) != PGRES_TUPLES_OK)
	{
		FollowOutcome outcome = follow_query_failed(f, row);

		PQclear(row);
		return outcome;
	}
	if (PQntuples(row) != 1)
	{
		cli_error("job %s does not exist", f->job_id);
		PQclear(row);
		return FOLLOW_FAILED;
	}
	state = PQgetvalue(row, 0, 0);
	attempt = atoi(PQgetvalue(row, 0, 1));
	ended = follow_is_terminal(state);
	/* the state first: "attempt 2" comes before attempt 2's output */
	if (!ended)
		follow_report_state(f, state, attempt, atoi(PQgetvalue(row, 0, 2)));
	if (f->log_out != NULL)
		follow_show_log(f, attempt);
	follow_report_progress(f, row);
	if (ended)
	{
		const char *message = PQgetvalue(row, 0, 5);

		follow_report_state(f, state, attempt, atoi(PQgetvalue(row, 0, 2)));
		if (message[0] != '\0' && strcmp(state, "SUCCEEDED") != 0)
			fprintf(stderr, "%.*s\n", cli_summary_length(message), message);
	}
	PQclear(row);
	return ended ? FOLLOW_ENDED : FOLLOW_GOES_ON;
}

/*
 * cli_follow_job
 *		Follow a job until it ends or ^C, printing its driver log to log_out
 *		(unless NULL) as it grows.  Returns the exit status: with
 *		exit_by_state, EXIT_OK only if the job succeeded; otherwise EXIT_OK
 *		once it ended.  ^C leaves the job as it is and says so
 *		(stop_requested: its stop was already asked for).
 */
int
cli_follow_job(PGconn *conn, const char *job_id, FILE *log_out, bool exit_by_state,
			   bool stop_requested)
{
	Follower	f = {
		.conn = conn,
		.job_id = job_id,
		.log_out = log_out,
		.log_attempt = -1,
		.attempt = -1,
		.progress = -1,
		.terminal = isatty(fileno(stderr)),
	};
	const char *params[1] = {job_id};
	int			status = EXIT_FAILED;

	cli_watch_interrupts(conn);
	while (!cli_interrupted())
	{
		FollowOutcome outcome = follow_round(&f);
		PGresult   *result;

		if (outcome == FOLLOW_ENDED)
		{
			status = !exit_by_state || strcmp(f.state, "SUCCEEDED") == 0 ? EXIT_OK : EXIT_FAILED;
			break;
		}
		if (outcome == FOLLOW_DISCONNECTED)
		{
			status = EXIT_NO_CONNECTION;
			break;
		}
		if (outcome == FOLLOW_FAILED)
			break;

		/*
		 * Wait in the server until the worker has moved jobs, at most a
		 * second: the log grows without the job's row changing.
		 */
		cli_set_notices_quiet(true);
		result = cli_exec(conn, "SELECT ray.wait_job($1, interval '1 second')", 1, params);
		cli_set_notices_quiet(false);
		if (PQresultStatus(result) != PGRES_TUPLES_OK)
		{
			outcome = follow_query_failed(&f, result);
			PQclear(result);
			if (outcome == FOLLOW_DISCONNECTED)
				status = EXIT_NO_CONNECTION;
			break;
		}
		PQclear(result);
	}
	if (cli_interrupted())
	{
		follow_close_progress_line(&f);
		if (stop_requested)
			fprintf(stderr, "Stopped waiting for job %s, whose stop was asked for.\n", job_id);
		else
			fprintf(stderr, "Stopped following job %s, which goes on; \"%s job stop %s\" stops it.\n",
					job_id, cli_progname, job_id);
		status = EXIT_INTERRUPTED;
	}
	free(f.log);
	free(f.state);
	return status;
}

/*
 * cli_print_job_json
 *		Print a job's row of ray.jobs as a JSON object; false (error
 *		printed) if it cannot be read.  What "job submit" and "job stop"
 *		print in JSON once they are done with the job.
 */
bool
cli_print_job_json(PGconn *conn, const char *id)
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
