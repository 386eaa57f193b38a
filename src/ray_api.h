/*-------------------------------------------------------------------------
 *
 * ray_api.h
 *		Requests to Ray's Jobs REST API.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/ray_api.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_RAY_API_H
#define PG_RAY_RAY_API_H

#include "http.h"

/* How to reach one Ray dashboard. */
typedef struct RayEndpoint
{
	char	   *url;			/* no trailing slash */
	char	   *token;			/* or NULL */
	char	   *ca_file;		/* or NULL */
} RayEndpoint;

extern PgRayHttpRequest *ray_api_request(const RayEndpoint *endpoint, const char *method,
										 const char *path_format,...) pg_attribute_printf(3, 4);

#endif							/* PG_RAY_RAY_API_H */
