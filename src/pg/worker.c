/*
 * worker.c — the multiraft background worker: one loop per server that runs
 * every raft group hosted here (DESIGN.md "One worker iteration").
 *
 * The worker connects to multiraft.database, waits until CREATE EXTENSION
 * multiraft has run there, then serves requests.  Without multiraft.node_id it
 * logs why and idles, so a misconfigured server still starts.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "guc.h"
#include "shmem.h"

PGDLLEXPORT void multiraft_worker_main(Datum arg);

/* Seconds between checks for CREATE EXTENSION while it has not run yet. */
#define EXTENSION_POLL_MS 1000

static void
worker_detach(int code, Datum arg)
{
	LWLockAcquire(multiraft_shared->lock, LW_EXCLUSIVE);
	multiraft_shared->worker_pid = 0;
	multiraft_shared->worker_latch = NULL;
	multiraft_shared->worker_serving = false;
	LWLockRelease(multiraft_shared->lock);
	/* Backends waiting for completions must notice that nobody will answer. */
	ConditionVariableBroadcast(&multiraft_shared->done_cv);
}

static bool
extension_installed(void)
{
	bool		found;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	found = OidIsValid(get_extension_oid("multiraft", true));
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(true);
	return found;
}

static void
process_config_reload(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
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

void
multiraft_worker_main(Datum arg)
{
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

	BackgroundWorkerInitializeConnection(multiraft_database, NULL, 0);
	pgstat_report_appname("multiraft worker");

	/* Wait for CREATE EXTENSION multiraft in multiraft.database. */
	while (!extension_installed())
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 EXTENSION_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		process_config_reload();
	}

	ereport(LOG, (errmsg("multiraft worker serving node %d in database \"%s\"",
						 multiraft_node_id, multiraft_database)));
	LWLockAcquire(multiraft_shared->lock, LW_EXCLUSIVE);
	multiraft_shared->worker_serving = true;
	LWLockRelease(multiraft_shared->lock);

	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 multiraft_tick_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		process_config_reload();
	}
}
