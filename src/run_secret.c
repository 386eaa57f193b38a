/*-------------------------------------------------------------------------
 *
 * run_secret.c
 *		The password verifier of a batch inference run's login role.
 *
 * Each attempt of a batch inference run logs in as a role of its own with
 * a random password (ray._begin_batch_attempt).  CREATE ROLE ... PASSWORD
 * takes either the password or its SCRAM verifier; the statement's text
 * can reach the server log (in the CONTEXT of an error, or through
 * auto_explain), so it carries the verifier, built here, and the password
 * itself never appears in any SQL text.  A verifier does not let anyone log
 * in, and a random 64-character password cannot be found from it.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/run_secret.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/scram.h"
#include "utils/builtins.h"

#include "schema_version.h"

PG_FUNCTION_INFO_V1(pg_ray_scram_verifier);

/*
 * pg_ray_scram_verifier
 *		ray._scram_verifier(password): the SCRAM-SHA-256 verifier of the
 *		password, with a fresh salt, as CREATE ROLE ... PASSWORD takes it.
 */
Datum
pg_ray_scram_verifier(PG_FUNCTION_ARGS)
{
	char	   *password = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *verifier;

	pg_ray_require_current_schema();
	verifier = pg_be_scram_build_secret(password);
	memset(password, 0, strlen(password));
	PG_RETURN_TEXT_P(cstring_to_text(verifier));
}
