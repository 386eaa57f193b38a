/*-------------------------------------------------------------------------
 *
 * ray_parse.c
 *		Parsers for the responses of Ray's Jobs REST API.
 *
 * Ray's dashboard answers in JSON, but what arrives over the network may be
 * anything: an HTML error page from a proxy, a truncated body, a number where
 * a string belongs.  These parsers accept exactly the shapes pg_ray relies on
 * and say precisely what was wrong otherwise.  They use no PostgreSQL code,
 * so that unit tests and fuzzers can run them alone.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/ray_parse.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ray_json.h"
#include "ray_parse.h"

static const char *const ray_job_status_names[] = {
	[RAY_JOB_PENDING] = "PENDING",
	[RAY_JOB_RUNNING] = "RUNNING",
	[RAY_JOB_STOPPED] = "STOPPED",
	[RAY_JOB_SUCCEEDED] = "SUCCEEDED",
	[RAY_JOB_FAILED] = "FAILED",
};

#define RAY_JOB_STATUS_COUNT (sizeof(ray_job_status_names) / sizeof(ray_job_status_names[0]))

/*
 * ray_job_status_name
 *		The name Ray uses for a status.
 */
const char *
ray_job_status_name(RayJobStatus status)
{
	if ((size_t) status < RAY_JOB_STATUS_COUNT)
		return ray_job_status_names[status];
	return "UNKNOWN";
}

/*
 * ray_job_status_from_name
 *		The status Ray means by name; false for anything else.
 */
bool
ray_job_status_from_name(const char *name, RayJobStatus *status)
{
	for (size_t i = 0; i < RAY_JOB_STATUS_COUNT; i++)
	{
		if (strcmp(name, ray_job_status_names[i]) == 0)
		{
			*status = (RayJobStatus) i;
			return true;
		}
	}
	return false;
}

/*
 * ray_parse_utf8_length
 *		The length of the well-formed UTF-8 character at text (RFC 3629: no
 *		overlong forms, no surrogates, nothing past U+10FFFF), or 0 if there
 *		is none there.  As strict as PostgreSQL, which refuses anything else
 *		in a text value.
 */
static int
ray_parse_utf8_length(const unsigned char *text)
{
	unsigned char lead = text[0];
	unsigned char low = 0x80;
	unsigned char high = 0xBF;
	int			length;

	if (lead < 0x80)
		return 1;
	if (lead >= 0xC2 && lead <= 0xDF)
		length = 2;
	else if (lead >= 0xE0 && lead <= 0xEF)
	{
		length = 3;
		if (lead == 0xE0)
			low = 0xA0;
		else if (lead == 0xED)
			high = 0x9F;
	}
	else if (lead >= 0xF0 && lead <= 0xF4)
	{
		length = 4;
		if (lead == 0xF0)
			low = 0x90;
		else if (lead == 0xF4)
			high = 0x8F;
	}
	else
		return 0;
	if (text[1] < low || text[1] > high)
		return 0;
	for (int i = 2; i < length; i++)
		if (text[i] < 0x80 || text[i] > 0xBF)
			return 0;
	return length;
}

/*
 * ray_parse_clean_message
 *		Make an error message that quotes what Ray sent one line of valid
 *		UTF-8, in place: control characters become spaces and bytes that are
 *		no character (raw bytes jansson quotes, a character cut by a length
 *		limit) become '?'.  The message ends up in a text column and a log
 *		line, which would otherwise refuse it or be split by it.
 */
static void
ray_parse_clean_message(char *message)
{
	unsigned char *at = (unsigned char *) message;

	while (*at != '\0')
	{
		int			length = ray_parse_utf8_length(at);

		if (length == 0)
			*at++ = '?';
		else if (length == 1 && (*at < 0x20 || *at == 0x7F))
			*at++ = ' ';
		else
			at += length;
	}
}

/*
 * ray_parse_load
 *		Parse body as JSON, refusing empty bodies and trailing garbage.
 */
static json_t *
ray_parse_load(const char *body, size_t len, char *errbuf)
{
	json_error_t error;
	json_t	   *root;

	if (body == NULL || len == 0)
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "empty response body");
		return NULL;
	}
	if (!ray_json_load(errbuf, RAY_PARSE_ERRLEN))
		return NULL;
	root = ray_json.loadb(body, len, JSON_REJECT_DUPLICATES, &error);
	if (root == NULL)
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "response is not JSON: %s (at byte %d)",
				 error.text, error.position);
		/* jansson's text quotes the bytes where it stopped, whatever they are */
		ray_parse_clean_message(errbuf);
	}
	return root;
}

/*
 * ray_parse_strdup
 *		A malloc'd copy of a JSON string, cut at RAY_PARSE_MAX_STRING bytes;
 *		NULL for a missing or null value.  *ok turns false when the value is
 *		present but not a string, or memory runs out.
 */
static char *
ray_parse_strdup(json_t *object, const char *key, bool *ok, char *errbuf)
{
	json_t	   *value = ray_json.object_get(object, key);
	size_t		len;
	char	   *copy;

	if (value == NULL || json_is_null(value))
		return NULL;
	if (!json_is_string(value))
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "field \"%s\" is not a string", key);
		*ok = false;
		return NULL;
	}
	len = ray_json.string_length(value);
	if (len > RAY_PARSE_MAX_STRING)
	{
		const char *text = ray_json.string_value(value);

		/* cut on a character boundary: the copy must stay valid UTF-8 */
		len = RAY_PARSE_MAX_STRING;
		while (len > 0 && (((unsigned char) text[len]) & 0xC0) == 0x80)
			len--;
	}
	copy = malloc(len + 1);
	if (copy == NULL)
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "out of memory");
		*ok = false;
		return NULL;
	}
	memcpy(copy, ray_json.string_value(value), len);
	copy[len] = '\0';
	return copy;
}

/*
 * ray_parse_millis
 *		A time in milliseconds since the epoch; 0 for missing or null.
 */
static bool
ray_parse_millis(json_t *object, const char *key, int64_t *millis, char *errbuf)
{
	json_t	   *value = ray_json.object_get(object, key);

	*millis = 0;
	if (value == NULL || json_is_null(value))
		return true;
	if (json_is_integer(value) && ray_json.integer_value(value) >= 0)
	{
		*millis = (int64_t) ray_json.integer_value(value);
		return true;
	}
	if (json_is_real(value) && ray_json.real_value(value) >= 0 && ray_json.real_value(value) < 9.0e15)
	{
		*millis = (int64_t) ray_json.real_value(value);
		return true;
	}
	snprintf(errbuf, RAY_PARSE_ERRLEN, "field \"%s\" is not a time in milliseconds", key);
	return false;
}

/*
 * ray_parse_job_object
 *		Fill info from one job object.  On failure, info holds nothing that
 *		needs freeing.
 */
static bool
ray_parse_job_object(json_t *object, RayJobInfo *info, char *errbuf)
{
	bool		ok = true;
	json_t	   *status;
	json_t	   *exit_code;

	memset(info, 0, sizeof(*info));
	if (!json_is_object(object))
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "job is not a JSON object");
		return false;
	}

	status = ray_json.object_get(object, "status");
	if (status == NULL || !json_is_string(status))
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "job has no \"status\" string");
		return false;
	}
	if (!ray_job_status_from_name(ray_json.string_value(status), &info->status))
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "unknown job status \"%.40s\"",
				 ray_json.string_value(status));
		ray_parse_clean_message(errbuf);
		return false;
	}

	info->submission_id = ray_parse_strdup(object, "submission_id", &ok, errbuf);
	if (ok)
		info->job_id = ray_parse_strdup(object, "job_id", &ok, errbuf);
	if (ok)
		info->message = ray_parse_strdup(object, "message", &ok, errbuf);
	if (ok)
		info->error_type = ray_parse_strdup(object, "error_type", &ok, errbuf);
	if (ok)
		ok = ray_parse_millis(object, "start_time", &info->start_time_ms, errbuf);
	if (ok)
		ok = ray_parse_millis(object, "end_time", &info->end_time_ms, errbuf);

	exit_code = ray_json.object_get(object, "driver_exit_code");
	if (ok && exit_code != NULL && !json_is_null(exit_code))
	{
		if (!json_is_integer(exit_code) ||
			ray_json.integer_value(exit_code) < -2147483647 ||
			ray_json.integer_value(exit_code) > 2147483647)
		{
			snprintf(errbuf, RAY_PARSE_ERRLEN, "field \"driver_exit_code\" is not an integer");
			ok = false;
		}
		else
		{
			info->has_driver_exit_code = true;
			info->driver_exit_code = (int) ray_json.integer_value(exit_code);
		}
	}

	if (!ok)
		ray_job_info_free(info);
	return ok;
}

/*
 * ray_parse_job_info
 *		GET /api/jobs/{submission_id}: one job.
 */
bool
ray_parse_job_info(const char *body, size_t len, RayJobInfo *info, char *errbuf)
{
	json_t	   *root = ray_parse_load(body, len, errbuf);
	bool		ok;

	memset(info, 0, sizeof(*info));
	if (root == NULL)
		return false;
	ok = ray_parse_job_object(root, info, errbuf);
	ray_json_decref(root);
	return ok;
}

/*
 * ray_job_info_free
 *		Release the strings of info and clear it.
 */
void
ray_job_info_free(RayJobInfo *info)
{
	free(info->submission_id);
	free(info->job_id);
	free(info->message);
	free(info->error_type);
	memset(info, 0, sizeof(*info));
}

/*
 * ray_parse_job_list
 *		GET /api/jobs/: an array of jobs.  One malformed entry makes the whole
 *		list an error: acting on part of a list could mistake the missing
 *		jobs for lost ones.
 */
bool
ray_parse_job_list(const char *body, size_t len, RayJobList *list, char *errbuf)
{
	json_t	   *root = ray_parse_load(body, len, errbuf);
	size_t		n;

	list->jobs = NULL;
	list->count = 0;
	if (root == NULL)
		return false;
	if (!json_is_array(root))
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "job list is not a JSON array");
		ray_json_decref(root);
		return false;
	}

	n = ray_json.array_size(root);
	if (n > 0)
	{
		list->jobs = calloc(n, sizeof(RayJobInfo));
		if (list->jobs == NULL)
		{
			snprintf(errbuf, RAY_PARSE_ERRLEN, "out of memory");
			ray_json_decref(root);
			return false;
		}
	}
	for (size_t i = 0; i < n; i++)
	{
		char		entry_err[RAY_PARSE_ERRLEN];

		if (!ray_parse_job_object(ray_json.array_get(root, i), &list->jobs[i], entry_err))
		{
			snprintf(errbuf, RAY_PARSE_ERRLEN, "job %zu of the list: %.200s", i, entry_err);
			ray_parse_clean_message(errbuf);
			ray_job_list_free(list);
			ray_json_decref(root);
			return false;
		}
		list->count = i + 1;
	}
	ray_json_decref(root);
	return true;
}

/*
 * ray_job_list_free
 *		Release a job list and clear it.
 */
void
ray_job_list_free(RayJobList *list)
{
	for (size_t i = 0; i < list->count; i++)
		ray_job_info_free(&list->jobs[i]);
	free(list->jobs);
	list->jobs = NULL;
	list->count = 0;
}

/*
 * ray_parse_required_string
 *		The malloc'd string of a field that must be there.
 */
static bool
ray_parse_required_string(const char *body, size_t len, const char *key,
						  char **result, char *errbuf)
{
	json_t	   *root = ray_parse_load(body, len, errbuf);
	bool		ok = true;

	*result = NULL;
	if (root == NULL)
		return false;
	if (!json_is_object(root))
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "response is not a JSON object");
		ray_json_decref(root);
		return false;
	}
	*result = ray_parse_strdup(root, key, &ok, errbuf);
	if (ok && *result == NULL)
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "response has no \"%s\"", key);
		ok = false;
	}
	ray_json_decref(root);
	return ok;
}

/*
 * ray_parse_version
 *		GET /api/version: the Ray version of the cluster.
 */
bool
ray_parse_version(const char *body, size_t len, char **ray_version, char *errbuf)
{
	return ray_parse_required_string(body, len, "ray_version", ray_version, errbuf);
}

/*
 * ray_parse_submit
 *		POST /api/jobs/: the submission id Ray accepted.
 */
bool
ray_parse_submit(const char *body, size_t len, char **submission_id, char *errbuf)
{
	return ray_parse_required_string(body, len, "submission_id", submission_id, errbuf);
}

/*
 * ray_parse_stop
 *		POST /api/jobs/{id}/stop: whether Ray stopped the job (false when it
 *		had already ended).
 */
bool
ray_parse_stop(const char *body, size_t len, bool *stopped, char *errbuf)
{
	json_t	   *root = ray_parse_load(body, len, errbuf);
	json_t	   *value;

	*stopped = false;
	if (root == NULL)
		return false;
	value = json_is_object(root) ? ray_json.object_get(root, "stopped") : NULL;
	if (value == NULL || !json_is_boolean(value))
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "response has no \"stopped\" boolean");
		ray_json_decref(root);
		return false;
	}
	*stopped = json_is_true(value);
	ray_json_decref(root);
	return true;
}

/*
 * ray_parse_logs
 *		GET /api/jobs/{id}/logs: the driver log.  Only the last max_bytes are
 *		kept, since the end of a log is where a failure explains itself; the
 *		cut falls on a UTF-8 character boundary.
 */
bool
ray_parse_logs(const char *body, size_t len, size_t max_bytes, char **logs,
			   bool *truncated, char *errbuf)
{
	json_t	   *root = ray_parse_load(body, len, errbuf);
	json_t	   *value;
	const char *text;
	size_t		text_len;
	size_t		start = 0;

	*logs = NULL;
	*truncated = false;
	if (root == NULL)
		return false;
	value = json_is_object(root) ? ray_json.object_get(root, "logs") : NULL;
	if (value == NULL || !json_is_string(value))
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "response has no \"logs\" string");
		ray_json_decref(root);
		return false;
	}
	text = ray_json.string_value(value);
	text_len = ray_json.string_length(value);
	if (text_len > max_bytes)
	{
		start = text_len - max_bytes;
		while (start < text_len && (((unsigned char) text[start]) & 0xC0) == 0x80)
			start++;
		*truncated = true;
	}
	*logs = malloc(text_len - start + 1);
	if (*logs == NULL)
	{
		snprintf(errbuf, RAY_PARSE_ERRLEN, "out of memory");
		ray_json_decref(root);
		return false;
	}
	memcpy(*logs, text + start, text_len - start);
	(*logs)[text_len - start] = '\0';
	ray_json_decref(root);
	return true;
}
