/*-------------------------------------------------------------------------
 *
 * ray_api.c
 *		Requests to Ray's Jobs REST API, and the SQL functions that make
 *		them from a backend.
 *
 * ray_api_request builds a request to one dashboard with its token and CA
 * file; the background worker drives such requests without blocking, and
 * the SQL functions here perform them in the calling backend: checking a
 * dashboard when a cluster is registered, and reading a live driver log.
 * What the responses mean is parsed in ray_parse.c.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/ray_api.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <stdlib.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "http.h"
#include "pg_ray.h"
#include "ray_api.h"
#include "ray_parse.h"
#include "ray_text.h"
#include "schema_version.h"

PG_FUNCTION_INFO_V1(pg_ray_check_dashboard_url);
PG_FUNCTION_INFO_V1(pg_ray_http_ray_version);
PG_FUNCTION_INFO_V1(pg_ray_http_job_logs);
PG_FUNCTION_INFO_V1(pg_ray_http_cluster_status);

/*
 * ray_api_request
 *		A request to endpoint's dashboard for the path (printf-style), with
 *		its token and CA file and pg_ray's timeout.
 */
PgRayHttpRequest *
ray_api_request(const RayEndpoint *endpoint, const char *method, const char *path_format,...)
{
	StringInfoData url;
	va_list		args;
	PgRayHttpRequest *req;

	initStringInfo(&url);
	appendStringInfoString(&url, endpoint->url);
	for (;;)
	{
		int			needed;

		va_start(args, path_format);
		needed = appendStringInfoVA(&url, path_format, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&url, needed);
	}

	req = pg_ray_http_request_new(method, url.data);
	pfree(url.data);
	req->timeout_ms = pg_ray_http_timeout_ms;
	if (endpoint->token)
	{
		req->bearer_token = strdup(endpoint->token);
		if (req->bearer_token == NULL)
		{
			pg_ray_http_request_free(req);
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		}
	}
	if (endpoint->ca_file)
	{
		req->ca_file = strdup(endpoint->ca_file);
		if (req->ca_file == NULL)
		{
			pg_ray_http_request_free(req);
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		}
	}
	return req;
}

/*
 * ray_api_is_loopback
 *		Whether host (as a URL gives it) names this machine's loopback.
 */
static bool
ray_api_is_loopback(const char *host)
{
	struct in_addr v4;
	struct in6_addr v6;
	char		bare[INET6_ADDRSTRLEN + 2];
	size_t		len = strlen(host);

	if (pg_strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (len > 2 && len < sizeof(bare) && host[0] == '[' && host[len - 1] == ']')
	{
		memcpy(bare, host + 1, len - 2);
		bare[len - 2] = '\0';
		host = bare;
	}
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	return false;
}

/*
 * pg_ray_check_dashboard_url
 *		ray._check_dashboard_url(url): the URL without a trailing slash, or an
 *		error.  Plain http is allowed to loopback only: anywhere else the
 *		bearer token would cross the network in clear text.
 */
Datum
pg_ray_check_dashboard_url(PG_FUNCTION_ARGS)
{
	char	   *url;
	CURLU	   *parsed;
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *query = NULL;
	char	   *fragment = NULL;
	char	   *user = NULL;
	CURLUcode	rc;
	bool		https;
	size_t		len;

	pg_ray_require_current_schema();

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dashboard URL must not be null")));
	url = text_to_cstring(PG_GETARG_TEXT_PP(0));

	parsed = curl_url();
	if (parsed == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	rc = curl_url_set(parsed, CURLUPART_URL, url, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(parsed, CURLUPART_HOST, &host, 0);
	if (rc != CURLUE_OK)
	{
		const char *why = curl_url_strerror(rc);

		curl_free(scheme);
		curl_free(host);
		curl_url_cleanup(parsed);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid dashboard URL \"%s\"", url),
				 errdetail("%s.", why),
				 errhint("Give the URL of the Ray dashboard, such as http://127.0.0.1:8265.")));
	}
	curl_url_get(parsed, CURLUPART_QUERY, &query, 0);
	curl_url_get(parsed, CURLUPART_FRAGMENT, &fragment, 0);
	curl_url_get(parsed, CURLUPART_USER, &user, 0);

	https = pg_strcasecmp(scheme, "https") == 0;
	if (!https && pg_strcasecmp(scheme, "http") != 0)
	{
		curl_free(scheme);
		curl_free(host);
		curl_free(query);
		curl_free(fragment);
		curl_free(user);
		curl_url_cleanup(parsed);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dashboard URL \"%s\" must use http or https", url)));
	}
	/*
	 * The worker appends API paths to the URL: a query or a fragment would
	 * turn them into parameters or drop them, and the requests would go to
	 * whatever path the URL names.
	 */
	if (query != NULL || fragment != NULL || user != NULL)
	{
		curl_free(scheme);
		curl_free(host);
		curl_free(query);
		curl_free(fragment);
		curl_free(user);
		curl_url_cleanup(parsed);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dashboard URL \"%s\" must not carry a query, a fragment or credentials", url),
				 errhint("Pass the token as the token argument; it is stored where only the worker reads it.")));
	}
	if (!https && !ray_api_is_loopback(host))
	{
		char	   *host_copy = pstrdup(host);

		curl_free(scheme);
		curl_free(host);
		curl_url_cleanup(parsed);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dashboard URL \"%s\" must use https", url),
				 errdetail("Plain http is allowed to a loopback address only, and \"%s\" is not one.", host_copy),
				 errhint("Put the dashboard behind TLS, or reach it through a tunnel on 127.0.0.1.")));
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(parsed);

	len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(url));
}

/*
 * ray_api_endpoint_from_args
 *		The endpoint named by a SQL function's (url, token, ca_file).
 */
static RayEndpoint
ray_api_endpoint_from_args(FunctionCallInfo fcinfo)
{
	RayEndpoint endpoint;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dashboard URL must not be null")));
	endpoint.url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	endpoint.token = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	endpoint.ca_file = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	return endpoint;
}

/*
 * ray_api_perform
 *		Perform req in this backend.  A cancel while it waits frees the
 *		request (and wipes its token) before the error unwinds.
 */
static void
ray_api_perform(PgRayHttpRequest *req)
{
	PG_TRY();
	{
		pg_ray_http_perform(req);
	}
	PG_CATCH();
	{
		pg_ray_http_request_free(req);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * ray_api_raise_failure
 *		Free a request that failed and raise an error that says what was
 *		tried and what happened.
 */
static void
ray_api_raise_failure(PgRayHttpRequest *req, const char *what)
{
	char		why[512];
	CURLcode	code = req->curl_code;
	long		status = req->status;

	pg_ray_http_describe_failure(req, why, sizeof(why));
	pg_ray_http_request_free(req);
	if (code != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not %s", what),
				 errdetail("%s", why),
				 code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ?
				 errhint("Check the dashboard's TLS certificate, or name the CA that signed it with the option \"ca_file\".") :
				 errhint("Check that the Ray dashboard runs and that the URL is right.")));
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("could not %s", what),
			 errdetail("%s", why),
			 status == 401 || status == 403 ?
			 errhint("The dashboard refused the token: check it.") :
			 errhint("Check that the URL is that of a Ray dashboard.")));
}

/*
 * ray_api_perform_or_error
 *		Perform req in this backend; on failure, raise the error.
 */
static void
ray_api_perform_or_error(PgRayHttpRequest *req, const char *what)
{
	ray_api_perform(req);
	if (!pg_ray_http_succeeded(req))
		ray_api_raise_failure(req, what);
}

/*
 * pg_ray_http_ray_version
 *		ray._http_ray_version(url, token, ca_file): the Ray version a
 *		dashboard reports, or an error that says what was tried.
 */
Datum
pg_ray_http_ray_version(PG_FUNCTION_ARGS)
{
	RayEndpoint endpoint = ray_api_endpoint_from_args(fcinfo);
	PgRayHttpRequest *req = ray_api_request(&endpoint, "GET", "/api/version");
	char		errbuf[RAY_PARSE_ERRLEN];
	char	   *version = NULL;
	text	   *result;

	pg_ray_require_current_schema();

	ray_api_perform_or_error(req, psprintf("reach the Ray dashboard at %s", endpoint.url));
	if (!ray_parse_version(req->response, req->response_len, &version, errbuf))
	{
		pg_ray_http_request_free(req);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("%s did not answer as a Ray dashboard", endpoint.url),
				 errdetail("GET /api/version: %s.", errbuf),
				 errhint("Give the URL of the Ray dashboard (port 8265 by default), not of another service.")));
	}
	pg_ray_http_request_free(req);
	result = cstring_to_text(version);
	free(version);
	PG_RETURN_TEXT_P(result);
}

/*
 * pg_ray_http_job_logs
 *		ray._http_job_logs(url, token, ca_file, submission_id): the live
 *		driver log, its last pg_ray.max_log_bytes; NULL when Ray has no such
 *		run.
 */
Datum
pg_ray_http_job_logs(PG_FUNCTION_ARGS)
{
	RayEndpoint endpoint = ray_api_endpoint_from_args(fcinfo);
	char	   *submission_id;
	PgRayHttpRequest *req;
	char		errbuf[RAY_PARSE_ERRLEN];
	char	   *logs = NULL;
	bool		truncated;
	text	   *result;

	pg_ray_require_current_schema();

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("submission id must not be null")));
	submission_id = text_to_cstring(PG_GETARG_TEXT_PP(3));
	req = ray_api_request(&endpoint, "GET", "/api/jobs/%s/logs", submission_id);
	req->max_response_bytes = (size_t) pg_ray_max_log_bytes * 2 + 65536;
	ray_api_perform(req);
	if (req->curl_code == CURLE_OK && req->status == 404)
	{
		/* Ray has no such run: no live log to show */
		pg_ray_http_request_free(req);
		PG_RETURN_NULL();
	}
	if (!pg_ray_http_succeeded(req))
		ray_api_raise_failure(req, psprintf("read the log of Ray job %s", submission_id));
	if (!ray_parse_logs(req->response, req->response_len, (size_t) pg_ray_max_log_bytes,
						&logs, &truncated, errbuf))
	{
		pg_ray_http_request_free(req);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the answer to the log request of Ray job %s is not a log", submission_id),
				 errdetail("%s.", errbuf)));
	}
	pg_ray_http_request_free(req);
	result = cstring_to_text(ray_text_to_server(logs, strlen(logs)));
	free(logs);
	PG_RETURN_TEXT_P(result);
}

/*
 * pg_ray_http_cluster_status
 *		ray._http_cluster_status(url, token, ca_file): the answer of
 *		GET /api/cluster_status?format=1, the autoscaler's report that
 *		"ray status" prints, as JSON text for SQL to take apart.
 */
Datum
pg_ray_http_cluster_status(PG_FUNCTION_ARGS)
{
	RayEndpoint endpoint = ray_api_endpoint_from_args(fcinfo);
	PgRayHttpRequest *req = ray_api_request(&endpoint, "GET", "/api/cluster_status?format=1");
	text	   *result;

	pg_ray_require_current_schema();

	ray_api_perform_or_error(req, psprintf("ask the Ray dashboard at %s for its cluster status",
										   endpoint.url));
	result = cstring_to_text(ray_json_to_server(req->response ? req->response : "",
												req->response ? req->response_len : 0));
	pg_ray_http_request_free(req);
	PG_RETURN_TEXT_P(result);
}
