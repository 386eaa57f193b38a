/*-------------------------------------------------------------------------
 *
 * fault.h
 *		Fault points of the background worker, for tests (fault.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/fault.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_FAULT_H
#define PG_RAY_FAULT_H

extern void pg_ray_fault_point(const char *point);

#endif							/* PG_RAY_FAULT_H */
