/*-------------------------------------------------------------------------
 *
 * identity.h
 *		Who is calling (identity.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/identity.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_IDENTITY_H
#define PG_RAY_IDENTITY_H

extern void pg_ray_refuse_restricted_operation(void);

#endif							/* PG_RAY_IDENTITY_H */
