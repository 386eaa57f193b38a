/*-------------------------------------------------------------------------
 *
 * fuzz_submit.c
 *		libFuzzer harness of ray_parse_submit, the parser of the answer to
 *		POST /api/jobs/: the submission id Ray accepted.
 *
 * The bytes are the response body.  The parser must accept exactly a JSON
 * object with a "submission_id" string, return that string (cut to
 * RAY_PARSE_MAX_STRING), and otherwise return NULL with one line in errbuf.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_submit.c
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
	char		garbage = 0;
	char	   *result = &garbage;
	bool		ok;

	if (root != NULL && json_is_object(root))
		value = json_object_get(root, "submission_id");

	ok = ray_parse_submit((const char *) data, size, &result, errbuf);
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
