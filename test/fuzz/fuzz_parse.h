/*-------------------------------------------------------------------------
 *
 * fuzz_parse.h
 *		What the fuzzers of the Ray response parsers check, shared by them.
 *
 * Each fuzzer of src/ray_parse.c hands the raw bytes to one parser, then
 * holds the answer against jansson itself: the body is loaded again with
 * the same flags and the harness works out, from the JSON alone, whether
 * the parser had to accept it and what it had to return.  So a fuzzer
 * finds not only memory errors (AddressSanitizer), undefined behaviour
 * (UBSan) and leaks (LeakSanitizer), but also a parser that accepts what it
 * should refuse, refuses what it should accept, returns a field other than
 * the one Ray sent, or leaves an error message that is not a NUL-terminated,
 * non-empty, valid UTF-8 line.  Results and error messages end up in text
 * columns and server log lines, where bytes that are not UTF-8 break the
 * reading of the row in any other client encoding.
 *
 * Static inline functions, so that each fuzzer takes the checks it uses.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_parse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_PARSE_H
#define FUZZ_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ray_parse.h"

#include "fuzz_assert.h"

/* What the error buffer is filled with before a parse, to see it written. */
#define FUZZ_ERRBUF_FILL 0x5a

/*
 * fuzz_utf8_valid
 *		Whether s[0..len) is valid UTF-8 as PostgreSQL's pg_utf8_islegal
 *		sees it: no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static inline bool
fuzz_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = p[i];
		size_t		n;
		unsigned char lo = 0x80;
		unsigned char hi = 0xBF;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1;
		else if (c >= 0xE0 && c <= 0xEF)
		{
			n = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			n = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		}
		else
			return false;
		if (n >= len - i)
			return false;		/* the sequence runs past the end */
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= n; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xBF)
				return false;
		i += n + 1;
	}
	return true;
}

/*
 * fuzz_errbuf_new
 *		An error buffer of exactly RAY_PARSE_ERRLEN bytes, on the heap so
 *		that AddressSanitizer sees a write past its end, and filled with a
 *		byte that is not NUL so that an unterminated message shows.
 */
static inline char *
fuzz_errbuf_new(void)
{
	char	   *errbuf = malloc(RAY_PARSE_ERRLEN);

	FUZZ_ASSERT(errbuf != NULL);
	memset(errbuf, FUZZ_ERRBUF_FILL, RAY_PARSE_ERRLEN);
	return errbuf;
}

/*
 * fuzz_check_error
 *		A parser that refused its input left one line in errbuf: terminated
 *		within the buffer, not empty, without a newline, valid UTF-8.
 */
static inline void
fuzz_check_error(const char *errbuf)
{
	const char *end = memchr(errbuf, '\0', RAY_PARSE_ERRLEN);

	FUZZ_ASSERT(end != NULL);
	FUZZ_ASSERT(end > errbuf);
	FUZZ_ASSERT(memchr(errbuf, '\n', (size_t) (end - errbuf)) == NULL);
	FUZZ_ASSERT(fuzz_utf8_valid(errbuf, (size_t) (end - errbuf)));
}

/*
 * fuzz_load
 *		The body as jansson reads it with the parsers' flags, or NULL where
 *		the parsers must refuse it as not JSON (or as empty).
 */
static inline json_t *
fuzz_load(const uint8_t *data, size_t size)
{
	json_error_t error;

	if (size == 0)
		return NULL;
	return json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &error);
}

/*
 * fuzz_check_copy
 *		A string the parser returned is the JSON string value, cut to
 *		RAY_PARSE_MAX_STRING bytes, NUL-terminated, and valid UTF-8.  A
 *		missing or null value must have given NULL.
 */
static inline void
fuzz_check_copy(const char *copy, json_t *value)
{
	size_t		len;

	if (value == NULL || json_is_null(value))
	{
		FUZZ_ASSERT(copy == NULL);
		return;
	}
	FUZZ_ASSERT(json_is_string(value));
	FUZZ_ASSERT(copy != NULL);
	len = strlen(copy);
	/* the whole string, or a prefix cut within 3 bytes of the limit, on a character boundary */
	if (json_string_length(value) <= RAY_PARSE_MAX_STRING)
		FUZZ_ASSERT(len == json_string_length(value));
	else
		FUZZ_ASSERT(len <= RAY_PARSE_MAX_STRING && len + 3 >= RAY_PARSE_MAX_STRING);
	FUZZ_ASSERT(memcmp(copy, json_string_value(value), len) == 0);
	FUZZ_ASSERT(fuzz_utf8_valid(copy, len));
}

/*
 * fuzz_optional_string_ok
 *		Whether a field a job may leave out has a shape the parser accepts:
 *		missing, null, or a string.
 */
static inline bool
fuzz_optional_string_ok(json_t *object, const char *key)
{
	json_t	   *value = json_object_get(object, key);

	return value == NULL || json_is_null(value) || json_is_string(value);
}

/*
 * fuzz_millis_ok
 *		Whether a time field is missing, null, or a non-negative number of
 *		milliseconds that fits an int64 (a real below 9e15).
 */
static inline bool
fuzz_millis_ok(json_t *object, const char *key)
{
	json_t	   *value = json_object_get(object, key);

	if (value == NULL || json_is_null(value))
		return true;
	if (json_is_integer(value))
		return json_integer_value(value) >= 0;
	if (json_is_real(value))
		return json_real_value(value) >= 0 && json_real_value(value) < 9.0e15;
	return false;
}

/*
 * fuzz_millis_expected
 *		The milliseconds the parser must return for an accepted time field.
 */
static inline int64_t
fuzz_millis_expected(json_t *object, const char *key)
{
	json_t	   *value = json_object_get(object, key);

	if (value == NULL || json_is_null(value))
		return 0;
	if (json_is_integer(value))
		return (int64_t) json_integer_value(value);
	return (int64_t) json_real_value(value);
}

/*
 * fuzz_job_acceptable
 *		Whether one job object has every field in a shape the parser takes,
 *		worked out independently of src/ray_parse.c from Ray's job schema as
 *		ray_parse.h documents it.
 */
static inline bool
fuzz_job_acceptable(json_t *job)
{
	json_t	   *status;
	json_t	   *exit_code;
	RayJobStatus ignored;

	if (!json_is_object(job))
		return false;
	status = json_object_get(job, "status");
	if (!json_is_string(status) ||
		!ray_job_status_from_name(json_string_value(status), &ignored))
		return false;
	if (!fuzz_optional_string_ok(job, "submission_id") ||
		!fuzz_optional_string_ok(job, "job_id") ||
		!fuzz_optional_string_ok(job, "message") ||
		!fuzz_optional_string_ok(job, "error_type") ||
		!fuzz_millis_ok(job, "start_time") ||
		!fuzz_millis_ok(job, "end_time"))
		return false;
	exit_code = json_object_get(job, "driver_exit_code");
	if (exit_code != NULL && !json_is_null(exit_code))
	{
		if (!json_is_integer(exit_code) ||
			json_integer_value(exit_code) < -2147483647 ||
			json_integer_value(exit_code) > 2147483647)
			return false;
	}
	return true;
}

/*
 * fuzz_check_job
 *		An accepted job says what the JSON object says: its status (named
 *		back by ray_job_status_name), strings, times and exit code.
 */
static inline void
fuzz_check_job(const RayJobInfo *info, json_t *job)
{
	json_t	   *exit_code = json_object_get(job, "driver_exit_code");
	RayJobStatus round_trip;

	FUZZ_ASSERT((size_t) info->status <= RAY_JOB_FAILED);
	FUZZ_ASSERT(strcmp(ray_job_status_name(info->status),
					   json_string_value(json_object_get(job, "status"))) == 0);
	FUZZ_ASSERT(ray_job_status_from_name(ray_job_status_name(info->status), &round_trip) &&
				round_trip == info->status);
	fuzz_check_copy(info->submission_id, json_object_get(job, "submission_id"));
	fuzz_check_copy(info->job_id, json_object_get(job, "job_id"));
	fuzz_check_copy(info->message, json_object_get(job, "message"));
	fuzz_check_copy(info->error_type, json_object_get(job, "error_type"));
	FUZZ_ASSERT(info->start_time_ms >= 0 && info->end_time_ms >= 0);
	FUZZ_ASSERT(info->start_time_ms == fuzz_millis_expected(job, "start_time"));
	FUZZ_ASSERT(info->end_time_ms == fuzz_millis_expected(job, "end_time"));
	if (exit_code == NULL || json_is_null(exit_code))
		FUZZ_ASSERT(!info->has_driver_exit_code && info->driver_exit_code == 0);
	else
		FUZZ_ASSERT(info->has_driver_exit_code &&
					info->driver_exit_code == (int) json_integer_value(exit_code));
}

/*
 * fuzz_job_cleared
 *		Whether info holds nothing, as a refused or freed job must.
 */
static inline bool
fuzz_job_cleared(const RayJobInfo *info)
{
	return info->submission_id == NULL && info->job_id == NULL &&
		info->message == NULL && info->error_type == NULL &&
		!info->has_driver_exit_code && info->driver_exit_code == 0 &&
		info->start_time_ms == 0 && info->end_time_ms == 0;
}

/*
 * fuzz_required_string
 *		The whole check of a parser of an object with one required string
 *		field (ray_parse_version, ray_parse_submit): accepted exactly when
 *		jansson reads an object with that string, which comes back as it
 *		is (cut as ray_parse_strdup cuts); otherwise one line in errbuf and
 *		no result.
 */
static inline int
fuzz_required_string(const uint8_t *data, size_t size, const char *key,
					 bool (*parse) (const char *body, size_t len, char **result, char *errbuf))
{
	char	   *errbuf = fuzz_errbuf_new();
	json_t	   *root = fuzz_load(data, size);
	json_t	   *value = NULL;
	char		garbage = 0;
	char	   *result = &garbage;
	bool		ok;

	if (root != NULL && json_is_object(root))
		value = json_object_get(root, key);

	ok = parse((const char *) data, size, &result, errbuf);
	FUZZ_ASSERT(ok == json_is_string(value));
	if (ok)
		fuzz_check_copy(result, value);
	else
	{
		fuzz_check_error(errbuf);
		FUZZ_ASSERT(result == NULL);
	}
	free(result);

	json_decref(root);
	free(errbuf);
	return 0;
}

#endif							/* FUZZ_PARSE_H */
