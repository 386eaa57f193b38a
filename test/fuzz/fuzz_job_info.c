/*-------------------------------------------------------------------------
 *
 * fuzz_job_info.c
 *		libFuzzer harness of ray_parse_job_info, the parser of
 *		GET /api/jobs/{submission_id}.
 *
 * The bytes are the response body, as they arrive from the network.  The
 * parser must accept exactly the job objects fuzz_job_acceptable describes,
 * return what the object says, and otherwise leave info empty and one line
 * in errbuf; ray_job_info_free must leave nothing behind (LeakSanitizer).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_job_info.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * LLVMFuzzerTestOneInput
 *		Parse one body and hold the result against jansson's reading of it.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *errbuf = fuzz_errbuf_new();
	json_t	   *root = fuzz_load(data, size);
	bool		expected = root != NULL && fuzz_job_acceptable(root);
	RayJobInfo	info;
	bool		ok;

	/* garbage, so that a field the parser forgets to set shows */
	memset(&info, 0xa5, sizeof(info));
	ok = ray_parse_job_info((const char *) data, size, &info, errbuf);
	FUZZ_ASSERT(ok == expected);
	if (ok)
		fuzz_check_job(&info, root);
	else
	{
		fuzz_check_error(errbuf);
		FUZZ_ASSERT(fuzz_job_cleared(&info));
	}
	ray_job_info_free(&info);
	FUZZ_ASSERT(fuzz_job_cleared(&info));

	json_decref(root);
	free(errbuf);
	return 0;
}
