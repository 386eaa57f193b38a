/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *		SPI helpers of the background worker: one statement, and one piece
 *		of work in a subtransaction of its own.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/spi_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_RAY_SPI_UTIL_H
#define PG_RAY_SPI_UTIL_H

#include "postgres.h"

extern void pg_ray_spi_exec(const char *sql, int nargs, Oid *types, Datum *values,
							const char *nulls);
extern void pg_ray_spi_exec_within(int timeout_ms, const char *sql, int nargs, Oid *types,
								   Datum *values, const char *nulls);
extern ErrorData *pg_ray_subtransaction(void (*work) (void *arg), void *arg);
extern void pg_ray_worker_transaction_limits(void);

#endif							/* PG_RAY_SPI_UTIL_H */
