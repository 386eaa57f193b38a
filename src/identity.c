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

PG_FUNCTION_INFO_V1(pg_ray_calling_role);

/*
 * pg_ray_calling_role
 *		ray._calling_role(): the OID of the role the caller acts as, ignoring
 *		any SECURITY DEFINER function between it and us.
 */
Datum
pg_ray_calling_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}
