/*-------------------------------------------------------------------------
 *
 * batch.c
 *		What batch inference needs from the parser: the columns of a source
 *		query.
 *
 * ray.batch_inference takes its source as a table or as a query.  For a
 * query, the columns it yields (names and types) decide the default input
 * columns and the types of the key columns in the target, and they must be
 * known before anything runs.  The parser and analyzer know them without
 * executing the query; plpgsql cannot ask them, so this small function
 * does, as the calling role.  It also makes sure that the source is one
 * plain SELECT, since the runner embeds it as a subquery.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/batch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/plancache.h"

#include "schema_version.h"

PG_FUNCTION_INFO_V1(pg_ray_describe_query);

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
