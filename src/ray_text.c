/*-------------------------------------------------------------------------
 *
 * ray_text.c
 *		Text from Ray, in the database's encoding.
 *
 * Ray answers in UTF-8: job logs, messages, the autoscaler's report.  A
 * database in another encoding gets them converted, and a character the
 * encoding has no room for becomes "?": what a job printed is its own
 * business, and one character that a LATIN1 database cannot hold must not
 * fail the job's every answer, or the call that asked for it.  JSON that
 * is cast to jsonb (a node list, the autoscaler's report) has its \u
 * escapes of non-ASCII characters written out first: jsonb refuses, in
 * such a database, an escape of a character the encoding cannot hold.
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

/* Text is checked and converted this many bytes at a time, to bound the buffers. */
#define RAY_TEXT_SLICE 65536

static void ray_text_convert(StringInfo text, Oid conversion, int server, const char *utf8, int len);
static bool ray_text_hex4(const char *text, size_t len, pg_wchar *value);

/*
 * ray_text_to_server
 *		len bytes that should be UTF-8 (Ray's JSON, a node's log) in the
 *		database's encoding, palloc'd and NUL-terminated: "?" for each byte
 *		that is not valid UTF-8 (a log read from the middle of a character)
 *		and for each character the encoding cannot hold.  Needs a
 *		transaction when the database's encoding is neither UTF-8 nor
 *		SQL_ASCII (it looks up the conversion).
 */
char *
ray_text_to_server(const char *utf8, size_t len)
{
	int			server = GetDatabaseEncoding();
	Oid			conversion = InvalidOid;
	StringInfoData text;
	size_t		done = 0;

	if (server != PG_UTF8 && server != PG_SQL_ASCII)
		conversion = FindDefaultConversionProc(PG_UTF8, server);
	initStringInfo(&text);
	while (done < len)
	{
		/* the valid UTF-8 from here; a slice's end may cut a character, taken whole next time */
		int			valid = pg_encoding_verifymbstr(PG_UTF8, utf8 + done, (int) Min(len - done, RAY_TEXT_SLICE));

		if (valid == 0)
		{
			appendStringInfoChar(&text, '?');
			done++;
		}
		else if (server == PG_UTF8 || server == PG_SQL_ASCII)
		{
			appendBinaryStringInfo(&text, utf8 + done, valid);
			done += valid;
		}
		else
		{
			ray_text_convert(&text, conversion, server, utf8 + done, valid);
			done += valid;
		}
	}
	return text.data;
}

/*
 * ray_text_convert
 *		Append len bytes of valid UTF-8 in the server's encoding, "?" for a
 *		character it cannot hold (without a conversion: for anything but
 *		ASCII, all two encodings surely share).
 */
static void
ray_text_convert(StringInfo text, Oid conversion, int server, const char *utf8, int len)
{
	unsigned char *converted = palloc((Size) len * MAX_CONVERSION_GROWTH + 1);
	int			done = 0;

	while (done < len)
	{
		if (OidIsValid(conversion))
		{
			/* as far as it goes: it stops before a character it cannot convert */
			done += pg_do_encoding_conversion_buf(conversion, PG_UTF8, server,
												  (unsigned char *) utf8 + done, len - done,
												  converted, len * MAX_CONVERSION_GROWTH + 1, true);
			appendStringInfoString(text, (char *) converted);
		}
		if (done < len)
		{
			unsigned char c = (unsigned char) utf8[done];

			appendStringInfoChar(text, !OidIsValid(conversion) && !IS_HIGHBIT_SET(c) ? (char) c : '?');
			done += Min(pg_utf_mblen((const unsigned char *) utf8 + done), len - done);
		}
	}
	pfree(converted);
}

/*
 * ray_json_to_server
 *		JSON text from Ray, as ray_text_to_server gives text, with each \u
 *		escape of a character beyond ASCII (a surrogate pair taken whole)
 *		written as the character itself, then converted with the rest: "?"
 *		where the database's encoding cannot hold it.  Backslash escapes
 *		occur in JSON strings only, so no parsing is needed to find them.
 *		The escapes of ASCII characters (quotes, control characters) stay.
 */
char *
ray_json_to_server(const char *utf8, size_t len)
{
	StringInfoData plain;
	size_t		i = 0;

	if (GetDatabaseEncoding() == PG_UTF8)
		return ray_text_to_server(utf8, len);
	initStringInfo(&plain);
	while (i < len)
	{
		pg_wchar	code;
		pg_wchar	low;
		unsigned char character[8];

		if (utf8[i] != '\\' || i + 1 >= len)
		{
			appendStringInfoChar(&plain, utf8[i++]);
			continue;
		}
		if (utf8[i + 1] != 'u' || !ray_text_hex4(utf8 + i + 2, len - i - 2, &code) || code < 0x80)
		{
			appendBinaryStringInfo(&plain, utf8 + i, 2);
			i += 2;
			continue;
		}
		i += 6;
		if (code >= 0xD800 && code <= 0xDBFF && i + 6 <= len && utf8[i] == '\\' && utf8[i + 1] == 'u' &&
			ray_text_hex4(utf8 + i + 2, len - i - 2, &low) && low >= 0xDC00 && low <= 0xDFFF)
		{
			code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
			i += 6;
		}
		if (code >= 0xD800 && code <= 0xDFFF)
		{
			/* half of a pair: no character */
			appendStringInfoChar(&plain, '?');
			continue;
		}
		unicode_to_utf8(code, character);
		appendBinaryStringInfo(&plain, (char *) character, pg_utf_mblen(character));
	}
	return ray_text_to_server(plain.data, plain.len);
}

/*
 * ray_text_hex4
 *		The value of the four hexadecimal digits text starts with, if it
 *		has them.
 */
static bool
ray_text_hex4(const char *text, size_t len, pg_wchar *value)
{
	*value = 0;
	if (len < 4)
		return false;
	for (int i = 0; i < 4; i++)
	{
		char		c = text[i];

		if (c >= '0' && c <= '9')
			*value = (*value << 4) | (pg_wchar) (c - '0');
		else if (c >= 'a' && c <= 'f')
			*value = (*value << 4) | (pg_wchar) (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*value = (*value << 4) | (pg_wchar) (c - 'A' + 10);
		else
			return false;
	}
	return true;
}
