/*-------------------------------------------------------------------------
 *
 * run_read.c
 *		A batch inference run reads its source as its owner, without being
 *		able to become its owner.
 *
 * Each attempt logs in as a role of its own whose password travels to the
 * cluster's nodes, where other tenants' code may run.  That role is no
 * member of the job's owner (in PostgreSQL 15 a member can SET ROLE to
 * it), so it cannot read the owner's tables itself.  Instead it asks these
 * functions, which run the plan's source query -- built by the extension
 * from the stored plan, never from what the run hands in -- with the
 * owner's identity, as a security-restricted operation (no SET ROLE, no
 * temporary objects, the owner's privileges only), with the owner's
 * search_path of planning time.  The run's own session must not be able to
 * change what that query does: it must be in a read-only transaction (the
 * query's functions could write as the owner), have made no temporary
 * objects (found before the owner's relations and types), and have changed
 * no setting but those libpq and the runner set (a row-level security
 * policy may read a custom setting).
 *
 * ray._run_read returns the columns as text, in the plan's order: the
 * runner parses CSV, the text of each value is what COPY would have
 * written, and the run's role needs no privilege on the types' schemas to
 * name the result's columns.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/run_read.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tstoreReceiver.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/tuplestore.h"

#include "schema_version.h"

PG_FUNCTION_INFO_V1(pg_ray_run_read);
PG_FUNCTION_INFO_V1(pg_ray_run_count);

/* What ray._run_read_query says a run may read: as whom, what, where. */
typedef struct RunReadQuery
{
	Oid			owner;
	char	   *query;
	char	   *search_path;
} RunReadQuery;

/*
 * run_read_query_for
 *		Ask ray._run_read_query (SECURITY DEFINER: it checks that the session
 *		is a current run's login role) for the query of a partition.  Must
 *		be called connected to SPI; the strings are copied to the caller's
 *		memory context.
 */
/*
 * What a run's session may have set itself: what libpq and the runner set.
 * Anything else -- a custom setting a row-level security policy reads, the
 * time zone, standard_conforming_strings -- could change what the owner's
 * query returns, so a session that set it (or whose role has it set) is
 * refused.
 */
static const char *const run_read_own_settings[] = {
	"application_name", "client_encoding", "idle_in_transaction_session_timeout",
	"search_path", "transaction_deferrable", "transaction_isolation", "transaction_read_only",
	NULL
};

static void run_read_check_session(void);
static void run_read_check_path(void);

/*
 * run_read_check_session
 *		Refuse a session that could change the meaning of the owner's query:
 *		one outside a read-only transaction (its functions could write as
 *		the owner), one with temporary objects (found before the owner's
 *		in the search path for relations and types), one that changed a
 *		setting other than run_read_own_settings.
 */
static void
run_read_check_session(void)
{
	struct config_generic **settings = get_guc_variables();
	int			nsettings = GetNumConfigOptions();
	Oid			temp_namespace;
	Oid			temp_toast_namespace;

	if (!XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("a batch inference run reads its source in a read-only transaction"),
				 errhint("Start it with BEGIN READ ONLY.")));
	GetTempNamespaceState(&temp_namespace, &temp_toast_namespace);
	if (OidIsValid(temp_namespace))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a batch inference run cannot read its source in a session that made temporary objects"),
				 errdetail("They would be found before its owner's tables and types.")));
	for (int i = 0; i < nsettings; i++)
	{
		struct config_generic *setting = settings[i];
		bool		allowed = false;

		if (setting->source < PGC_S_USER || setting->source == PGC_S_OVERRIDE)
			continue;
		for (int j = 0; run_read_own_settings[j] != NULL; j++)
			if (pg_strcasecmp(setting->name, run_read_own_settings[j]) == 0)
				allowed = true;
		if (!allowed)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("a batch inference run reads its source with the settings of the server, not its own"),
					 errdetail("This session or its role set \"%s\", which could change what the owner's query returns.",
							   setting->name)));
	}
}

/*
 * run_read_check_path
 *		Refuse when the run's role may create objects in a schema of the
 *		owner's search path: a function, operator or table it made there
 *		could stand in for what the owner's query names, and run as the
 *		owner.  Called as the owner, whose path it is.
 */
static void
run_read_check_path(void)
{
	List	   *path = fetch_search_path(false);
	ListCell   *cell;

	foreach(cell, path)
	{
		Oid			namespace = lfirst_oid(cell);

		if (pg_namespace_aclcheck(namespace, GetSessionUserId(), ACL_CREATE) == ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("a batch inference run cannot read its source while its role may create objects in schema \"%s\"",
							get_namespace_name(namespace)),
					 errdetail("What it made there could stand in for a function, operator or table that the owner's query names."),
					 errhint("Revoke CREATE on that schema from PUBLIC, as PostgreSQL 15 does for schema public: REVOKE CREATE ON SCHEMA %s FROM PUBLIC.",
							 quote_identifier(get_namespace_name(namespace)))));
	}
	list_free(path);
}

static RunReadQuery
run_read_query_for(Datum *bounds, bool *bound_nulls, MemoryContext result_context)
{
	Oid			argtypes[4] = {INT8OID, INT8OID, INT4OID, INT4OID};
	char		nulls[4];
	RunReadQuery result;
	bool		isnull;
	int			i;

	for (i = 0; i < 4; i++)
		nulls[i] = bound_nulls[i] ? 'n' : ' ';
	if (SPI_execute_with_args("SELECT owner, query, search_path FROM ray._run_read_query($1, $2, $3, $4)",
							  4, argtypes, bounds, nulls, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "ray._run_read_query returned no row");

	result.owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull || !OidIsValid(result.owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the owner of this batch inference run no longer exists")));
	result.query = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	result.search_path = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (result.query == NULL)
		elog(ERROR, "ray._run_read_query returned no query");
	result.query = MemoryContextStrdup(result_context, result.query);
	result.search_path = MemoryContextStrdup(result_context,
											 result.search_path ? result.search_path : "");
	return result;
}

/*
 * run_read_as_owner
 *		Run one read-only SELECT as the run's owner in a security-restricted
 *		operation, its rows going to dest.  An error ends the transaction,
 *		whose abort restores the identity and the settings.
 */
static void
run_read_as_owner(const RunReadQuery *read, DestReceiver *dest)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	SPIPlanPtr	plan;
	SPIExecuteOptions options;
	char	   *search_path;

	run_read_check_session();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(read->owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	/* the run's temporary objects come last: they cannot stand in for the owner's */
	search_path = psprintf("%s%spg_temp", read->search_path, read->search_path[0] ? ", " : "");
	(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	run_read_check_path();

	plan = SPI_prepare(read->query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for a batch inference read: %s",
			 SPI_result_code_string(SPI_result));
	if (!SPI_is_cursor_plan(plan))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a batch inference source must be one query that returns rows")));

	memset(&options, 0, sizeof(options));
	options.read_only = true;
	options.dest = dest;
	(void) SPI_execute_plan_extended(plan, &options);

	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * pg_ray_run_read
 *		ray._run_read(lo_page, hi_page, shard, shards): the rows of one
 *		partition of the calling run's source, each column as text.  Pages
 *		[lo_page, hi_page) of a table source (NULL bounds are open), or
 *		shard shard of shards of a query source, or the whole source.
 */
Datum
pg_ray_run_read(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		bounds[4];
	bool		bound_nulls[4];
	MemoryContext query_context;
	MemoryContext old_context;
	RunReadQuery read;
	Tuplestorestate *rows;
	DestReceiver *dest;
	int			i;

	pg_ray_require_current_schema();
	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize) || rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ray._run_read must be called in FROM with a column definition list")));
	for (i = 0; i < 4; i++)
	{
		bound_nulls[i] = PG_ARGISNULL(i);
		bounds[i] = bound_nulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
	}

	query_context = rsinfo->econtext->ecxt_per_query_memory;
	old_context = MemoryContextSwitchTo(query_context);
	rows = tuplestore_begin_heap(false, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(rsinfo->expectedDesc);
	MemoryContextSwitchTo(old_context);

	dest = CreateDestReceiver(DestTuplestore);
	SetTuplestoreDestReceiverParams(dest, rows, query_context, false, rsinfo->setDesc,
									gettext_noop("the columns of ray._run_read do not match the source's"));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	read = run_read_query_for(bounds, bound_nulls, CurrentMemoryContext);
	run_read_as_owner(&read, dest);
	SPI_finish();
	dest->rDestroy(dest);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = rows;
	return (Datum) 0;
}

/*
 * pg_ray_run_count
 *		ray._run_count(): how many rows the calling run's source has in the
 *		transaction's snapshot, counted as the owner.
 */
Datum
pg_ray_run_count(PG_FUNCTION_ARGS)
{
	Datum		bounds[4] = {0, 0, 0, 0};
	bool		bound_nulls[4] = {true, true, true, true};
	RunReadQuery read;
	Tuplestorestate *rows;
	TupleDesc	count_desc;
	TupleTableSlot *slot;
	DestReceiver *dest;
	bool		isnull;
	int64		count;

	pg_ray_require_current_schema();
	count_desc = CreateTemplateTupleDesc(1);
	TupleDescInitEntry(count_desc, (AttrNumber) 1, "count", INT8OID, -1, 0);
	rows = tuplestore_begin_heap(false, false, work_mem);
	dest = CreateDestReceiver(DestTuplestore);
	SetTuplestoreDestReceiverParams(dest, rows, CurrentMemoryContext, false, count_desc,
									gettext_noop("the count of a batch inference source is no bigint"));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	read = run_read_query_for(bounds, bound_nulls, CurrentMemoryContext);
	read.query = psprintf("SELECT count(*) FROM (%s) source", read.query);
	run_read_as_owner(&read, dest);
	SPI_finish();
	dest->rDestroy(dest);

	slot = MakeSingleTupleTableSlot(count_desc, &TTSOpsMinimalTuple);
	if (!tuplestore_gettupleslot(rows, true, false, slot))
		elog(ERROR, "counting a batch inference source returned no row");
	count = DatumGetInt64(slot_getattr(slot, 1, &isnull));
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(rows);
	PG_RETURN_INT64(count);
}
