/*-------------------------------------------------------------------------
 *
 * provider_local.c
 *		The local cluster manager: Ray nodes as processes on this host.
 *
 * The catalog says which nodes each local resource group should have
 * (ray._local_plan); this file makes the processes match.  Each node is
 * one "ray start --block" (or redis-server) process that leads a session
 * of its own, so that everything it starts can be found and signalled
 * together, and so that it outlives the worker and the server: a restarted
 * worker finds it again by its run directory, which is on its command line,
 * and adopts it instead of starting a twin.
 *
 * Between rounds the worker watches the recorded leaders without running
 * any query: a leader that disappears, or a node that is starting or
 * stopping, brings the next round.
 *
 * This file applies the round's plan to the nodes and keeps the watch;
 * finding and signalling processes is in local_proc.c, and starting them
 * in local_spawn.c (see local_internal.h).
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/provider_local.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "local_internal.h"
#include "pg_ray.h"
#include "provider_local.h"
#include "spi_util.h"

/*
 * How often a running node's leader is looked at between rounds: a dead
 * head is noticed within this, so it is part of the head's recovery time.
 * Reading a few /proc files costs next to nothing.
 */
#define LOCAL_WATCH_MS 250

/* How often a round comes while a node is starting or stopping. */
#define LOCAL_BUSY_MS 250

/* A node's leader watched between rounds. */
typedef struct LocalWatch
{
	int64		node_id;
	pid_t		pid;
	char	   *marker;
	LocalUser	user;
} LocalWatch;

static List *local_watched = NIL;
static bool local_busy = false;
static TimestampTz local_next_watch_at = 0;

/* When a node waiting to be started is due, or 0 when none waits. */
static TimestampTz local_next_start_at = 0;
static MemoryContext local_context = NULL;

/* The run directory prefix of this installation's nodes, once known. */
static char local_prefix[MAXPGPATH] = "";

/* Nodes sent SIGTERM already, so that a slow stop is not interrupted. */
static List *local_terminated = NIL;

static char *local_marker(const char *run_dir);
static void local_start(int64 node_id, const char *run_dir, int port_base,
						Datum argv_datum, Datum env_datum, const LocalUser *user);
static void local_check(int64 node_id, pid_t pid, const char *run_dir, const LocalUser *user,
						bool measure_disk);
static void local_stop(int64 node_id, pid_t pid, const char *run_dir, int port_base,
					   int64 elapsed_ms, const LocalUser *user);
static void local_sweep(const char *prefix, bool everything);
static void local_free_watched(void);

/*
 * local_marker
 *		What identifies a node's processes: its run directory with a
 *		trailing slash, so that node 1 is never taken for node 12.
 */
static char *
local_marker(const char *run_dir)
{
	return psprintf("%s/", run_dir);
}

/*
 * local_signal_node
 *		local_signal_session for a node's session as its OS user, and as the
 *		server's: a node that pg_ray 0.1 started ran as the server's OS user,
 *		and is never adopted (local_leader_alive), but stopped so that its
 *		slot starts it again as its group's OS user.  Returns how many
 *		processes there were.
 */
static int
local_signal_node(pid_t session, int sig, const char *marker, const LocalUser *user)
{
	LocalUser	server = {geteuid(), "the server's OS user"};

	return local_signal_session(session, sig, marker, user) +
		local_signal_session(session, sig, marker, &server);
}

/*
 * local_start
 *		Start a node, unless its process is running already (after a restart
 *		of the worker or the server): then adopt it.  The pid is recorded in
 *		the round's transaction; should that not commit, the next round finds
 *		the process by its run directory and adopts it.  But a group's first
 *		node (no other of its nodes runs) adopts nothing: every process of
 *		its OS user is killed first, so that nothing left by a group that had
 *		the user before (which could show any node's run directory on its
 *		command line) is adopted or outlives the start.
 */
static void
local_start(int64 node_id, const char *run_dir, int port_base, Datum argv_datum, Datum env_datum,
			const LocalUser *user)
{
	char	   *marker = local_marker(run_dir);
	pid_t		pid;
	Oid			types[3] = {INT8OID, INT4OID, BOOLOID};
	Datum		values[3];
	Datum	   *argv_elems;
	Datum	   *env_elems;
	bool	   *nulls;
	int			argc;
	int			envc;
	char	  **argv;
	char	  **envp;
	char	   *bin_dir;
	char	   *slash;
	int			busy;
	bool		isnull;
	bool		first;

	values[0] = Int64GetDatum(node_id);

	/* the group's first node: nothing of its OS user's may be left from before */
	pg_ray_spi_exec("SELECT NOT EXISTS (SELECT FROM ray.node o, ray.node n WHERE n.node_id = $1 "
					"AND o.resource_group = n.resource_group AND o.node_id <> n.node_id AND o.pid IS NOT NULL)",
					1, types, values, NULL);
	first = SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (first && !local_launch_kill_all(user))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("processes of OS user \"%s\" are left from before and could not be killed", user->name),
				 errdetail("A group's first node starts only once nothing else runs as its OS user.")));

	pid = first ? 0 : local_find_leader(marker, user);
	if (pid > 0)
	{
		values[1] = Int32GetDatum((int32) pid);
		values[2] = BoolGetDatum(true);
		pg_ray_spi_exec("SELECT ray._local_node_started($1, $2, $3)", 3, types, values, NULL);
		return;
	}

	busy = local_busy_port(port_base);
	if (busy != 0)
	{
		Oid			busy_types[2] = {INT8OID, INT4OID};
		Datum		busy_values[2] = {Int64GetDatum(node_id), Int32GetDatum(busy)};

		pg_ray_spi_exec("SELECT ray._local_ports_busy($1, $2)", 2, busy_types, busy_values, NULL);
		return;
	}

	/* before the token is copied: a refused directory must leave no copy behind */
	local_make_dir(run_dir, user);

	deconstruct_array(DatumGetArrayTypeP(argv_datum), TEXTOID, -1, false, TYPALIGN_INT,
					  &argv_elems, &nulls, &argc);
	argv = palloc0(sizeof(char *) * (argc + 1));
	for (int i = 0; i < argc; i++)
	{
		if (nulls[i])
			elog(ERROR, "pg_ray worker: null argument in the command of node " INT64_FORMAT, node_id);
		argv[i] = TextDatumGetCString(argv_elems[i]);
	}
	deconstruct_array(DatumGetArrayTypeP(env_datum), TEXTOID, -1, false, TYPALIGN_INT,
					  &env_elems, &nulls, &envc);

	/* the executable's directory first, so that a virtualenv's python runs */
	bin_dir = pstrdup(argv[0]);
	slash = strrchr(bin_dir, '/');
	if (slash)
		*slash = '\0';
	envp = palloc0(sizeof(char *) * (envc + 4));
	envp[0] = psprintf("PATH=%s%s/usr/local/bin:/usr/bin:/bin", slash ? bin_dir : "", slash ? ":" : "");
	envp[1] = psprintf("HOME=%s", run_dir);
	envp[2] = pstrdup("LANG=C.UTF-8");
	for (int i = 0; i < envc; i++)
		envp[3 + i] = nulls[i] ? pstrdup("PG_RAY_UNSET=") : TextDatumGetCString(env_elems[i]);

	pid = local_spawn(run_dir, argv, envp, user);

	/* the environment holds the group's token: leave no copy behind */
	for (int i = 3; i < envc + 3; i++)
		explicit_bzero(envp[i], strlen(envp[i]));

	values[1] = Int32GetDatum((int32) pid);
	values[2] = BoolGetDatum(false);
	pg_ray_spi_exec("SELECT ray._local_node_started($1, $2, $3)", 3, types, values, NULL);
	local_busy = true;
}

/*
 * local_check
 *		A running node: if its leader is gone, finish off what it left of
 *		its session (so its ports come free) and report the exit.  If it
 *		runs and measure_disk, start measuring how much disk its run
 *		directory takes (a worker node's disk_gb bounds it; local_disk.c).
 */
static void
local_check(int64 node_id, pid_t pid, const char *run_dir, const LocalUser *user, bool measure_disk)
{
	char	   *marker = local_marker(run_dir);
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	MemoryContext old;
	LocalWatch *watch;

	if (local_leader_alive(pid, marker, user))
	{
		old = MemoryContextSwitchTo(local_context);
		watch = palloc(sizeof(LocalWatch));
		watch->node_id = node_id;
		watch->pid = pid;
		watch->marker = pstrdup(marker);
		watch->user = *user;
		local_watched = lappend(local_watched, watch);
		MemoryContextSwitchTo(old);
		if (measure_disk)
			local_disk_measure(node_id, user, run_dir);
		return;
	}
	(void) local_signal_node(pid, SIGKILL, marker, user);
	values[0] = Int64GetDatum(node_id);
	values[1] = CStringGetTextDatum(local_exit_reason(pid, run_dir));
	pg_ray_spi_exec("SELECT ray._local_node_exited($1, $2)", 2, types, values, NULL);
	local_busy = true;
}

/*
 * local_stop
 *		A node asked to stop: SIGTERM to its session once, SIGKILL to what
 *		is left once its leader has exited (Ray's agents ignore SIGTERM when
 *		their raylet is gone) or after pg_ray.node_stop_timeout, and the
 *		slot is released once nothing of it runs.  Ray starts job drivers in
 *		sessions of their own, so they are found by the GCS address in their
 *		environment and stopped with the node (only a head's first port is a
 *		GCS port).
 */
static void
local_stop(int64 node_id, pid_t pid, const char *run_dir, int port_base, int64 elapsed_ms,
		   const LocalUser *user)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(node_id)};
	bool		overdue = elapsed_ms >= pg_ray_node_stop_timeout_ms;
	char	   *marker = local_marker(run_dir);
	int			left = 0;

	/* the recorded leader, or one found by its run directory should it be stale */
	if (pid <= 0 || local_signal_node(pid, 0, marker, user) == 0)
		pid = local_find_leader(marker, user);
	if (pid > 0)
		left += local_signal_node(pid, 0, marker, user);
	if (local_launch_drivers(user, port_base, 0))
		left++;
	if (left > 0)
	{
		local_busy = true;
		/* once "ray start" has exited, what is left of its session is stuck */
		if (pid > 0 && !overdue && !local_leader_alive(pid, marker, user))
			(void) local_signal_node(pid, SIGKILL, marker, user);
		if (overdue)
		{
			if (pid > 0)
				(void) local_signal_node(pid, SIGKILL, marker, user);
			(void) local_launch_drivers(user, port_base, SIGKILL);
		}
		else if (!list_member_int(local_terminated, (int) node_id))
		{
			MemoryContext old = MemoryContextSwitchTo(local_context);

			if (pid > 0)
				(void) local_signal_node(pid, SIGTERM, marker, user);
			(void) local_launch_drivers(user, port_base, SIGTERM);
			local_terminated = lappend_int(local_terminated, (int) node_id);
			MemoryContextSwitchTo(old);
		}
		return;
	}
	local_terminated = list_delete_int(local_terminated, (int) node_id);
	pg_ray_spi_exec("SELECT ray._local_node_gone($1)", 1, types, values, NULL);
	/* a slot removed takes its run directory with it; one restarted keeps it */
	pg_ray_spi_exec("SELECT FROM ray.node WHERE node_id = $1", 1, types, values, NULL);
	if (SPI_processed == 0)
		local_launch_remove_run_dir(user, run_dir);
	local_busy = true;
}

/* local_sweep's visit: the leaders under a prefix, with their node ids. */
typedef struct LocalSweep
{
	const char *prefix;
	List	   *pids;
	List	   *uids;
	List	   *node_ids;
} LocalSweep;

/*
 * local_visit_sweep
 *		local_sweep's visit: note each leader under the prefix with its user
 *		and the node id that follows the prefix on its command line.
 */
static bool
local_visit_sweep(pid_t pid, pid_t session, uid_t uid, void *arg)
{
	LocalSweep *sweep = arg;
	char		buf[8192];
	char	   *cmdline;
	char	   *at;

	if (session != pid || (cmdline = local_cmdline(pid, buf, sizeof(buf))) == NULL ||
		(at = strstr(cmdline, sweep->prefix)) == NULL)
		return true;
	sweep->pids = lappend_int(sweep->pids, (int) pid);
	sweep->uids = lappend_oid(sweep->uids, (Oid) uid);
	sweep->node_ids = lappend_int(sweep->node_ids, atoi(at + strlen(sweep->prefix)));
	return true;
}

/*
 * local_sweep
 *		Kill node processes under prefix (the run directories of one
 *		installation) that have no slot any more, or all of them when
 *		everything is to go, and those that run as the server's OS user
 *		(started so by pg_ray 0.1; their slots start them again as their
 *		group's OS user).  Orphans are left by a worker that died between
 *		starting a node and recording it, or by slots removed while the
 *		worker was away; "everything" is the nodes of an extension that was
 *		dropped or created anew.  Leaders are recognised by the prefix on
 *		their command line, followed by the node id, and signalled as their
 *		own OS user: a process of a user outside pg_ray's pool that shows a
 *		prefix is not signalled at all (the launcher refuses).
 */
static void
local_sweep(const char *prefix, bool everything)
{
	LocalSweep	sweep = {prefix, NIL, NIL, NIL};

	local_each_process(local_visit_sweep, &sweep);
	for (int i = 0; i < list_length(sweep.pids); i++)
	{
		int64		node_id = (int64) list_nth_int(sweep.node_ids, i);
		uid_t		uid = (uid_t) list_nth_oid(sweep.uids, i);
		Oid			types[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum(node_id)};
		struct passwd *pw;
		LocalUser	user;

		if (!everything && uid != geteuid())
		{
			pg_ray_spi_exec("SELECT 1 FROM ray.node WHERE node_id = $1", 1, types, values, NULL);
			if (SPI_processed > 0)
				continue;
		}
		if ((pw = getpwuid(uid)) == NULL)
			continue;
		user.uid = uid;
		strlcpy(user.name, pw->pw_name, sizeof(user.name));
		ereport(LOG,
				(errmsg("pg_ray worker: stopping Ray node process %d: node " INT64_FORMAT " %s",
						list_nth_int(sweep.pids, i), node_id,
						uid == geteuid() ? "runs as the server's OS user" : "has no slot")));
		(void) local_signal_session((pid_t) list_nth_int(sweep.pids, i), SIGKILL, prefix, &user);
	}
	list_free(sweep.pids);
	list_free(sweep.uids);
	list_free(sweep.node_ids);
}

/* One node's action of a round, for local_act_one. */
typedef struct LocalAction
{
	const char *action;
	int64		node_id;
	pid_t		pid;
	const char *run_dir;
	int			port_base;
	int64		elapsed_ms;
	const char *os_user;
	bool		measure_disk;
	HeapTuple	row;
	TupleDesc	desc;
} LocalAction;

/*
 * local_act_one
 *		Start, check or stop one node.
 */
static void
local_act_one(void *arg)
{
	LocalAction *a = arg;
	LocalUser	user;

	if (a->os_user == NULL)
		elog(ERROR, "pg_ray worker: node " INT64_FORMAT " has no OS user", a->node_id);
	local_user_lookup(a->os_user, &user);
	if (strcmp(a->action, "start") == 0)
	{
		bool		argv_null;
		bool		env_null;
		Datum		argv_datum = SPI_getbinval(a->row, a->desc, 7, &argv_null);
		Datum		env_datum = SPI_getbinval(a->row, a->desc, 8, &env_null);

		if (argv_null || env_null)
			elog(ERROR, "pg_ray worker: node " INT64_FORMAT " has no command", a->node_id);
		local_start(a->node_id, a->run_dir, a->port_base, argv_datum, env_datum, &user);
	}
	else if (strcmp(a->action, "check") == 0)
		local_check(a->node_id, a->pid, a->run_dir, &user, a->measure_disk);
	else if (strcmp(a->action, "stop") == 0)
		local_stop(a->node_id, a->pid, a->run_dir, a->port_base, a->elapsed_ms, &user);
	else
		elog(ERROR, "pg_ray worker: unknown node action \"%s\"", a->action);
}

/*
 * local_act
 *		Do one node's action in a subtransaction of its own, so that a node
 *		that cannot be started or stopped (a full disk, a missing executable)
 *		is logged and retried while the other nodes and groups go on.
 */
static void
local_act(LocalAction *action)
{
	ErrorData  *error = pg_ray_subtransaction(local_act_one, action);

	if (error == NULL)
		return;
	ereport(WARNING,
			(errmsg("pg_ray could not %s Ray node " INT64_FORMAT ": %s", action->action,
					action->node_id, error->message),
			 errdetail("Its run directory is \"%s\"; the next round tries again.", action->run_dir)));
	if (strcmp(action->action, "start") == 0)
	{
		/* and those who use the group see why in ray.nodes */
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2] = {Int64GetDatum(action->node_id),
		CStringGetTextDatum(psprintf("could not start: %s", error->message))};

		pg_ray_spi_exec("SELECT ray._local_node_not_started($1, $2)", 2, types, values, NULL);
	}
	FreeErrorData(error);
	local_busy = true;
}

PG_FUNCTION_INFO_V1(pg_ray_node_starter);

/*
 * pg_ray_node_starter
 *		ray._node_starter(): where pg_ray's starter of Ray nodes is
 *		installed (src/node/pg_ray_node.py), which keeps a node's ports on
 *		loopback.  The share directory is found as the server finds it.
 */
Datum
pg_ray_node_starter(PG_FUNCTION_ARGS)
{
	char		share[MAXPGPATH];

	get_share_path(my_exec_path, share);
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%s/extension/pg_ray/pg_ray_node.py", share)));
}

/*
 * pg_ray_local_round
 *		Inside a round's transaction: reconcile the node slots of local
 *		groups and make the processes match.  The first round after the
 *		worker starts also sweeps orphans.
 */
void
pg_ray_local_round(bool first_round)
{
	SPITupleTable *tuptable;
	uint64		n;
	long		next_wait_ms = -1;

	if (local_context == NULL)
		local_context = AllocSetContextCreate(TopMemoryContext, "pg_ray local provider",
											  ALLOCSET_SMALL_SIZES);
	local_reap();

	/* the run directories of this installation start with this */
	pg_ray_spi_exec("SELECT format('%s/%s/n', rtrim(current_setting('pg_ray.run_directory'), '/'), id) "
			   "FROM ray.installation", 0, NULL, NULL, NULL);
	if (SPI_processed == 1)
	{
		char	   *prefix = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		/* the extension was created anew: the old one's nodes have no slots */
		if (local_prefix[0] != '\0' && strcmp(prefix, local_prefix) != 0)
		{
			local_sweep(local_prefix, true);
			pg_ray_local_forget();
		}
		strlcpy(local_prefix, prefix, sizeof(local_prefix));
		if (first_round)
			local_sweep(local_prefix, false);
	}

	/* the list is rebuilt from this round's plan */
	local_free_watched();
	local_busy = false;
	/* what the disk probes of earlier rounds found; while some run, the next round comes soon */
	if (local_disk_collect())
		local_busy = true;

	{
		Oid			plan_types[1] = {INT4OID};
		Datum		plan_values[1] = {Int32GetDatum(local_host_gpus())};

		pg_ray_spi_exec("SELECT action, node_id, pid, run_dir, port_base, elapsed_ms, argv, env, os_user, "
						"measure_disk FROM ray._local_plan($1)", 1, plan_types, plan_values, NULL);
	}
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	row = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		LocalAction action;
		bool		isnull;
		Datum		value;

		action.action = SPI_getvalue(row, desc, 1);
		action.node_id = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
		value = SPI_getbinval(row, desc, 3, &isnull);
		action.pid = isnull ? 0 : (pid_t) DatumGetInt32(value);
		action.run_dir = SPI_getvalue(row, desc, 4);
		action.port_base = DatumGetInt32(SPI_getbinval(row, desc, 5, &isnull));
		action.measure_disk = DatumGetBool(SPI_getbinval(row, desc, 10, &isnull)) && !isnull;
		value = SPI_getbinval(row, desc, 6, &isnull);
		action.elapsed_ms = isnull ? 0 : DatumGetInt64(value);
		action.os_user = SPI_getvalue(row, desc, 9);
		action.row = row;
		action.desc = desc;
		if (strcmp(action.action, "wait") == 0)
		{
			/* to be started later: after its backoff, or soon once what it waits for runs */
			long		wait_ms = isnull ? LOCAL_BUSY_MS : (long) Max(action.elapsed_ms, LOCAL_BUSY_MS);

			if (next_wait_ms < 0 || wait_ms < next_wait_ms)
				next_wait_ms = wait_ms;
			continue;
		}
		local_act(&action);
	}
	local_next_watch_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  local_busy ? LOCAL_BUSY_MS : LOCAL_WATCH_MS);
	local_next_start_at = next_wait_ms < 0 ? 0 :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), next_wait_ms);
}

/*
 * pg_ray_local_next_check_ms
 *		Milliseconds until the processes are looked at again or a node that
 *		waits to be started is due, or -1 when no local node runs, starts,
 *		stops or waits.
 */
long
pg_ray_local_next_check_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz due;

	if (local_watched == NIL && !local_busy)
		due = local_next_start_at;
	else if (local_next_start_at != 0)
		due = Min(local_next_watch_at, local_next_start_at);
	else
		due = local_next_watch_at;
	if (due == 0)
		return -1;
	return due <= now ? 0 : (long) ((due - now + 999) / 1000);
}

/*
 * pg_ray_local_check
 *		Between rounds, without a query: whether a round is needed because a
 *		watched leader is gone, a node is starting or stopping, or a node
 *		waiting to be started is due.
 */
bool
pg_ray_local_check(void)
{
	ListCell   *lc;

	if (pg_ray_local_next_check_ms() != 0)
		return false;
	if (local_busy || (local_next_start_at != 0 && local_next_start_at <= GetCurrentTimestamp()))
	{
		local_next_start_at = 0;
		return true;
	}
	local_next_watch_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LOCAL_WATCH_MS);
	local_reap();
	foreach(lc, local_watched)
	{
		LocalWatch *watch = lfirst(lc);

		if (!local_leader_alive(watch->pid, watch->marker, &watch->user))
			return true;
	}
	return false;
}

/*
 * local_free_watched
 *		Forget the leaders watched between rounds.
 */
static void
local_free_watched(void)
{
	ListCell   *lc;

	foreach(lc, local_watched)
	{
		LocalWatch *watch = lfirst(lc);

		pfree(watch->marker);
		pfree(watch);
	}
	list_free(local_watched);
	local_watched = NIL;
}

/*
 * pg_ray_local_forget
 *		The extension is gone or was created anew: its nodes are killed, as
 *		their slots went with it, and nothing is watched any more.
 */
void
pg_ray_local_forget(void)
{
	if (local_prefix[0] != '\0')
	{
		local_sweep(local_prefix, true);
		local_prefix[0] = '\0';
	}
	local_free_watched();
	local_disk_forget();
	list_free(local_terminated);
	local_terminated = NIL;
	local_busy = false;
	local_next_start_at = 0;
}

/*
 * pg_ray_local_shutdown
 *		The worker is exiting.  Nodes keep running and are adopted by the
 *		next worker, unless pg_ray.stop_nodes_at_shutdown asks that they be
 *		stopped: then their sessions get SIGTERM (Ray stops in seconds; the
 *		next worker finds them gone and starts them again when it runs).
 */
void
pg_ray_local_shutdown(void)
{
	ListCell   *lc;

	if (!pg_ray_stop_nodes_at_shutdown)
		return;
	foreach(lc, local_watched)
	{
		LocalWatch *watch = lfirst(lc);

		if (local_leader_alive(watch->pid, watch->marker, &watch->user))
			(void) local_signal_session(watch->pid, SIGTERM, watch->marker, &watch->user);
	}
}
