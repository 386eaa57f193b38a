/*
 * test_ray_parse.c
 *		Unit tests of the Ray response parsers, in TAP.
 *
 * Built and run by scripts/test (make unittest); each case names the input
 * and what a user of pg_ray would otherwise see go wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/ray_parse.h"

#include "tap.h"

#define PARSE_INFO(json, info, err) ray_parse_job_info((json), strlen(json), (info), (err))

static void
test_job_info(void)
{
	RayJobInfo	info;
	char		err[RAY_PARSE_ERRLEN];
	const char *full =
		"{\"type\": \"SUBMISSION\", \"job_id\": \"02000000\", \"submission_id\": \"pgray-7-1\","
		" \"driver_info\": {\"id\": \"02000000\"}, \"status\": \"FAILED\", \"entrypoint\": \"python x.py\","
		" \"message\": \"Job entrypoint command failed with exit code 3\", \"error_type\": null,"
		" \"start_time\": 1763880000123, \"end_time\": 1763880004567, \"metadata\": {},"
		" \"runtime_env\": {}, \"driver_exit_code\": 3}";

	ok(PARSE_INFO(full, &info, err), "a full job info parses");
	ok(info.status == RAY_JOB_FAILED, "its status is FAILED");
	ok(info.submission_id && strcmp(info.submission_id, "pgray-7-1") == 0, "its submission id is kept");
	ok(info.job_id && strcmp(info.job_id, "02000000") == 0, "Ray's job id is kept");
	ok(info.message && strstr(info.message, "exit code 3") != NULL, "the message is kept");
	ok(info.error_type == NULL, "a null error_type is NULL");
	ok(info.has_driver_exit_code && info.driver_exit_code == 3, "the driver exit code is kept");
	ok(info.start_time_ms == 1763880000123LL && info.end_time_ms == 1763880004567LL,
	   "start and end times keep their milliseconds");
	ray_job_info_free(&info);

	ok(PARSE_INFO("{\"status\": \"PENDING\", \"submission_id\": \"s\", \"start_time\": null}", &info, err) &&
	   info.start_time_ms == 0 && !info.has_driver_exit_code,
	   "a pending job has no times and no exit code");
	ray_job_info_free(&info);

	ok(PARSE_INFO("{\"status\": \"RUNNING\", \"start_time\": 1.5e12}", &info, err) &&
	   info.start_time_ms == 1500000000000LL, "a time given as a float is accepted");
	ray_job_info_free(&info);

	ok(!PARSE_INFO("{\"submission_id\": \"s\"}", &info, err) && strstr(err, "status") != NULL,
	   "a job without status is refused");
	ok(!PARSE_INFO("{\"status\": \"EXPLODED\"}", &info, err) && strstr(err, "EXPLODED") != NULL,
	   "an unknown status is refused and named");
	ok(!PARSE_INFO("{\"status\": 3}", &info, err), "a status that is not a string is refused");
	ok(!PARSE_INFO("{\"status\": \"RUNNING\", \"submission_id\": 12}", &info, err) &&
	   strstr(err, "submission_id") != NULL, "a submission id that is not a string is refused");
	ok(!PARSE_INFO("{\"status\": \"FAILED\", \"driver_exit_code\": \"3\"}", &info, err),
	   "an exit code that is not an integer is refused");
	ok(!PARSE_INFO("{\"status\": \"FAILED\", \"driver_exit_code\": 99999999999}", &info, err),
	   "an exit code out of range is refused");
	ok(!PARSE_INFO("{\"status\": \"RUNNING\", \"start_time\": -5}", &info, err),
	   "a negative time is refused");
	ok(!PARSE_INFO("{\"status\": \"RUNNING\", \"start_time\": \"yesterday\"}", &info, err),
	   "a time that is not a number is refused");
	ok(!PARSE_INFO("[\"RUNNING\"]", &info, err), "an array instead of a job is refused");
	ok(!PARSE_INFO("{\"status\": \"RUNNING\", \"status\": \"FAILED\"}", &info, err),
	   "duplicate keys are refused");
}

static void
test_malformed_bodies(void)
{
	RayJobInfo	info;
	RayJobList	list;
	char		err[RAY_PARSE_ERRLEN];
	const char *html = "<html><head><title>502 Bad Gateway</title></head></html>";
	const char *truncated = "{\"status\": \"RUNNING\", \"submission_id\": \"pgr";
	char	   *deep;
	int			depth = 5000;

	ok(!ray_parse_job_info("", 0, &info, err) && strstr(err, "empty") != NULL,
	   "an empty body is refused");
	ok(!ray_parse_job_info(NULL, 0, &info, err), "no body at all is refused");
	ok(!PARSE_INFO(html, &info, err) && strstr(err, "not JSON") != NULL,
	   "an HTML error page is refused as not JSON");
	ok(!PARSE_INFO(truncated, &info, err), "a truncated body is refused");
	ok(!PARSE_INFO("{\"status\": \"RUNNING\"} trailing", &info, err),
	   "trailing garbage is refused");
	ok(!ray_parse_job_info("{\"status\": \"RUN\0NING\"}", 21, &info, err),
	   "a NUL byte inside the body is refused");

	deep = malloc(depth * 2 + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[depth * 2] = '\0';
	ok(!ray_parse_job_list(deep, strlen(deep), &list, err), "absurd nesting is refused, not recursed into");
	free(deep);
}

static void
test_job_list(void)
{
	RayJobList	list;
	char		err[RAY_PARSE_ERRLEN];
	const char *body =
		"[{\"type\": \"DRIVER\", \"job_id\": \"01000000\", \"submission_id\": null, \"status\": \"SUCCEEDED\"},"
		" {\"type\": \"SUBMISSION\", \"submission_id\": \"pgray-1-1\", \"status\": \"RUNNING\", \"start_time\": 10},"
		" {\"type\": \"SUBMISSION\", \"submission_id\": \"pgray-2-1\", \"status\": \"STOPPED\", \"end_time\": 20}]";

	ok(ray_parse_job_list(body, strlen(body), &list, err) && list.count == 3, "a list of three jobs parses");
	ok(list.jobs[0].submission_id == NULL, "a plain driver has no submission id");
	ok(list.jobs[1].status == RAY_JOB_RUNNING && list.jobs[2].status == RAY_JOB_STOPPED,
	   "each job keeps its status");
	ray_job_list_free(&list);
	ok(list.count == 0 && list.jobs == NULL, "freeing clears the list");

	ok(ray_parse_job_list("[]", 2, &list, err) && list.count == 0, "an empty list parses");
	ray_job_list_free(&list);
	ok(!ray_parse_job_list("{\"jobs\": []}", 12, &list, err) && strstr(err, "array") != NULL,
	   "an object instead of a list is refused");
	body = "[{\"status\": \"RUNNING\"}, {\"status\": \"NOPE\"}]";
	ok(!ray_parse_job_list(body, strlen(body), &list, err) && strstr(err, "job 1") != NULL,
	   "one bad entry refuses the whole list and says which");
	ok(list.count == 0 && list.jobs == NULL, "a refused list holds nothing");
}

static void
test_small_responses(void)
{
	char		err[RAY_PARSE_ERRLEN];
	char	   *s;
	bool		stopped;
	const char *version = "{\"version\": \"4\", \"ray_version\": \"2.60.0\", \"ray_commit\": \"abc\"}";

	ok(ray_parse_version(version, strlen(version), &s, err) && strcmp(s, "2.60.0") == 0,
	   "the Ray version is read from /api/version");
	free(s);
	ok(!ray_parse_version("{\"version\": \"4\"}", 16, &s, err) && s == NULL &&
	   strstr(err, "ray_version") != NULL, "a version answer without ray_version is refused");
	ok(!ray_parse_version("\"2.60.0\"", 8, &s, err), "a bare string is not a version answer");

	ok(ray_parse_submit("{\"submission_id\": \"pgray-3-2\", \"job_id\": null}", 46, &s, err) &&
	   strcmp(s, "pgray-3-2") == 0, "the accepted submission id is read");
	free(s);
	ok(!ray_parse_submit("{}", 2, &s, err), "a submit answer without submission id is refused");

	ok(ray_parse_stop("{\"stopped\": true}", 17, &stopped, err) && stopped, "stopped: true");
	ok(ray_parse_stop("{\"stopped\": false}", 18, &stopped, err) && !stopped, "stopped: false");
	ok(!ray_parse_stop("{\"stopped\": \"yes\"}", 18, &stopped, err), "stopped must be a boolean");
}

static void
test_logs(void)
{
	char		err[RAY_PARSE_ERRLEN];
	char	   *logs;
	bool		truncated;
	const char *body = "{\"logs\": \"line 1\\nline 2\\n\"}";
	const char *utf8 = "{\"logs\": \"ab\\u00e9\\u00e9\"}";	/* a b é é: 6 bytes */

	ok(ray_parse_logs(body, strlen(body), 1000, &logs, &truncated, err) &&
	   strcmp(logs, "line 1\nline 2\n") == 0 && !truncated, "a short log is kept whole");
	free(logs);
	ok(ray_parse_logs(body, strlen(body), 7, &logs, &truncated, err) &&
	   strcmp(logs, "line 2\n") == 0 && truncated, "a long log keeps its end");
	free(logs);
	ok(ray_parse_logs(utf8, strlen(utf8), 3, &logs, &truncated, err) &&
	   strcmp(logs, "\xc3\xa9") == 0 && truncated, "the cut falls on a character boundary");
	free(logs);
	ok(!ray_parse_logs("{\"log\": \"x\"}", 12, 10, &logs, &truncated, err) && logs == NULL,
	   "an answer without logs is refused");
}

static void
test_long_strings_are_cut(void)
{
	size_t		n = RAY_PARSE_MAX_STRING + 100;
	char	   *body = malloc(n + 64);
	RayJobInfo	info;
	char		err[RAY_PARSE_ERRLEN];
	int			len;

	len = sprintf(body, "{\"status\": \"FAILED\", \"message\": \"");
	memset(body + len, 'x', n);
	strcpy(body + len + n, "\"}");
	ok(ray_parse_job_info(body, strlen(body), &info, err) &&
	   strlen(info.message) == RAY_PARSE_MAX_STRING, "a huge message is cut to the limit");
	ray_job_info_free(&info);
	free(body);
}

/*
 * is_one_line_of_utf8
 *		Whether text is valid UTF-8 without control characters: what a
 *		message must be to go into a text column and one log line.
 */
static int
is_one_line_of_utf8(const char *text)
{
	const unsigned char *at = (const unsigned char *) text;

	while (*at)
	{
		int			length = *at < 0x80 ? 1 : (*at & 0xE0) == 0xC0 ? 2 : (*at & 0xF0) == 0xE0 ? 3 :
			(*at & 0xF8) == 0xF0 ? 4 : 0;

		if (length == 0 || (length == 1 && (*at < 0x20 || *at == 0x7F)))
			return 0;
		for (int i = 1; i < length; i++)
			if ((at[i] & 0xC0) != 0x80)
				return 0;
		at += length;
	}
	return 1;
}

/* What the fuzzers found (the regress-* seeds of test/fuzz/corpus), kept as tests. */
static void
test_messages_are_one_line_of_utf8(void)
{
	RayJobInfo	info;
	char		err[RAY_PARSE_ERRLEN];
	/* an invalid escape followed by a raw multibyte character */
	const char	raw[] = "{\"status\": \"FAILED\", \"message\": \"\\\xe7\x96\x89\"}";
	size_t		n = RAY_PARSE_MAX_STRING + 10;
	char	   *body = malloc(n + 64);
	int			len;

	ok(!ray_parse_job_info(raw, strlen(raw), &info, err) && is_one_line_of_utf8(err),
	   "jansson's error quoting raw bytes becomes valid UTF-8");
	ok(!PARSE_INFO("{\"status\": \"RUN\\nNING\"}", &info, err) && is_one_line_of_utf8(err) &&
	   strstr(err, "unknown job status") != NULL,
	   "an unknown status with a newline stays on one line");
	ok(!PARSE_INFO("{\"status\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9\"}", &info, err) &&
	   is_one_line_of_utf8(err), "an unknown status cut inside a character stays valid UTF-8");

	/* a message whose cut at the limit falls inside a two-byte character */
	len = sprintf(body, "{\"status\": \"FAILED\", \"message\": \"");
	memset(body + len, 'x', RAY_PARSE_MAX_STRING - 1);
	strcpy(body + len + RAY_PARSE_MAX_STRING - 1, "\xc3\xa9tail\"}");
	ok(ray_parse_job_info(body, strlen(body), &info, err) && is_one_line_of_utf8(info.message) &&
	   strlen(info.message) == RAY_PARSE_MAX_STRING - 1,
	   "a huge message is cut before a character, not inside it");
	ray_job_info_free(&info);
	free(body);
	(void) n;
}

int
main(void)
{
	test_job_info();
	test_malformed_bodies();
	test_job_list();
	test_small_responses();
	test_logs();
	test_long_strings_are_cut();
	test_messages_are_one_line_of_utf8();
	return tap_done();
}
