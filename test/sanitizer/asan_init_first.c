/*-------------------------------------------------------------------------
 *
 * asan_init_first.c
 *		Lets the postgres executable start with AddressSanitizer preloaded.
 *
 * scripts/check-asan preloads the sanitizer's runtime into the server, so
 * that pg_ray.so, built with -fsanitize=address, runs under it.  The
 * runtime initializes itself on the first malloc it sees, and the first one
 * in the postgres executable comes from the constructor of libgpg-error (a
 * dependency of libsystemd), inside glibc's bindtextdomain, which holds
 * gettext's lock; the runtime's initialization then calls dlerror, which
 * takes the same lock, and the lock is left corrupted: the server hangs in
 * its own bindtextdomain before main does anything.  Preloaded after the
 * runtime, this library's bindtextdomain makes one allocation before it
 * calls glibc's, so the runtime initializes with no lock held.  It is for
 * that test harness only and is never installed.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  test/sanitizer/asan_init_first.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

char	   *bindtextdomain(const char *domainname, const char *dirname);

/*
 * bindtextdomain
 *		glibc's, after one allocation that initializes the sanitizer.
 */
char *
bindtextdomain(const char *domainname, const char *dirname)
{
	static char *(*glibc_bindtextdomain) (const char *, const char *) = NULL;
	void	   *volatile allocation = malloc(1);	/* volatile: not elided */

	free(allocation);
	if (glibc_bindtextdomain == NULL)
		*(void **) &glibc_bindtextdomain = dlsym(RTLD_NEXT, "bindtextdomain");
	return glibc_bindtextdomain(domainname, dirname);
}
