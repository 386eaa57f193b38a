/*-------------------------------------------------------------------------
 *
 * tap.h
 *		The few lines of TAP the unit tests print: one "ok N - name" or
 *		"not ok N - name" per check, then the plan "1..N".
 *
 * Each test program includes it once; scripts/test counts the lines.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/unit/tap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>

static int	tap_test_number = 0;
static int	tap_failures = 0;

/*
 * ok
 *		Report one check.
 */
static void
ok(int condition, const char *name)
{
	tap_test_number++;
	if (!condition)
		tap_failures++;
	printf("%sok %d - %s\n", condition ? "" : "not ", tap_test_number, name);
}

/*
 * tap_done
 *		Print the plan; the program's exit status, 0 when every check held.
 */
static int
tap_done(void)
{
	printf("1..%d\n", tap_test_number);
	return tap_failures == 0 ? 0 : 1;
}

#endif							/* TAP_H */
