/*
 * worker.c — the multiraft background worker: one loop per server that runs
 * every raft group hosted here (DESIGN.md "One worker iteration").
 *
 * The worker connects to multiraft.database, waits until CREATE EXTENSION
 * multiraft has run there, then serves requests.  Without multiraft.node_id it
 * logs why and idles, so a misconfigured server still starts.
 *
 * One iteration of the loop (serve()):
 *   transport_wait (latch, peer sockets, next tick deadline)
 *   -> requests_drain (backends' requests -> mr_* calls)
 *   -> transport_drain_inbox (peer envelopes -> mr_receive)
 *   -> mr_tick when due
 *   -> worker_process_batch: mr_ready, ONE transaction (storage + events +
 *      NOTIFY), send, mr_advance, publish status, complete requests.
 *
 * Failure policy.  If a batch cannot be persisted, the layer's memory is ahead of
 * the durable state, and the only state known to be right is the tables'.  The
 * worker then frees the node, fails the requests in flight ("raft processing
 * stopped"; a command may still commit), waits a second and rebuilds the node
 * from the tables — in-process rather than by proc_exit(1): the recovery is the
 * same (a restarted worker would load the same tables) but peer connections,
 * the prepared statements and the backends' request slots survive, and a
 * persistent error (disk full) costs one reload per second instead of a process
 * restart per second.  An ERROR anywhere else in the loop exits the process and
 * the postmaster restarts it (bgw_restart_time), which is equally safe.
 */
#include "postgres.h"

#include <malloc.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "shmem.h"
#include "status.h"
#include "storage.h"
#include "transport.h"
#include "worker_internal.h"
#include "spi_guard.h"

PGDLLEXPORT void multiraft_worker_main(Datum arg);

/* Milliseconds between checks for CREATE EXTENSION while it has not run yet. */
#define EXTENSION_POLL_MS 1000
/* Milliseconds between maintenance rounds (extension still there? node registry
 * changed?).  Group status needs no refresh: every batch reports the groups it
 * visited, and a group whose status changes is visited (mr_batch.visited). */
#define MAINTENANCE_MS 1000
/* After a failed batch, wait this long before rebuilding the node. */
#define RECOVERY_BACKOFF_MS 1000
/* A worker that fell behind ticks at most this many times at once: timeouts
 * measured in ticks stretch rather than fire in a burst. */
#define MAX_TICK_BURST 3

static void
worker_detach(int code, Datum arg)
{
	LWLockAcquire(multiraft_shared->lock, LW_EXCLUSIVE);
	multiraft_shared->worker_pid = 0;
	multiraft_shared->worker_latch = NULL;
	multiraft_shared->worker_serving = false;
	LWLockRelease(multiraft_shared->lock);
	/* What it published stops being true (a worker that errors out, or is
	 * terminated, left every group's last status showing, a leader among them,
	 * while stats said it did not serve; found by a review). */
	status_clear();
	/* Backends waiting for completions must notice that nobody will answer. */
	ConditionVariableBroadcast(&multiraft_shared->done_cv);
}

/*
 * The extension the node is served from: a DROP EXTENSION followed by CREATE
 * EXTENSION between two looks (one transaction, or within a second) leaves
 * empty tables under the same name, which the node in memory must not be
 * taken to describe.
 */
static Oid	served_extension = InvalidOid;

/* The extension's OID now (InvalidOid if it is not installed). */
static Oid
extension_oid(void)
{
	Oid			oid;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	oid = get_extension_oid("multiraft", true);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(true);
	return oid;
}

static void
process_config_reload(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		/* a reload may bring a server-wide setting the worker overrides back */
		worker_settings_reassert();
	}
}

/*
 * The loop resets its memory context every iteration, and each batch's
 * transaction allocates and frees the same few hundred kB again: with glibc's
 * defaults that memory went back to the kernel (brk) and was faulted in again
 * every iteration — about 6 % of the worker's CPU under load (perf).  Keep it.
 */
static void
keep_heap(void)
{
	(void) mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	(void) mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
}

/* Wait for SIGTERM (or a reload) while doing nothing. */
static void
idle_forever(void)
{
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		process_config_reload();
	}
}

/* Sleep ms (or until the latch is set), serving interrupts and reloads. */
static void
pause_ms(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	process_config_reload();
}


/* Sleep the whole ms whatever sets the latch meanwhile (a peer's frame wakes the
 * worker every heartbeat when its links stay with receive backends). */
static void
pause_full_ms(long ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now >= end)
			break;
		pause_ms((long) ((end - now + 999) / 1000));
	}
}

static void
set_serving(bool serving)
{
	LWLockAcquire(multiraft_shared->lock, LW_EXCLUSIVE);
	multiraft_shared->worker_serving = serving;
	if (serving)
		multiraft_shared->serve_epoch++;
	LWLockRelease(multiraft_shared->lock);
}

static void
transport_exit(int code, Datum arg)
{
	transport_shutdown();
}

static long
ms_until(TimestampTz t)
{
	TimestampTz now = GetCurrentTimestamp();

	return now >= t ? 0 : (long) ((t - now + 999) / 1000);
}

static void
tick_if_due(TimestampTz *next_tick)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		interval = (int64) Max(multiraft_tick_interval_ms, 1) * 1000;
	int64		due;

	if (now < *next_tick)
		return;
	due = (now - *next_tick) / interval + 1;
	for (int64 i = 0; i < Min(due, MAX_TICK_BURST); i++)
		(void) mr_tick(worker_node);
	status_counter_add(MR_CTR_TICKS, (uint64) Min(due, MAX_TICK_BURST));
	*next_tick += due * interval;
}

/*
 * The node registry is tiny; reading it once per maintenance round and comparing
 * with the last one read costs nothing and needs no extra shared state between
 * add_node/remove_node and the worker.  A change reaches the transport within a
 * second (and raft retries until a peer is reachable).
 */
static char *registry_seen = NULL;

static void
check_node_registry(void)
{
	char	   *now;

	if (SPI_execute("SELECT coalesce(string_agg(node_id || ' ' || host || ' ' || port || ' ' "
					"|| coalesce(dbname, ''), ',' ORDER BY node_id), '') FROM multiraft.node",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "multiraft: could not read the node registry");
	now = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (now == NULL)
		now = "";
	if (registry_seen == NULL || strcmp(registry_seen, now) != 0)
	{
		transport_reload_nodes();
		if (registry_seen)
			pfree(registry_seen);
		registry_seen = MemoryContextStrdup(TopMemoryContext, now);
	}
}

ErrorData *
worker_take_error(MemoryContext cxt)
{
	ErrorData  *e;

	MemoryContextSwitchTo(cxt);
	e = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	return e;
}

/* Returns false if the extension is gone, or is another one (served_extension). */
static bool
maintenance(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool present = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "multiraft: SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		present = get_extension_oid("multiraft", true) == served_extension;
		if (present)
			check_node_registry();
		/* notifications that found the NOTIFY lock taken, on an idle node */
		if (present && notify_deferred())
			notify_send(NULL, 0);
		PopActiveSnapshot();
		SPI_finish();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *e;

		e = worker_take_error(cxt);
		ereport(LOG, (errmsg("multiraft: maintenance failed: %s", e->message)));
		FreeErrorData(e);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_stat(false);
	worker_publish_counters();
	return present;
}

typedef enum ServeEnd
{
	SERVE_FAILED,				/* a batch could not be persisted */
	SERVE_DROPPED,				/* DROP EXTENSION multiraft */
	SERVE_RESETTLED				/* a reload changed a setting the node is built from */
} ServeEnd;

/*
 * Reloads the configuration and applies what a running node takes at once (the
 * lagging-log budgets); true if it changed a setting the node is built from
 * (worker_node.c: election, heartbeat and dead-node ticks, the generated-id
 * window).  Every group's timers derive from them, so the node is then rebuilt
 * from the tables — between two batches, when nothing in memory is ahead of them.
 */
static bool
reload_changes_node_settings(void)
{
	process_config_reload();
	worker_node_apply_live_settings();
	return worker_node_settings_changed();
}

static ServeEnd
serve(MemoryContext iter_cxt)
{
	int64		interval = (int64) Max(multiraft_tick_interval_ms, 1) * 1000;
	TimestampTz next_tick = GetCurrentTimestamp() + interval;
	TimestampTz next_maintenance = GetCurrentTimestamp() + MAINTENANCE_MS * 1000L;

	for (;;)
	{
		MemoryContext old;
		long		timeout;

		timeout = mr_has_ready(worker_node) ? 0 : ms_until(next_tick);
		transport_wait(Min(timeout, (long) multiraft_tick_interval_ms));
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending && reload_changes_node_settings())
			return SERVE_RESETTLED;

		MemoryContextReset(iter_cxt);
		old = MemoryContextSwitchTo(iter_cxt);
		(void) requests_drain(worker_handle_request, NULL);
		transport_drain_inbox(worker_receive_envelope, NULL);
		tick_if_due(&next_tick);
		if (mr_has_ready(worker_node) && !worker_process_batch())
		{
			MemoryContextSwitchTo(old);
			return SERVE_FAILED;
		}
		/* Between batches (the layer refuses it between ready and advance). */
		transport_take_unreachable(worker_report_unreachable, NULL);
		MemoryContextSwitchTo(old);

		if (GetCurrentTimestamp() >= next_maintenance)
		{
			if (!maintenance())
				return SERVE_DROPPED;
			next_maintenance = GetCurrentTimestamp() + MAINTENANCE_MS * 1000L;
		}
	}
}

/* Wait for CREATE EXTENSION multiraft in multiraft.database. */
static void
wait_for_extension(void)
{
	while (!OidIsValid(served_extension = extension_oid()))
		pause_ms(EXTENSION_POLL_MS);
}

/*
 * A worker that cannot connect to multiraft.database (missing, dropped, not
 * accepting connections) exits with a FATAL, and the postmaster starts it again
 * a second later: without this, two log lines a second for as long as it
 * lasts.  Each start that follows such failures waits first, twice as long
 * each time, up to MAX_CONNECT_BACKOFF_S.  The count lives in shared memory
 * (worker starts in a row that did not get connected).
 */
#define MAX_CONNECT_BACKOFF_S 300

static void
connect_backoff(void)
{
	uint32		failures;

	LWLockAcquire(multiraft_shared->lock, LW_EXCLUSIVE);
	failures = multiraft_shared->connect_failures++;
	LWLockRelease(multiraft_shared->lock);
	if (failures > 0)
	{
		long		secs = Min(1L << Min(failures, 9), MAX_CONNECT_BACKOFF_S);

		ereport(LOG,
				(errmsg("multiraft worker could not connect to database \"%s\" at its last %u start%s; trying again in %ld s",
						multiraft_database, failures, failures == 1 ? "" : "s", secs)));
		pause_ms(secs * 1000);
	}
}

static void
connected(void)
{
	LWLockAcquire(multiraft_shared->lock, LW_EXCLUSIVE);
	multiraft_shared->connect_failures = 0;
	LWLockRelease(multiraft_shared->lock);
}

/* Creates the node from the tables; false (logged) if that failed. */
static bool
start_node(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	storage_forget_plans();
	PG_TRY();
	{
		if (!worker_node_start())
			idle_forever();		/* until the server restarts with more room */
	}
	PG_CATCH();
	{
		ErrorData  *e;

		e = worker_take_error(cxt);
		ereport(LOG, (errmsg("multiraft: could not load the raft state: %s", e->message),
					  e->detail ? errdetail_internal("%s", e->detail) : 0));
		FreeErrorData(e);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return ok;
}

void
multiraft_worker_main(Datum arg)
{
	bool		transport_ready = false;
	MemoryContext iter_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	LWLockAcquire(multiraft_shared->lock, LW_EXCLUSIVE);
	multiraft_shared->worker_pid = MyProcPid;
	multiraft_shared->worker_latch = MyLatch;
	multiraft_shared->worker_serving = false;
	multiraft_shared->worker_starts++;
	LWLockRelease(multiraft_shared->lock);
	before_shmem_exit(worker_detach, (Datum) 0);

	if (multiraft_node_id <= 0)
	{
		ereport(LOG,
				(errmsg("multiraft worker idle: multiraft.node_id is not set"),
				 errhint("Set multiraft.node_id in postgresql.conf and restart the server.")));
		idle_forever();
	}

	connect_backoff();
	BackgroundWorkerInitializeConnection(multiraft_database, NULL, 0);
	connected();
	pgstat_report_appname("multiraft worker");
	worker_settings_apply();
	keep_heap();
	iter_cxt = AllocSetContextCreate(TopMemoryContext, "multiraft worker iteration",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		ServeEnd	end;

		wait_for_extension();
		if (!transport_ready)
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			transport_init();
			PopActiveSnapshot();
			CommitTransactionCommand();
			before_shmem_exit(transport_exit, (Datum) 0);
			transport_ready = true;
		}
		if (!start_node())
		{
			pause_full_ms(RECOVERY_BACKOFF_MS);
			continue;
		}

		ereport(LOG, (errmsg("multiraft worker serving node %d in database \"%s\"",
							 multiraft_node_id, multiraft_database)));
		set_serving(true);
		end = serve(iter_cxt);
		set_serving(false);

		if (end == SERVE_RESETTLED)
		{
			ereport(LOG, (errmsg("multiraft worker: raft settings changed; reloading the raft state")));
			worker_node_stop(MR_RESULT_STOPPED,
							 "the worker reloads its raft state for new settings; the command may still commit");
		}
		else if (end == SERVE_DROPPED || extension_oid() != served_extension)
		{
			ereport(LOG, (errmsg("multiraft worker: extension dropped; waiting for CREATE EXTENSION")));
			worker_node_stop(MR_RESULT_STOPPED, "the multiraft extension was dropped");
		}
		else
		{
			worker_node_stop(MR_RESULT_STOPPED,
							 "the worker restarts its raft state after a storage error; the command may still commit");
			pause_full_ms(RECOVERY_BACKOFF_MS);
		}
	}
}
