/*-------------------------------------------------------------------------
 *
 * ray_text.c
 *		Text from Ray, in the database's encoding.
 *
 * Ray answers in UTF-8: job logs, messages, the autoscaler's report.  A
 * database in another encoding gets them converted, and a character the
 * encoding has no room for becomes "?": what a job printed is its own
 * business, and one character that a LATIN1 database cannot hold must not
 * fail the job's every answer, or the call that asked for it.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/ray_text.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#include "ray_text.h"

/*
 * ray_text_to_server
 *		len bytes of UTF-8 (valid: Ray's JSON, as jansson checked it) in the
 *		database's encoding, palloc'd and NUL-terminated, with "?" for each
 *		character it cannot hold.  Needs a transaction when the database's
 *		encoding is neither UTF-8 nor SQL_ASCII (it looks up the conversion).
 */
char *
ray_text_to_server(const char *utf8, size_t len)
{
	int			server = GetDatabaseEncoding();
	Oid			conversion;
	StringInfoData text;
	unsigned char *converted;
	size_t		done = 0;

	if (server == PG_UTF8 || server == PG_SQL_ASCII)
		return pg_any_to_server(utf8, (int) len, PG_UTF8);

	conversion = FindDefaultConversionProc(PG_UTF8, server);
	initStringInfo(&text);
	converted = palloc(len * MAX_CONVERSION_GROWTH + 1);
	while (done < len)
	{
		if (OidIsValid(conversion))
		{
			int			taken;

			/* as far as it goes: it stops before a character it cannot convert */
			taken = pg_do_encoding_conversion_buf(conversion, PG_UTF8, server,
												  (unsigned char *) utf8 + done, (int) (len - done),
												  converted, (int) ((len - done) * MAX_CONVERSION_GROWTH + 1),
												  true);
			appendStringInfoString(&text, (char *) converted);
			done += taken;
		}
		if (done < len)
		{
			unsigned char c = (unsigned char) utf8[done];

			/* without a conversion, ASCII is all two encodings surely share */
			appendStringInfoChar(&text, !OidIsValid(conversion) && !IS_HIGHBIT_SET(c) ? (char) c : '?');
			done += Min((size_t) pg_utf_mblen((const unsigned char *) utf8 + done), len - done);
		}
	}
	pfree(converted);
	return text.data;
}
