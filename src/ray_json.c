/*-------------------------------------------------------------------------
 *
 * ray_json.c
 *		jansson, loaded so that it calls its own functions.
 *
 * The postgres executable exports a function named json_object (the SQL
 * function of that name).  jansson calls its own json_object() while it
 * parses, and with jansson linked as a shared library the dynamic linker
 * binds that call to PostgreSQL's function first: the backend crashes on the
 * first JSON object it parses.  So in the server pg_ray does not link
 * jansson; it loads it with RTLD_DEEPBIND, which makes jansson's own symbols
 * win inside jansson, and reaches it through a table of functions.  Unit
 * tests and fuzzers, which run outside PostgreSQL, build with
 * RAY_JSON_DIRECT and fill the same table with the linked functions.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/ray_json.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAY_JSON_DIRECT
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#endif
#include <stdio.h>

#include "ray_json.h"

RayJson		ray_json;
static bool ray_json_loaded = false;

#ifdef RAY_JSON_DIRECT

/*
 * ray_json_load
 *		Outside the server: the functions jansson was linked with.
 */
bool
ray_json_load(char *errbuf, size_t errlen)
{
	(void) errbuf;
	(void) errlen;
	if (ray_json_loaded)
		return true;
	ray_json.loadb = json_loadb;
	ray_json.delete_value = json_delete;
	ray_json.object_get = json_object_get;
	ray_json.array_size = json_array_size;
	ray_json.array_get = json_array_get;
	ray_json.string_value = json_string_value;
	ray_json.string_length = json_string_length;
	ray_json.integer_value = json_integer_value;
	ray_json.real_value = json_real_value;
	ray_json_loaded = true;
	return true;
}

#else

/*
 * ray_json_symbol
 *		One function of the loaded jansson, or NULL with the reason.
 */
static void *
ray_json_symbol(void *handle, const char *name, char *errbuf, size_t errlen)
{
	void	   *symbol = dlsym(handle, name);

	if (symbol == NULL)
		snprintf(errbuf, errlen, "jansson has no %s", name);
	return symbol;
}

/*
 * ray_json_dlopen
 *		dlopen, but in a build with AddressSanitizer the C library's own: the
 *		sanitizer's dlopen refuses RTLD_DEEPBIND, because a library bound to
 *		itself allocates with the C library's malloc instead of the
 *		sanitizer's.  That is harmless for jansson, whose values only jansson
 *		frees, and it is what lets the extension run under the sanitizer
 *		(make check-asan).
 */
static void *
ray_json_dlopen(const char *file, int mode)
{
#ifdef __SANITIZE_ADDRESS__
	void	   *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	void	   *(*libc_dlopen) (const char *, int) = NULL;

	if (libc != NULL)
		*(void **) &libc_dlopen = dlsym(libc, "dlopen");
	if (libc_dlopen != NULL)
		return libc_dlopen(file, mode);
#endif
	return dlopen(file, mode);
}

/*
 * ray_json_load
 *		In the server: load libjansson once, binding it to itself.  On
 *		failure the reason is in errbuf and parsing reports it.
 */
bool
ray_json_load(char *errbuf, size_t errlen)
{
	void	   *handle;

	if (ray_json_loaded)
		return true;
	handle = ray_json_dlopen("libjansson.so.4", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	if (handle == NULL)
	{
		snprintf(errbuf, errlen, "could not load libjansson.so.4: %s", dlerror());
		return false;
	}
	if ((ray_json.loadb = ray_json_symbol(handle, "json_loadb", errbuf, errlen)) == NULL ||
		(ray_json.delete_value = ray_json_symbol(handle, "json_delete", errbuf, errlen)) == NULL ||
		(ray_json.object_get = ray_json_symbol(handle, "json_object_get", errbuf, errlen)) == NULL ||
		(ray_json.array_size = ray_json_symbol(handle, "json_array_size", errbuf, errlen)) == NULL ||
		(ray_json.array_get = ray_json_symbol(handle, "json_array_get", errbuf, errlen)) == NULL ||
		(ray_json.string_value = ray_json_symbol(handle, "json_string_value", errbuf, errlen)) == NULL ||
		(ray_json.string_length = ray_json_symbol(handle, "json_string_length", errbuf, errlen)) == NULL ||
		(ray_json.integer_value = ray_json_symbol(handle, "json_integer_value", errbuf, errlen)) == NULL ||
		(ray_json.real_value = ray_json_symbol(handle, "json_real_value", errbuf, errlen)) == NULL)
		return false;
	ray_json_loaded = true;
	return true;
}

#endif
