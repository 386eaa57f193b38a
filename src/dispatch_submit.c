/*-------------------------------------------------------------------------
 *
 * dispatch_submit.c
 *		Submitting a run to Ray exactly once: check whether Ray has it,
 *		upload its working directory, POST it.
 *
 * Exactly-once submission rests on three habits: the submission id is fixed
 * by the committed attempt; a submission is POSTed only right after Ray said
 * it does not know that id; and a POST is never retried blindly: if its
 * answer is lost, the next round asks Ray again whether the id exists.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/dispatch_submit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "dispatch_internal.h"
#include "http.h"
#include "ray_api.h"
#include "ray_parse.h"
#include "spi_util.h"

/*
 * dispatch_plan_submission
 *		Ray said it has no run of this attempt: submit it.  A job with a
 *		working directory uploads its package first (upload_first), and is
 *		POSTed once the upload has succeeded.
 */
void
dispatch_plan_submission(PgRayHttpRequest *req, bool upload_first)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(req->job_id), Int32GetDatum(req->attempt)};
	RayEndpoint endpoint;
	PgRayHttpRequest *next;
	char	   *body;
	bool		isnull;

	/* also settles a stop request that came before the run existed */
	pg_ray_spi_exec("SELECT ray._submission_body($1, $2)", 2, types, values, NULL);
	if (SPI_processed != 1)
		return;
	body = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull || !dispatch_endpoint(req->group_name, &endpoint))
		return;

	if (upload_first)
	{
		pg_ray_spi_exec("SELECT package, content FROM ray._submission_package($1, $2) WHERE package IS NOT NULL",
						2, types, values, NULL);
		if (SPI_processed == 1)
		{
			char	   *package = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			bytea	   *content = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
															   SPI_tuptable->tupdesc, 2, &isnull));

			next = ray_api_request(&endpoint, "PUT", "/api/packages/gcs/%s", package);
			pg_ray_http_request_set_body(next, VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content),
										 "application/zip");
			/* a package may be large; the same name always holds the same bytes */
			next->timeout_ms = Max(next->timeout_ms, 120000L);
			dispatch_plan_request(next, DISPATCH_UPLOAD, req->group_name, req->job_id,
								  req->attempt, req->submission_id);
			return;
		}
	}

	next = ray_api_request(&endpoint, "POST", "/api/jobs/");
	body = pg_server_to_any(body, strlen(body), PG_UTF8);
	pg_ray_http_request_set_body(next, body, strlen(body), "application/json");
	/* never sent twice: a lost answer is settled by checking again */
	next->max_tries = 1;
	next->fresh_connection = true;
	dispatch_plan_request(next, DISPATCH_SUBMIT, req->group_name, req->job_id,
						  req->attempt, req->submission_id);
}

/*
 * dispatch_apply_upload
 *		The working directory is in the cluster: now the job itself.
 */
void
dispatch_apply_upload(PgRayHttpRequest *req)
{
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(req->job_id), Int32GetDatum(req->attempt),
	CStringGetTextDatum(dispatch_failure(req))};

	if (pg_ray_http_succeeded(req))
		dispatch_plan_submission(req, false);
	else if (dispatch_no_answer(req))
	{
		pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
		if (dispatch_cluster_unreachable(req))
			dispatch_unreachable(req);
		dispatch_ask_later = true;
	}
	else
		/* refused for good, such as a package over the cluster's limit */
		pg_ray_spi_exec("SELECT ray._apply_submitted($1, $2, $3)", 3, types, values, NULL);
}

/*
 * dispatch_apply_check_submission
 *		Ray's answer to "do you have this submission?": adopt the run it has,
 *		or submit it now that Ray said it has none.
 */
void
dispatch_apply_check_submission(PgRayHttpRequest *req)
{
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(req->job_id), Int32GetDatum(req->attempt), (Datum) 0};
	char		errbuf[RAY_PARSE_ERRLEN];

	if (pg_ray_http_succeeded(req))
	{
		RayJobInfo	info;

		if (!ray_parse_job_info(req->response, req->response_len, &info, errbuf))
		{
			values[2] = CStringGetTextDatum(psprintf("GET %s: %s", req->url, errbuf));
			pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
			dispatch_ask_later = true;
			return;
		}
		PG_TRY();
		{
			dispatch_apply_job_info(req->job_id, req->attempt, &info);
		}
		PG_FINALLY();
		{
			ray_job_info_free(&info);
		}
		PG_END_TRY();
		return;
	}
	if (req->status == 404)
	{
		dispatch_plan_submission(req, true);
		return;
	}
	values[2] = CStringGetTextDatum(dispatch_failure(req));
	pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
	if (dispatch_cluster_unreachable(req))
		dispatch_unreachable(req);
	dispatch_ask_later = true;
}

/*
 * dispatch_apply_submit
 *		Ray's answer to a POST of a submission.
 */
void
dispatch_apply_submit(PgRayHttpRequest *req)
{
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(req->job_id), Int32GetDatum(req->attempt), (Datum) 0};
	char		nulls[3] = {' ', ' ', 'n'};

	if (pg_ray_http_succeeded(req))
	{
		pg_ray_spi_exec("SELECT ray._apply_submitted($1, $2, $3)", 3, types, values, nulls);
		dispatch_poll_soon(req->group_name);
		return;
	}
	values[2] = CStringGetTextDatum(dispatch_failure(req));
	nulls[2] = ' ';

	/*
	 * "already exists" (Ray answers it with a 500) means an earlier POST did
	 * get through, which the next check adopts.  A refusal for good is any
	 * other client error, such as a runtime_env Ray does not accept.
	 */
	if (req->response && strstr(req->response, "already exists"))
		pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
	else if (!dispatch_no_answer(req) && req->status >= 400 && req->status < 500)
		pg_ray_spi_exec("SELECT ray._apply_submitted($1, $2, $3)", 3, types, values, nulls);
	else
	{
		pg_ray_spi_exec("SELECT ray._apply_submission_trouble($1, $2, $3)", 3, types, values, NULL);
		if (dispatch_cluster_unreachable(req))
			dispatch_unreachable(req);
		dispatch_ask_later = true;
	}
}
