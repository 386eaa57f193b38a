/*-------------------------------------------------------------------------
 *
 * ray_json.h
 *		jansson, reached through a table of functions.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/ray_json.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAY_JSON_H
#define RAY_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The jansson functions pg_ray uses. */
typedef struct RayJson
{
	json_t	   *(*loadb) (const char *buffer, size_t buflen, size_t flags, json_error_t *error);
	void		(*delete_value) (json_t *json);
	json_t	   *(*object_get) (const json_t *object, const char *key);
	size_t		(*array_size) (const json_t *array);
	json_t	   *(*array_get) (const json_t *array, size_t index);
	const char *(*string_value) (const json_t *string);
	size_t		(*string_length) (const json_t *string);
	json_int_t	(*integer_value) (const json_t *integer);
	double		(*real_value) (const json_t *real);
} RayJson;

extern RayJson ray_json;

extern bool ray_json_load(char *errbuf, size_t errlen);

/* json_decref, through the table. */
static inline void
ray_json_decref(json_t *json)
{
	if (json && json->refcount != (size_t) -1 && JSON_INTERNAL_DECREF(json) == 0)
		ray_json.delete_value(json);
}

#endif							/* RAY_JSON_H */
