/*-------------------------------------------------------------------------
 *
 * fuzz_version.c
 *		libFuzzer harness of ray_parse_version, the parser of the answer to
 *		GET /api/version: the Ray version of the cluster.
 *
 * The bytes are the response body.  The parser must accept exactly a JSON
 * object with a "ray_version" string, return that string (cut to
 * RAY_PARSE_MAX_STRING), and otherwise return NULL with one line in errbuf.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_version.c
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
	return fuzz_required_string(data, size, "ray_version", ray_parse_version);
}
