/*-------------------------------------------------------------------------
 *
 * fuzz_stop.c
 *		libFuzzer harness of ray_parse_stop, the parser of the answer to
 *		POST /api/jobs/{submission_id}/stop.
 *
 * The bytes are the response body.  The parser must accept exactly a JSON
 * object with a "stopped" boolean and return it, and otherwise return false
 * with one line in errbuf.  The result starts as the opposite of the
 * expected answer, so that a parser that does not set it is caught.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_stop.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * LLVMFuzzerTestOneInput
 *		Parse one body and hold the answer against jansson's reading of it.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *errbuf = fuzz_errbuf_new();
	json_t	   *root = fuzz_load(data, size);
	json_t	   *value = NULL;
	bool		stopped;
	bool		ok;

	if (root != NULL && json_is_object(root))
		value = json_object_get(root, "stopped");

	stopped = !json_is_true(value);
	ok = ray_parse_stop((const char *) data, size, &stopped, errbuf);
	FUZZ_ASSERT(ok == json_is_boolean(value));
	if (ok)
		FUZZ_ASSERT(stopped == json_is_true(value));
	else
	{
		fuzz_check_error(errbuf);
		FUZZ_ASSERT(!stopped);
	}

	json_decref(root);
	free(errbuf);
	return 0;
}
