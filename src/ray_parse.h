/*-------------------------------------------------------------------------
 *
 * ray_parse.h
 *		Parsers for the responses of Ray's Jobs REST API.
 *
 * Plain C over jansson, with no PostgreSQL headers, so that the parsers can
 * be unit-tested and fuzzed on their own.  Every parser takes the raw body
 * and its length, fills a caller-provided struct, and returns true, or false
 * with a one-line reason in errbuf.  Strings in the results are malloc'd and
 * released by the matching *_free function.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/ray_parse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAY_PARSE_H
#define RAY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest string kept from a response field; the rest is cut. */
#define RAY_PARSE_MAX_STRING 65536

/* Length of the error buffer the parsers write into. */
#define RAY_PARSE_ERRLEN 256

typedef enum RayJobStatus
{
	RAY_JOB_PENDING,
	RAY_JOB_RUNNING,
	RAY_JOB_STOPPED,
	RAY_JOB_SUCCEEDED,
	RAY_JOB_FAILED
} RayJobStatus;

/* One job as GET /api/jobs/{id} and GET /api/jobs/ describe it. */
typedef struct RayJobInfo
{
	char	   *submission_id;	/* NULL for drivers not submitted as jobs */
	char	   *job_id;			/* Ray's own job id, or NULL */
	RayJobStatus status;
	char	   *message;		/* or NULL */
	char	   *error_type;		/* or NULL */
	bool		has_driver_exit_code;
	int			driver_exit_code;
	int64_t		start_time_ms;	/* 0 when not started */
	int64_t		end_time_ms;	/* 0 when not ended */
} RayJobInfo;

typedef struct RayJobList
{
	RayJobInfo *jobs;
	size_t		count;
} RayJobList;

extern const char *ray_job_status_name(RayJobStatus status);
extern bool ray_job_status_from_name(const char *name, RayJobStatus *status);

extern bool ray_parse_job_info(const char *body, size_t len, RayJobInfo *info,
							   char *errbuf);
extern void ray_job_info_free(RayJobInfo *info);

extern bool ray_parse_job_list(const char *body, size_t len, RayJobList *list,
							   char *errbuf);
extern void ray_job_list_free(RayJobList *list);

extern bool ray_parse_version(const char *body, size_t len, char **ray_version,
							  char *errbuf);
extern bool ray_parse_submit(const char *body, size_t len, char **submission_id,
							 char *errbuf);
extern bool ray_parse_stop(const char *body, size_t len, bool *stopped,
						   char *errbuf);
extern bool ray_parse_logs(const char *body, size_t len, size_t max_bytes,
						   char **logs, bool *truncated, char *errbuf);

#endif							/* RAY_PARSE_H */
