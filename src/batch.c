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

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"

#include "schema_version.h"

PG_FUNCTION_INFO_V1(pg_ray_describe_query);
PG_FUNCTION_INFO_V1(pg_ray_canonical_type);

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
	desc = source->resultDesc;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(NameStr(attr->attname));
		values[1] = CStringGetTextDatum(format_type_with_typemod(attr->atttypid, attr->atttypmod));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * pg_ray_canonical_type
 *		ray._canonical_type(type_name): the type a stored batch inference
 *		plan names, written again by format_type, or an error.  The text is
 *		read by PostgreSQL's parser as a type name and nothing else (any
 *		other SQL is a syntax error), and must name a type a column can
 *		have.  What comes back is safe to put into a CREATE TABLE: the
 *		worker builds the staging table and the target from it.
 */
Datum
pg_ray_canonical_type(PG_FUNCTION_ARGS)
{
	char	   *type_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			type_oid;
	int32		typmod;
	char		type_type;

	pg_ray_require_current_schema();
	parseTypeString(type_name, &type_oid, &typmod, false);
	type_type = get_typtype(type_oid);
	if (type_type == TYPTYPE_PSEUDO || !get_typisdefined(type_oid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("type %s cannot be the type of a column", format_type_be(type_oid))));
	PG_RETURN_TEXT_P(cstring_to_text(format_type_with_typemod(type_oid, typmod)));
}
