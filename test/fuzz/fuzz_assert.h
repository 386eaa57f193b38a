/*-------------------------------------------------------------------------
 *
 * fuzz_assert.h
 *		How the fuzzers state what must hold of every input.
 *
 * An invariant that does not hold is a crash: libFuzzer saves the input
 * that broke it and stops.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_assert.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_ASSERT_H
#define FUZZ_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(condition) \
	do { \
		if (!(condition)) \
		{ \
			fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", \
					#condition, __FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)

#endif							/* FUZZ_ASSERT_H */
