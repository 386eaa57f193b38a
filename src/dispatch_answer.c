/*-------------------------------------------------------------------------
 *
 * dispatch_answer.c
 *		What an answer from Ray says: whether it came, whether the cluster
 *		could be reached, and what it says of a run.
 *
 * A request that got no usable answer (the network, a timeout, a
 * server error) is worth asking again and is never a verdict on a job;
 * a dashboard that cannot be reached at all is reported to the catalog,
 * which gives up a cluster's runs only after
 * pg_ray.cluster_unreachable_timeout.  What Ray says of one run goes to
 * the state machine in SQL (ray._apply_job_info).  Both the submission
 * of runs (dispatch_submit.c) and the other answers (dispatch_apply.c)
 * read answers this way.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatch_answer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "dispatch_internal.h"
#include "http.h"
#include "ray_parse.h"
#include "ray_text.h"
#include "spi_util.h"

/* Set while applying an answer that settles nothing: ask again later. */
bool		dispatch_ask_later = false;

/*
 * dispatch_failure
 *		A short description of what went wrong with a request, in the
 *		current memory context.
 */
char *
dispatch_failure(PgRayHttpRequest *req)
{
	char		buf[512];

	return pstrdup(pg_ray_http_describe_failure(req, buf, sizeof(buf)));
}

/*
 * dispatch_unreachable
 *		Tell the catalog that a group's dashboard could not be reached.
 */
void
dispatch_unreachable(PgRayHttpRequest *req)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(req->group_name), (Datum) 0,
	CStringGetTextDatum(dispatch_failure(req))};

	pg_ray_spi_exec("SELECT ray._apply_group_check($1, $2, $3)", 3, types, values, " n ");
}

/*
 * dispatch_no_answer
 *		No usable answer came: the network, a timeout, or a server error.
 *		Worth asking again later; never a verdict on the job.
 */
bool
dispatch_no_answer(PgRayHttpRequest *req)
{
	return req->curl_code != CURLE_OK || req->status >= 500 || req->status == 0;
}

/*
 * dispatch_cluster_unreachable
 *		The dashboard itself could not be reached (or a proxy in front of it
 *		says so).  An answer that was too large or too slow to finish is not
 *		that: the cluster answered, and its runs must not be given up for it.
 */
bool
dispatch_cluster_unreachable(PgRayHttpRequest *req)
{
	if (req->response_too_large)
		return false;
	switch (req->curl_code)
	{
		case CURLE_OK:
			return req->status == 502 || req->status == 503 || req->status == 504;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_SSL_CONNECT_ERROR:
			return true;
		case CURLE_OPERATION_TIMEDOUT:
			/* not even a status line came back */
			return req->status == 0;
		default:
			return false;
	}
}

/*
 * dispatch_text
 *		A text datum of a string Ray sent (UTF-8), in the database's encoding
 *		(ray_text.c).
 */
Datum
dispatch_text(const char *utf8)
{
	return CStringGetTextDatum(ray_text_to_server(utf8, strlen(utf8)));
}

/*
 * dispatch_json
 *		A text datum of JSON Ray sent, in the database's encoding and fit to
 *		be cast to jsonb there (ray_json_to_server).
 */
Datum
dispatch_json(const char *utf8)
{
	return CStringGetTextDatum(ray_json_to_server(utf8, strlen(utf8)));
}

/*
 * dispatch_apply_job_info
 *		Hand what Ray says of one run to the state machine.
 */
void
dispatch_apply_job_info(int64 job_id, int attempt, RayJobInfo *info)
{
	Oid			types[9] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
	INT8OID, INT8OID, TEXTOID};
	Datum		values[9];
	char		nulls[9];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(attempt);
	values[2] = CStringGetTextDatum(ray_job_status_name(info->status));
	values[3] = info->message ? dispatch_text(info->message) : (Datum) 0;
	nulls[3] = info->message ? ' ' : 'n';
	values[4] = info->error_type ? dispatch_text(info->error_type) : (Datum) 0;
	nulls[4] = info->error_type ? ' ' : 'n';
	values[5] = Int32GetDatum(info->driver_exit_code);
	nulls[5] = info->has_driver_exit_code ? ' ' : 'n';
	values[6] = Int64GetDatum(info->start_time_ms);
	nulls[6] = info->start_time_ms > 0 ? ' ' : 'n';
	values[7] = Int64GetDatum(info->end_time_ms);
	nulls[7] = info->end_time_ms > 0 ? ' ' : 'n';
	values[8] = info->job_id ? dispatch_text(info->job_id) : (Datum) 0;
	nulls[8] = info->job_id ? ' ' : 'n';
	pg_ray_spi_exec("SELECT ray._apply_job_info($1, $2, $3, $4, $5, $6, $7, $8, $9)",
				  9, types, values, nulls);
}
