/*-------------------------------------------------------------------------
 *
 * identity.c
 *		Who is calling: the API's entry points, which take the caller's
 *		identity before the definer's code runs.
 *
 * The job, model and resource-group functions do their work as SECURITY
 * DEFINER functions, so that users need no privileges on the catalog
 * tables themselves.  Inside them current_user is the extension owner, yet
 * a job must belong to the role that called, and that role is the current
 * user at the moment of the call: the one a SECURITY DEFINER function of
 * the user's own runs as, not the session's outer user (which a definer
 * function does not change, so another role's definer function would act
 * with its caller's rights).
 *
 * So each API function, say ray.stop_job(bigint), is this library's
 * pg_ray_api, run with the caller's identity: it records GetUserId() and
 * calls the definer function that does the work, ray._stop_job_impl(bigint)
 * (same arguments), through fmgr.  No role is granted EXECUTE on an _impl
 * function: they are reached only through pg_ray_api, and
 * ray._calling_role() answers the identity recorded for the call in
 * progress, and refuses outside one.
 *
 * Inside a security-restricted operation PostgreSQL runs a table owner's
 * code (triggers while pg_ray publishes, index expressions, a materialized
 * view's refresh, autovacuum) for a process that may be the worker's
 * bootstrap superuser.  There pg_ray's functions refuse to act at all.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/identity.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "identity.h"
#include "schema_version.h"

PG_FUNCTION_INFO_V1(pg_ray_api);
PG_FUNCTION_INFO_V1(pg_ray_calling_role);

/* The identity of the API call in progress in this backend, if any. */
static Oid	api_caller = InvalidOid;

static FmgrInfo *api_implementation(FmgrInfo *api);

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
 * api_implementation
 *		The definer function behind an API function: in the same schema,
 *		named _<name>_impl (<name>_impl for a name that starts with "_"),
 *		with the same argument types.  Looked up once per call site.
 */
static FmgrInfo *
api_implementation(FmgrInfo *api)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	char	   *name;
	List	   *qualified;
	Oid			impl_oid;
	bool		impl_is_definer;
	FmgrInfo   *impl;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(api->fn_oid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", api->fn_oid);
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	name = NameStr(proc->proname);
	qualified = list_make2(makeString(get_namespace_name(proc->pronamespace)),
						   makeString(psprintf("%s%s_impl", name[0] == '_' ? "" : "_", name)));
	impl_oid = LookupFuncName(qualified, proc->pronargs, proc->proargtypes.values, false);
	ReleaseSysCache(tuple);

	/* the caller's identity is taken here: the implementation must be the one to change it */
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(impl_oid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", impl_oid);
	impl_is_definer = ((Form_pg_proc) GETSTRUCT(tuple))->prosecdef;
	ReleaseSysCache(tuple);
	if (!impl_is_definer)
		elog(ERROR, "%s is not SECURITY DEFINER", format_procedure(impl_oid));
	impl = MemoryContextAllocZero(api->fn_mcxt, sizeof(FmgrInfo));
	fmgr_info_cxt(impl_oid, impl, api->fn_mcxt);
	return impl;
}

/*
 * pg_ray_api
 *		The body of every API function: record the caller (the current
 *		user) and call its implementation with the same arguments.
 */
Datum
pg_ray_api(PG_FUNCTION_ARGS)
{
	LOCAL_FCINFO(impl_fcinfo, FUNC_MAX_ARGS);
	FmgrInfo   *impl = (FmgrInfo *) fcinfo->flinfo->fn_extra;
	Oid			outer_caller = api_caller;
	Datum		result;

	pg_ray_require_current_schema();
	pg_ray_refuse_restricted_operation();
	if (impl == NULL)
	{
		impl = api_implementation(fcinfo->flinfo);
		fcinfo->flinfo->fn_extra = impl;
	}
	InitFunctionCallInfoData(*impl_fcinfo, impl, fcinfo->nargs, fcinfo->fncollation,
							 fcinfo->context, fcinfo->resultinfo);
	memcpy(impl_fcinfo->args, fcinfo->args, sizeof(NullableDatum) * fcinfo->nargs);

	api_caller = GetUserId();
	PG_TRY();
	{
		result = FunctionCallInvoke(impl_fcinfo);
	}
	PG_FINALLY();
	{
		api_caller = outer_caller;
	}
	PG_END_TRY();

	fcinfo->isnull = impl_fcinfo->isnull;
	return result;
}

/*
 * pg_ray_calling_role
 *		ray._calling_role(): the role the API call in progress was made as.
 *		Under an older schema, whose API functions are not pg_ray_api yet,
 *		the outer user, as that version had it, until the schema is updated.
 */
Datum
pg_ray_calling_role(PG_FUNCTION_ARGS)
{
	char	   *installed;

	pg_ray_refuse_restricted_operation();
	if (OidIsValid(api_caller))
		PG_RETURN_OID(api_caller);
	installed = pg_ray_installed_version();
	if (installed != NULL && !pg_ray_schema_is_current(installed))
		PG_RETURN_OID(GetOuterUserId());
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("ray._calling_role() can only be used by pg_ray's API functions")));
	PG_RETURN_NULL();
}
