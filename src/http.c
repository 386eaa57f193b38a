/*-------------------------------------------------------------------------
 *
 * http.c
 *		pg_ray's one HTTP driver, over libcurl.
 *
 * Two ways in, one way of setting up a request.  A backend answering a SQL
 * call (registering a cluster, reading a live log) performs one request and
 * blocks, still answering query cancel.  The background worker drives many
 * requests at once through libcurl's multi interface: their sockets join
 * the worker's latch in one WaitEventSet, so the worker keeps waking on its
 * latch while requests are in flight and a slow cluster never stalls the
 * others.
 *
 * Every request: a timeout, no redirects (they would carry the token
 * elsewhere), http and https only, TLS verification on, a bounded response,
 * and none of the headers Ray's dashboard takes for a browser (Origin,
 * Referer, a Mozilla user agent).  Connection errors and 5xx answers are
 * retried with exponential backoff and jitter, up to max_tries.
 *
 * libcurl calls back into this file; nothing here ereports from inside a
 * callback (a longjmp through libcurl would corrupt it).  Callbacks only
 * malloc and set flags; errors are raised afterwards, in our own frames.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "http.h"

#define PG_RAY_USER_AGENT "pg_ray/" PG_RAY_VERSION

/* Connections of the worker to Ray at once (see http_multi_init). */
#define HTTP_MAX_CONNECTIONS 64

/* One socket libcurl asked us to watch, and for what. */
typedef struct HttpSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} HttpSocket;

static CURLM *http_multi = NULL;
static HttpSocket *http_sockets = NULL;
static int	http_socket_count = 0;
static int	http_socket_capacity = 0;
static bool http_socket_table_failed = false;
static TimestampTz http_curl_deadline = 0;	/* 0: libcurl wants no timer */

static PgRayHttpRequest *http_running = NULL;	/* added to the multi handle */
static PgRayHttpRequest *http_waiting_retry = NULL;
static PgRayHttpRequest *http_done = NULL;

static void http_global_init(void);
static void http_free_headers(struct curl_slist *headers);
static char *http_strdup(const char *s);
static void http_prepare(PgRayHttpRequest *req);
static void http_finish_try(PgRayHttpRequest *req, CURLcode code);
static bool http_should_retry(const PgRayHttpRequest *req);
static long http_backoff_ms(int tries);
static void http_list_remove(PgRayHttpRequest **list, PgRayHttpRequest *req);
static void http_push(PgRayHttpRequest **list, PgRayHttpRequest *req);
static void http_collect_completions(void);
static void http_start_due_retries(void);

/*
 * http_global_init
 *		libcurl's global state, once per process.
 */
static void
http_global_init(void)
{
	static bool initialized = false;

	if (initialized)
		return;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "could not initialize libcurl");
	initialized = true;
}

/*
 * http_strdup
 *		malloc'd copy of s, or an error; never called from a callback.
 */
static char *
http_strdup(const char *s)
{
	char	   *copy;

	if (s == NULL)
		return NULL;
	copy = strdup(s);
	if (copy == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return copy;
}

/*
 * pg_ray_http_request_new
 *		A request with the defaults: 10 s timeout, 3 tries, 8 MB response.
 */
PgRayHttpRequest *
pg_ray_http_request_new(const char *method, const char *url)
{
	PgRayHttpRequest *req = calloc(1, sizeof(PgRayHttpRequest));

	if (req == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	req->method = method;
	req->url = http_strdup(url);
	req->timeout_ms = 10000;
	req->max_tries = 3;
	req->max_response_bytes = 8 * 1024 * 1024;
	return req;
}

/*
 * pg_ray_http_request_set_body
 *		Attach a body (copied) with its content type.
 */
void
pg_ray_http_request_set_body(PgRayHttpRequest *req, const char *body, size_t len,
							 const char *content_type)
{
	free(req->body);
	req->body = malloc(len > 0 ? len : 1);
	if (req->body == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	memcpy(req->body, body, len);
	req->body_len = len;
	req->content_type = content_type;
}

/*
 * pg_ray_http_request_free
 *		Release a request that is not (or no longer) being driven, wiping the
 *		token (and the header that carries it) so that it does not linger in
 *		freed memory.
 */
void
pg_ray_http_request_free(PgRayHttpRequest *req)
{
	if (req == NULL)
		return;
	if (req->easy)
		curl_easy_cleanup(req->easy);
	http_free_headers(req->headers);
	if (req->bearer_token)
	{
		explicit_bzero(req->bearer_token, strlen(req->bearer_token));
		free(req->bearer_token);
	}
	free(req->url);
	free(req->body);
	free(req->ca_file);
	free(req->response);
	free(req);
}

/*
 * http_free_headers
 *		Free a header list, wiping each header first: one of them carries the
 *		token.
 */
static void
http_free_headers(struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	if (headers)
		curl_slist_free_all(headers);
}

/*
 * http_write_callback
 *		libcurl hands us response bytes.  Keep them, up to the limit; past it,
 *		tell libcurl to abort the transfer.  Never ereports.
 */
static size_t
http_write_callback(char *data, size_t size, size_t nmemb, void *userp)
{
	PgRayHttpRequest *req = (PgRayHttpRequest *) userp;
	size_t		n = size * nmemb;
	char	   *grown;

	if (req->response_len + n > req->max_response_bytes)
	{
		req->response_too_large = true;
		return 0;
	}
	grown = realloc(req->response, req->response_len + n + 1);
	if (grown == NULL)
		return 0;
	req->response = grown;
	memcpy(req->response + req->response_len, data, n);
	req->response_len += n;
	req->response[req->response_len] = '\0';
	return n;
}

/*
 * http_progress_callback
 *		A blocking request gives up when the backend is asked to cancel or
 *		die; the interrupt itself is then served by CHECK_FOR_INTERRUPTS in
 *		pg_ray_http_perform.  Never ereports.
 */
static int
http_progress_callback(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
					   curl_off_t ultotal, curl_off_t ulnow)
{
	/* not any interrupt: barriers and the like are served after the request */
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

/*
 * http_prepare
 *		Build the easy handle of a request for its next try.  This is the one
 *		place where what pg_ray sends is decided.
 */
static void
http_prepare(PgRayHttpRequest *req)
{
	CURL	   *easy;
	struct curl_slist *headers = NULL;
	char		header[1024];

	http_global_init();
	if (req->easy)
		curl_easy_cleanup(req->easy);
	http_free_headers(req->headers);
	req->easy = NULL;
	req->headers = NULL;
	free(req->response);
	req->response = NULL;
	req->response_len = 0;
	req->response_too_large = false;
	req->status = 0;
	req->curl_code = CURLE_OK;
	req->error[0] = '\0';

	easy = curl_easy_init();
	if (easy == NULL)
		elog(ERROR, "could not create a libcurl handle");
	req->easy = easy;

	headers = curl_slist_append(headers, "Accept: application/json");
	/* no "Expect: 100-continue" round trip before a body */
	headers = headers ? curl_slist_append(headers, "Expect:") : NULL;
	if (headers && req->body)
	{
		snprintf(header, sizeof(header), "Content-Type: %s",
				 req->content_type ? req->content_type : "application/json");
		headers = curl_slist_append(headers, header);
	}
	if (headers && req->bearer_token)
	{
		char	   *auth = psprintf("Authorization: Bearer %s", req->bearer_token);

		headers = curl_slist_append(headers, auth);
		explicit_bzero(auth, strlen(auth));
		pfree(auth);
	}
	if (headers == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	req->headers = headers;

	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, PG_RAY_USER_AGENT);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, Min(req->timeout_ms, 5000L));
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	if (req->fresh_connection)
	{
		/*
		 * libcurl silently sends a request again when a reused connection
		 * turns out dead; for a request that must go out at most once, use
		 * a connection of its own.
		 */
		curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
	}
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (req->ca_file)
		curl_easy_setopt(easy, CURLOPT_CAINFO, req->ca_file);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->error);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_write_callback);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
	curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, http_progress_callback);
	curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);

	if (strcmp(req->method, "GET") == 0)
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	else
	{
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) (req->body ? req->body_len : 0));
	}
}

/*
 * http_finish_try
 *		Record the outcome of one try.
 */
static void
http_finish_try(PgRayHttpRequest *req, CURLcode code)
{
	req->tries++;
	req->curl_code = code;
	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
	if (code != CURLE_OK && req->error[0] == '\0')
		strlcpy(req->error, curl_easy_strerror(code), sizeof(req->error));
}

/*
 * http_should_retry
 *		Connection trouble and server errors may pass; answers such as 404
 *		or 400 will not, and neither will a response that was too large.
 */
static bool
http_should_retry(const PgRayHttpRequest *req)
{
	if (req->tries >= req->max_tries || req->response_too_large)
		return false;
	switch (req->curl_code)
	{
		case CURLE_OK:
			return req->status >= 500;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_PARTIAL_FILE:
			return true;
		default:
			return false;
	}
}

/*
 * http_backoff_ms
 *		Exponential backoff with full jitter: a random wait up to
 *		200 ms * 2^(tries-1), capped at 5 s, so that many requests that
 *		failed together do not retry together.
 */
static long
http_backoff_ms(int tries)
{
	long		ceiling = 200L << Min(tries - 1, 5);

	ceiling = Min(ceiling, 5000L);
	return 50 + (long) (pg_prng_double(&pg_global_prng_state) * ceiling);
}

/*
 * pg_ray_http_succeeded
 *		A response arrived whole with a 2xx status.
 */
bool
pg_ray_http_succeeded(const PgRayHttpRequest *req)
{
	return req->curl_code == CURLE_OK && req->status >= 200 && req->status < 300;
}

/*
 * pg_ray_http_describe_failure
 *		One line saying what went wrong with a request, for messages and
 *		logs.  Never includes the token.
 */
const char *
pg_ray_http_describe_failure(const PgRayHttpRequest *req, char *buf, size_t buflen)
{
	if (req->response_too_large)
		snprintf(buf, buflen, "%s %s: the response exceeded %zu bytes",
				 req->method, req->url, req->max_response_bytes);
	else if (req->curl_code != CURLE_OK)
		snprintf(buf, buflen, "%s %s: %s (after %d %s)", req->method, req->url,
				 req->error, req->tries, req->tries == 1 ? "try" : "tries");
	else
	{
		char		excerpt[201];
		size_t		n = 0;

		/* the start of the body, on one line, as Ray often explains itself there */
		/* printable ASCII only: it goes into messages in any encoding */
		for (size_t i = 0; req->response && i < req->response_len && n < sizeof(excerpt) - 1; i++)
		{
			unsigned char c = (unsigned char) req->response[i];

			excerpt[n++] = (c >= 0x20 && c < 0x7f) ? (char) c : ' ';
		}
		excerpt[n] = '\0';
		snprintf(buf, buflen, "%s %s: HTTP %ld%s%s", req->method, req->url, req->status,
				 n > 0 ? ": " : "", excerpt);
	}
	return buf;
}

/*
 * pg_ray_http_perform
 *		Run a request to its end in this backend, retrying as the request
 *		allows.  Query cancel and termination abort it.
 */
void
pg_ray_http_perform(PgRayHttpRequest *req)
{
	for (;;)
	{
		CURLcode	code;

		http_prepare(req);
		code = curl_easy_perform(req->easy);
		http_finish_try(req, code);
		CHECK_FOR_INTERRUPTS();
		if (!http_should_retry(req))
			break;
		pg_usleep(http_backoff_ms(req->tries) * 1000L);
		CHECK_FOR_INTERRUPTS();
	}
	req->done = true;
}

/*
 * http_socket_callback
 *		libcurl tells us which sockets to watch.  Only the table changes here;
 *		the WaitEventSet is built from it before each wait.  Never ereports:
 *		when the table cannot grow, a flag makes the next wait fail safely.
 */
static int
http_socket_callback(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < http_socket_count; i++)
		if (http_sockets[i].fd == fd)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < http_socket_count)
			http_sockets[i] = http_sockets[--http_socket_count];
		return 0;
	}
	if (i == http_socket_count)
	{
		if (http_socket_count == http_socket_capacity)
		{
			int			capacity = Max(16, http_socket_capacity * 2);
			HttpSocket *grown = realloc(http_sockets, capacity * sizeof(HttpSocket));

			if (grown == NULL)
			{
				http_socket_table_failed = true;
				return -1;
			}
			http_sockets = grown;
			http_socket_capacity = capacity;
		}
		http_sockets[http_socket_count++].fd = fd;
	}
	http_sockets[i].what = what;
	return 0;
}

/*
 * http_timer_callback
 *		libcurl tells us when it next wants to be called without socket
 *		activity (-1: no timer).  Never ereports.
 */
static int
http_timer_callback(CURLM *multi, long timeout_ms, void *userp)
{
	/* kept as a deadline: libcurl calls again only when it changes */
	http_curl_deadline = timeout_ms < 0 ? 0 :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	return 0;
}

/*
 * http_multi_init
 *		The worker's multi handle, once.
 */
static void
http_multi_init(void)
{
	if (http_multi)
		return;
	http_global_init();
	http_multi = curl_multi_init();
	if (http_multi == NULL)
		elog(ERROR, "could not create a libcurl multi handle");
	curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, http_socket_callback);
	curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION, http_timer_callback);
	curl_multi_setopt(http_multi, CURLMOPT_MAXCONNECTS, 32L);

	/*
	 * At most this many connections at once; libcurl queues the other
	 * transfers.  Each connection is a socket of the worker's, which shares
	 * the process's descriptors with PostgreSQL: thousands of jobs being
	 * submitted at once once left none to wait with ("epoll_create1 failed:
	 * Too many open files"), and the worker restarting into the same state.
	 */
	curl_multi_setopt(http_multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) HTTP_MAX_CONNECTIONS);
}

static void
http_push(PgRayHttpRequest **list, PgRayHttpRequest *req)
{
	req->next = *list;
	*list = req;
}

static void
http_list_remove(PgRayHttpRequest **list, PgRayHttpRequest *req)
{
	for (PgRayHttpRequest **p = list; *p; p = &(*p)->next)
	{
		if (*p == req)
		{
			*p = req->next;
			req->next = NULL;
			return;
		}
	}
}

/*
 * pg_ray_http_start
 *		Hand a request to the worker's driver.  It makes progress in
 *		pg_ray_http_wait and comes back from pg_ray_http_next_done.
 */
void
pg_ray_http_start(PgRayHttpRequest *req)
{
	int			running;

	http_multi_init();
	http_prepare(req);
	if (curl_multi_add_handle(http_multi, req->easy) != CURLM_OK)
		elog(ERROR, "could not add a request to libcurl");
	http_push(&http_running, req);
	/* let libcurl start connecting at once */
	curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_collect_completions();
}

/*
 * http_collect_completions
 *		Move finished transfers out of the multi handle: to the done list, or
 *		to the retry list with a backoff.
 */
static void
http_collect_completions(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(http_multi, &left)) != NULL)
	{
		PgRayHttpRequest *req = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
		curl_multi_remove_handle(http_multi, msg->easy_handle);
		http_list_remove(&http_running, req);
		http_finish_try(req, msg->data.result);
		if (http_should_retry(req))
		{
			req->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														http_backoff_ms(req->tries));
			http_push(&http_waiting_retry, req);
		}
		else
		{
			req->done = true;
			http_push(&http_done, req);
		}
	}
}

/*
 * http_start_due_retries
 *		Start again the requests whose backoff has passed.
 */
static void
http_start_due_retries(void)
{
	TimestampTz now = GetCurrentTimestamp();
	PgRayHttpRequest *req = http_waiting_retry;

	while (req)
	{
		PgRayHttpRequest *next = req->next;

		if (req->retry_at <= now)
		{
			http_list_remove(&http_waiting_retry, req);
			pg_ray_http_start(req);
		}
		req = next;
	}
}

/*
 * http_next_retry_ms
 *		Milliseconds until the earliest retry is due, or -1.
 */
static long
http_next_retry_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		best = -1;

	for (PgRayHttpRequest *req = http_waiting_retry; req; req = req->next)
	{
		long		ms = req->retry_at <= now ? 0 :
			(long) ((req->retry_at - now + 999) / 1000);

		if (best < 0 || ms < best)
			best = ms;
	}
	return best;
}

/*
 * pg_ray_http_wait
 *		Sleep until the latch is set, a socket of a request in flight is
 *		ready, libcurl's timer or a retry is due, or timeout_ms passes (-1:
 *		no limit of our own); drive libcurl with whatever happened.  Returns
 *		WL_LATCH_SET if the latch was set, else 0.  The caller resets it.
 */
int
pg_ray_http_wait(long timeout_ms)
{
	WaitEventSet *set;
	WaitEvent  *events;
	int			nevents;
	int			n;
	int			result = 0;
	long		wait_ms = timeout_ms;
	long		retry_ms;
	int			running;

	http_multi_init();
	if (http_socket_table_failed)
		elog(ERROR, "pg_ray lost track of its HTTP sockets: out of memory");

	if (http_curl_deadline != 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		curl_ms = http_curl_deadline <= now ? 0 :
			(long) ((http_curl_deadline - now + 999) / 1000);

		if (wait_ms < 0 || curl_ms < wait_ms)
			wait_ms = curl_ms;
	}
	retry_ms = http_next_retry_ms();
	if (retry_ms >= 0 && (wait_ms < 0 || retry_ms < wait_ms))
		wait_ms = retry_ms;

	/*
	 * Rebuilt each time: PostgreSQL 15 cannot remove a socket from a set,
	 * and a worker has a handful of sockets at most.
	 */
	nevents = 2 + http_socket_count;
	set = CreateWaitEventSet(CurrentMemoryContext, nevents);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < http_socket_count; i++)
	{
		uint32		wanted = 0;

		if (http_sockets[i].what & CURL_POLL_IN)
			wanted |= WL_SOCKET_READABLE;
		if (http_sockets[i].what & CURL_POLL_OUT)
			wanted |= WL_SOCKET_WRITEABLE;
		if (wanted)
			AddWaitEventToSet(set, wanted, http_sockets[i].fd, NULL, NULL);
	}

	events = palloc(sizeof(WaitEvent) * nevents);
	n = WaitEventSetWait(set, wait_ms, events, nevents, PG_WAIT_EXTENSION);
	for (int i = 0; i < n; i++)
	{
		if (events[i].events & WL_LATCH_SET)
			result = WL_LATCH_SET;
		else if (events[i].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			int			flags = 0;

			if (events[i].events & WL_SOCKET_READABLE)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & WL_SOCKET_WRITEABLE)
				flags |= CURL_CSELECT_OUT;
			curl_multi_socket_action(http_multi, events[i].fd, flags, &running);
		}
	}
	FreeWaitEventSet(set);
	pfree(events);

	/* libcurl's own timeouts; harmless when none has expired */
	if (http_running != NULL)
		curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &running);

	http_collect_completions();
	http_start_due_retries();
	return result;
}

/*
 * pg_ray_http_next_done
 *		A finished request, or NULL.  The caller owns it and frees it.
 */
PgRayHttpRequest *
pg_ray_http_next_done(void)
{
	PgRayHttpRequest *req = http_done;

	if (req)
	{
		http_done = req->next;
		req->next = NULL;
	}
	return req;
}

/*
 * pg_ray_http_pending
 *		Requests not yet handed back: in flight or waiting to retry.
 */
int
pg_ray_http_pending(void)
{
	int			n = 0;

	for (PgRayHttpRequest *req = http_running; req; req = req->next)
		n++;
	for (PgRayHttpRequest *req = http_waiting_retry; req; req = req->next)
		n++;
	return n;
}
