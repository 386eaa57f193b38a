/*-------------------------------------------------------------------------
 *
 * http.h
 *		pg_ray's one HTTP driver, over libcurl.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_HTTP_H
#define PG_RAY_HTTP_H

#include "postgres.h"

#include <curl/curl.h>

#include "utils/timestamp.h"

/*
 * One HTTP request and, once done, its response.  The caller fills the
 * request part with pg_ray_http_request_new and sets purpose/job_id/...
 * for its own bookkeeping; the driver fills the rest.  Strings the driver
 * hands to libcurl are malloc'd copies, so a request outlives transactions.
 */
typedef struct PgRayHttpRequest
{
	/* request */
	const char *method;			/* "GET", "POST" or "PUT" (static strings) */
	char	   *url;
	char	   *body;			/* or NULL */
	size_t		body_len;
	const char *content_type;	/* for a body */
	char	   *bearer_token;	/* or NULL; wiped when freed */
	char	   *ca_file;		/* or NULL: the system's CA store */
	long		timeout_ms;
	int			max_tries;		/* connection errors and 5xx are retried */
	bool		fresh_connection;	/* no reused connection, so libcurl never
									 * resends the request on its own */
	size_t		max_response_bytes;

	/* the caller's bookkeeping, untouched by the driver */
	int			purpose;
	int64		job_id;
	int			attempt;
	char		group_name[64];
	char		submission_id[64];
	TimestampTz planned_at;
	uint32		epoch;			/* the dispatcher's epoch when planned */

	/* response */
	bool		done;
	long		status;			/* HTTP status, 0 if none arrived */
	CURLcode	curl_code;
	char		error[CURL_ERROR_SIZE];
	char	   *response;		/* NUL-terminated, or NULL */
	size_t		response_len;
	bool		response_too_large;
	int			tries;

	/* the driver's */
	CURL	   *easy;
	struct curl_slist *headers;
	TimestampTz retry_at;
	struct PgRayHttpRequest *next;
} PgRayHttpRequest;

extern PgRayHttpRequest *pg_ray_http_request_new(const char *method, const char *url);
extern void pg_ray_http_request_set_body(PgRayHttpRequest *req, const char *body,
										 size_t len, const char *content_type);
extern void pg_ray_http_request_free(PgRayHttpRequest *req);
extern bool pg_ray_http_succeeded(const PgRayHttpRequest *req);
extern const char *pg_ray_http_describe_failure(const PgRayHttpRequest *req,
												char *buf, size_t buflen);

/* Blocking, for a backend answering a SQL call. */
extern void pg_ray_http_perform(PgRayHttpRequest *req);

/* Non-blocking, for the background worker. */
extern void pg_ray_http_start(PgRayHttpRequest *req);
extern int	pg_ray_http_wait(long timeout_ms);
extern PgRayHttpRequest *pg_ray_http_next_done(void);
extern int	pg_ray_http_pending(void);

#endif							/* PG_RAY_HTTP_H */
