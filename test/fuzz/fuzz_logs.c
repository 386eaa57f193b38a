/*-------------------------------------------------------------------------
 *
 * fuzz_logs.c
 *		libFuzzer harness of ray_parse_logs, the parser of
 *		GET /api/jobs/{submission_id}/logs.
 *
 * The bytes are the response body, parsed with several limits on the bytes
 * kept (pg_ray.max_log_bytes): none, a few around a UTF-8 character's
 * length, half the body, all of it.  The parser must accept exactly a JSON
 * object with a "logs" string.  A log within the limit comes back whole; a
 * longer one comes back as its end, at most the limit long, at most three
 * bytes shorter (the rest of a character cut by the limit), starting on a
 * character boundary, and flagged as truncated.  What comes back is valid
 * UTF-8, as it is stored in a text column.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_logs.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * fuzz_check_logs
 *		Parse the body with one limit and check the answer.
 */
static void
fuzz_check_logs(const uint8_t *data, size_t size, json_t *value, size_t max_bytes)
{
	char	   *errbuf = fuzz_errbuf_new();
	char		garbage = 0;
	char	   *logs = &garbage;
	bool		truncated = true;
	bool		ok;

	ok = ray_parse_logs((const char *) data, size, max_bytes, &logs, &truncated, errbuf);
	FUZZ_ASSERT(ok == json_is_string(value));
	if (ok)
	{
		const char *full = json_string_value(value);
		size_t		full_len = json_string_length(value);
		size_t		len;

		FUZZ_ASSERT(logs != NULL);
		/* jansson refuses "\u0000" unless told otherwise: no NUL inside */
		len = strlen(logs);
		if (full_len <= max_bytes)
		{
			FUZZ_ASSERT(!truncated);
			FUZZ_ASSERT(len == full_len && memcmp(logs, full, len) == 0);
		}
		else
		{
			FUZZ_ASSERT(truncated);
			FUZZ_ASSERT(len <= max_bytes && len + 3 >= max_bytes);
			FUZZ_ASSERT(memcmp(logs, full + full_len - len, len) == 0);
			FUZZ_ASSERT(len == 0 || (((unsigned char) logs[0]) & 0xC0) != 0x80);
		}
		FUZZ_ASSERT(fuzz_utf8_valid(logs, len));
		free(logs);
	}
	else
	{
		fuzz_check_error(errbuf);
		FUZZ_ASSERT(logs == NULL && !truncated);
	}
	free(errbuf);
}

/*
 * LLVMFuzzerTestOneInput
 *		Parse one body with each limit.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t	   *root = fuzz_load(data, size);
	json_t	   *value = NULL;
	const size_t limits[] = {0, 1, 2, 3, 4, 5, 7, size / 2, size, SIZE_MAX};

	if (root != NULL && json_is_object(root))
		value = json_object_get(root, "logs");
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		fuzz_check_logs(data, size, value, limits[i]);

	json_decref(root);
	return 0;
}
