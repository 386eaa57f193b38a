/*-------------------------------------------------------------------------
 *
 * ray_text.h
 *		Text from Ray, in the database's encoding (ray_text.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/ray_text.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_RAY_TEXT_H
#define PG_RAY_RAY_TEXT_H

extern char *ray_text_to_server(const char *utf8, size_t len);
extern char *ray_json_to_server(const char *utf8, size_t len);

#endif							/* PG_RAY_RAY_TEXT_H */
