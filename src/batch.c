/*-------------------------------------------------------------------------
 *
 * batch.c
 *		What batch inference needs from the parser: the columns of a source
 *		query, and the types a stored plan names, read as type names only.
 *
 * ray.batch_inference takes its source as a table or as a query.  For a
 * query, the columns it yields (names and types) decide the default input
 * columns and the types of the key columns in the target, and they must be
 * known before anything runs.  The parser and analyzer know them without
 * executing the query; plpgsql cannot ask them, so this small function
 * does, as the calling role.  It also makes sure that the source is one
 * plain SELECT, since the runner embeds it as a subquery.
 *
 * A stored plan is data anyone with the right to submit could have
 * written, and the worker builds tables from the types it names: those
 * types go through the parser's type-name grammar, which accepts a type
 * name and no other SQL (ray._canonical_plan).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/batch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/syscache.h"

#include "schema_version.h"

PG_FUNCTION_INFO_V1(pg_ray_describe_query);
PG_FUNCTION_INFO_V1(pg_ray_canonical_type);
PG_FUNCTION_INFO_V1(pg_ray_format_type);

static char *batch_format_type(Oid type_oid, int32 typmod, bool typmod_given);
static Oid	batch_type_namespace(Oid type_oid);

/*
 * batch_query_writes_or_locks
 *		True if the query, or any query inside it (a subquery, a sublink, a
 *		CTE, a view's body after rewriting), has a data-modifying WITH or a
 *		locking clause: a source is read once per partition as its owner,
 *		and must neither write nor lock.
 */
static bool
batch_query_writes_or_locks(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *query = (Query *) node;

		if (query->hasModifyingCTE || query->rowMarks != NIL)
			return true;
		return query_tree_walker(query, batch_query_writes_or_locks, context, 0);
	}
	return expression_tree_walker(node, batch_query_writes_or_locks, context);
}

/*
 * pg_ray_describe_query
 *		ray._describe_query(query): one row (column_name, data_type) per
 *		column the query yields, in order, with its type as format_type
 *		writes it.  Nothing is executed; privileges are checked when the
 *		query runs.
 */
Datum
pg_ray_describe_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query;
	SPIPlanPtr	plan;
	List	   *sources;
	CachedPlanSource *source;
	RawStmt    *raw;
	TupleDesc	desc;

	pg_ray_require_current_schema();

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source query must not be null")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));

	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the source query: %s",
			 SPI_result_code_string(SPI_result));
	sources = SPI_plan_get_plan_sources(plan);
	if (list_length(sources) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source query must be one statement"),
				 errdetail("It has %d.", list_length(sources))));
	source = (CachedPlanSource *) linitial(sources);
	raw = source->raw_parse_tree;
	if (raw == NULL || !IsA(raw->stmt, SelectStmt) ||
		((SelectStmt *) raw->stmt)->intoClause != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source query must be a SELECT"),
				 errdetail("A source is a table name or a query that reads rows, such as SELECT * FROM impressions WHERE day = current_date."),
				 errhint("SELECT INTO and data-modifying statements cannot be sources.")));
	/* a WITH that writes, or FOR UPDATE, would write or lock as the owner in every read */
	if (list_length(source->query_list) != 1 ||
		batch_query_writes_or_locks((Node *) linitial(source->query_list), NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source query must only read"),
				 errdetail("A source cannot have a data-modifying WITH or a locking clause such as FOR UPDATE."),
				 errhint("Write or lock in a statement of your own before the run.")));
	desc = source->resultDesc;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(NameStr(attr->attname));
		values[1] = CStringGetTextDatum(batch_format_type(attr->atttypid, attr->atttypmod, true));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * batch_format_type
 *		A type as format_type writes it, qualified with its schema unless it
 *		is a built-in type of pg_catalog, so that the name means the same
 *		type under any search_path: the planner writes it under the
 *		caller's, the worker reads it again under its own.
 */
static char *
batch_format_type(Oid type_oid, int32 typmod, bool typmod_given)
{
	bits16		flags = typmod_given ? FORMAT_TYPE_TYPEMOD_GIVEN : 0;

	if (batch_type_namespace(type_oid) != PG_CATALOG_NAMESPACE)
		flags |= FORMAT_TYPE_FORCE_QUALIFY;
	return format_type_extended(type_oid, typmod, flags);
}

/*
 * batch_type_namespace
 *		The schema of a type.
 */
static Oid
batch_type_namespace(Oid type_oid)
{
	HeapTuple	tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type_oid));
	Oid			namespace;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for type %u", type_oid);
	namespace = ((Form_pg_type) GETSTRUCT(tuple))->typnamespace;
	ReleaseSysCache(tuple);
	return namespace;
}

/*
 * pg_ray_format_type
 *		ray._format_type(type, typmod): format_type(type, typmod) as the
 *		batch inference planner writes types into a plan (see
 *		batch_format_type); a NULL typmod as format_type takes it.
 */
Datum
pg_ray_format_type(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(batch_format_type(PG_GETARG_OID(0),
													   PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1),
													   !PG_ARGISNULL(1))));
}

/*
 * batch_check_column_type
 *		An error unless the type can be a column of a table the worker owns
 *		(a staging table), whatever runs on its values there.  Pseudo-types
 *		and shells cannot be columns.  A range type's subtype_diff function
 *		runs when the table is analyzed, as the table's owner, the bootstrap
 *		superuser: a range or multirange type is taken only from pg_catalog,
 *		also as the element of an array or the base of a domain.  (Users
 *		cannot make base types or operator classes; the other code a type
 *		can carry, a domain's checks, runs as whoever writes the values.)
 */
static void
batch_check_column_type(Oid type_oid)
{
	Oid			inner = type_oid;
	char		type_type = get_typtype(type_oid);

	if (type_type == TYPTYPE_PSEUDO || !get_typisdefined(type_oid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("type %s cannot be the type of a column", format_type_be(type_oid))));
	for (;;)
	{
		Oid			element;

		inner = getBaseType(inner);
		element = get_element_type(inner);
		if (!OidIsValid(element))
			break;
		inner = element;
	}
	type_type = get_typtype(inner);
	if ((type_type == TYPTYPE_RANGE || type_type == TYPTYPE_MULTIRANGE) &&
		batch_type_namespace(inner) != PG_CATALOG_NAMESPACE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("type %s cannot be the type of a column of a batch inference run",
						format_type_be(type_oid)),
				 errdetail("The run's staging table belongs to the superuser the worker runs as, and analyzing it "
						   "would run %s's functions as that superuser; only built-in range types are taken.",
						   format_type_be(inner)),
				 errhint("Cast the column to text or to a built-in range type in a source query.")));
}

/*
 * pg_ray_canonical_type
 *		ray._canonical_type(type_name): the type a stored batch inference
 *		plan names, written again as the planner writes it, or an error.
 *		The text is read by PostgreSQL's parser as a type name and nothing
 *		else (any other SQL is a syntax error), and must name a type a
 *		column of the worker's can have (batch_check_column_type).  What
 *		comes back is safe to put into a CREATE TABLE: the worker builds the
 *		staging table and the target from it.
 */
Datum
pg_ray_canonical_type(PG_FUNCTION_ARGS)
{
	char	   *type_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			type_oid;
	int32		typmod;

	pg_ray_require_current_schema();
	parseTypeString(type_name, &type_oid, &typmod, false);
	batch_check_column_type(type_oid);
	PG_RETURN_TEXT_P(cstring_to_text(batch_format_type(type_oid, typmod, true)));
}
