/*-------------------------------------------------------------------------
 *
 * identity.c
 *		Who is calling: the role a SECURITY DEFINER function acts for.
 *
 * The job and resource-group functions are SECURITY DEFINER, so that users
 * need no privileges on the catalog tables themselves.  Inside them
 * current_user is the extension owner, yet the job must belong to the role
 * that called.  PostgreSQL keeps that role as the "outer" user id (the
 * session user, or the role chosen by SET ROLE), which SECURITY DEFINER does
 * not change; ray._calling_role() exposes it.
 *
 * Inside a security-restricted operation the outer user is not the one
 * whose code runs: PostgreSQL runs a table owner's code that way (triggers
 * while pg_ray publishes, index expressions, a materialized view's
 * refresh, autovacuum), keeping the outer user of the process that does it,
 * such as the worker's bootstrap superuser.  There pg_ray's functions
 * refuse to act rather than act as that user.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/identity.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "identity.h"

PG_FUNCTION_INFO_V1(pg_ray_calling_role);

/*
 * pg_ray_refuse_restricted_operation
 *		An error if called in a security-restricted operation, where the
 *		outer user is not whoever wrote the code that runs.
 */
void
pg_ray_refuse_restricted_operation(void)
{
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pg_ray functions cannot be used in a security-restricted operation"),
				 errdetail("They were called by code PostgreSQL runs for a table's owner: a trigger while pg_ray publishes, "
						   "an index expression, a materialized view's refresh, maintenance.")));
}

/*
 * pg_ray_calling_role
 *		ray._calling_role(): the OID of the role the caller acts as, ignoring
 *		any SECURITY DEFINER function between it and us; an error inside a
 *		security-restricted operation.
 */
Datum
pg_ray_calling_role(PG_FUNCTION_ARGS)
{
	pg_ray_refuse_restricted_operation();
	PG_RETURN_OID(GetOuterUserId());
}
