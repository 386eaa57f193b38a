/*-------------------------------------------------------------------------
 *
 * schema_version.c
 *		Which version of pg_ray's schema is installed, and the refusal of
 *		the library to work on any but the one it was built for.
 *
 * A package upgrade puts a new library in place at the next server start,
 * while the schema (tables, SQL functions) changes only when the DBA runs
 * ALTER EXTENSION pg_ray UPDATE.  Until then the library would run its
 * statements against tables and functions of another version.  So the
 * worker leaves the catalog alone while the schema is not the library's
 * (worker_round.c), and the SQL functions written in C refuse with the same
 * message, which says what to run.  Three stay usable under any schema:
 * ray._calling_role and ray._wakeup_trigger, which every version's SQL
 * calls and which do the same in every version, and ray.worker_status,
 * which is how the DBA reads what the worker is waiting for.
 *
 * PG_RAY_VERSION comes from the Makefile (the newest of PG_RAY_VERSIONS).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/schema_version.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "schema_version.h"

#if !defined(PG_RAY_VERSION) || !defined(PG_RAY_EARLIER_VERSIONS)
#error "PG_RAY_VERSION and PG_RAY_EARLIER_VERSIONS must be defined by the Makefile"
#endif

static bool schema_is_older(const char *installed);


/*
 * pg_ray_installed_version
 *		The version of pg_ray installed in this database (palloc'd), or NULL
 *		if it is not installed.  Needs a transaction.
 */
char *
pg_ray_installed_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pg_ray"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, Anum_pg_extension_extversion,
										 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(value));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * pg_ray_schema_is_current
 *		Whether the installed version is the one this library was built for.
 */
bool
pg_ray_schema_is_current(const char *installed)
{
	return installed != NULL && strcmp(installed, PG_RAY_VERSION) == 0;
}

/*
 * pg_ray_report_old_schema
 *		Say, at elevel, that the installed schema is not this library's, and
 *		what to do: update the schema, or, if it is newer than the library
 *		(a package downgraded), install the library of its version.
 */
void
pg_ray_report_old_schema(int elevel, const char *installed)
{
	ereport(elevel,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pg_ray library %s needs schema version %s, found %s",
					PG_RAY_VERSION, PG_RAY_VERSION, installed),
			 schema_is_older(installed) ?
			 errhint("Run ALTER EXTENSION pg_ray UPDATE.") :
			 errhint("Install the pg_ray package of version %s, or update the schema to %s.",
					 installed, PG_RAY_VERSION)));
}

/*
 * pg_ray_require_current_schema
 *		For the SQL functions written in C: an error unless the installed
 *		schema is the library's.  They are members of the extension, so it
 *		is installed whenever they are called (CREATE and ALTER EXTENSION
 *		set the version before their script runs).
 */
void
pg_ray_require_current_schema(void)
{
	char	   *installed = pg_ray_installed_version();

	if (!pg_ray_schema_is_current(installed))
		pg_ray_report_old_schema(ERROR, installed ? installed : "none");
	pfree(installed);
}

/*
 * schema_is_older
 *		Whether the installed version is one this library's update scripts
 *		start from (PG_RAY_EARLIER_VERSIONS, words separated by spaces).
 */
static bool
schema_is_older(const char *installed)
{
	const char *word = PG_RAY_EARLIER_VERSIONS;
	size_t		length = strlen(installed);

	while (*word != '\0')
	{
		const char *end = strchrnul(word, ' ');

		if ((size_t) (end - word) == length && strncmp(word, installed, length) == 0)
			return true;
		word = (*end == ' ') ? end + 1 : end;
	}
	return false;
}
