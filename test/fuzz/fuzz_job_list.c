/*-------------------------------------------------------------------------
 *
 * fuzz_job_list.c
 *		libFuzzer harness of ray_parse_job_list, the parser of
 *		GET /api/jobs/.
 *
 * The bytes are the response body.  The parser must accept exactly an
 * array whose every entry is an acceptable job, return one RayJobInfo per
 * entry in order, and refuse the whole list otherwise, naming the first
 * entry that is wrong; the list is then empty and errbuf holds one line.
 * ray_job_list_free must leave nothing behind (LeakSanitizer).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_job_list.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * fuzz_first_bad_job
 *		The index of the first entry of the array that is not an acceptable
 *		job, or the array's size if all are.
 */
static size_t
fuzz_first_bad_job(json_t *array)
{
	size_t		n = json_array_size(array);

	for (size_t i = 0; i < n; i++)
		if (!fuzz_job_acceptable(json_array_get(array, i)))
			return i;
	return n;
}

/*
 * LLVMFuzzerTestOneInput
 *		Parse one body and hold the list against jansson's reading of it.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *errbuf = fuzz_errbuf_new();
	json_t	   *root = fuzz_load(data, size);
	size_t		bad = 0;
	bool		expected = false;
	RayJobList	list;
	bool		ok;

	if (root != NULL && json_is_array(root))
	{
		bad = fuzz_first_bad_job(root);
		expected = (bad == json_array_size(root));
	}

	memset(&list, 0xa5, sizeof(list));
	ok = ray_parse_job_list((const char *) data, size, &list, errbuf);
	FUZZ_ASSERT(ok == expected);
	if (ok)
	{
		FUZZ_ASSERT(list.count == json_array_size(root));
		FUZZ_ASSERT(list.count == 0 || list.jobs != NULL);
		for (size_t i = 0; i < list.count; i++)
			fuzz_check_job(&list.jobs[i], json_array_get(root, i));
	}
	else
	{
		fuzz_check_error(errbuf);
		FUZZ_ASSERT(list.jobs == NULL && list.count == 0);
		if (root != NULL && json_is_array(root))
		{
			char		prefix[64];

			/* the message names the entry that made the list wrong */
			snprintf(prefix, sizeof(prefix), "job %zu of the list: ", bad);
			FUZZ_ASSERT(strncmp(errbuf, prefix, strlen(prefix)) == 0);
		}
	}
	ray_job_list_free(&list);
	FUZZ_ASSERT(list.jobs == NULL && list.count == 0);

	json_decref(root);
	free(errbuf);
	return 0;
}
