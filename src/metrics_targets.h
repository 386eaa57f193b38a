/*-------------------------------------------------------------------------
 *
 * metrics_targets.h
 *		The Prometheus targets file of local Ray nodes (metrics_targets.c).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/metrics_targets.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_METRICS_TARGETS_H
#define PG_RAY_METRICS_TARGETS_H

extern void pg_ray_metrics_targets_round(void);

#endif							/* PG_RAY_METRICS_TARGETS_H */
