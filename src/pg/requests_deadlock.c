/*
 * requests_deadlock.c — a request waiting on the worker while the worker waits,
 * directly or through other sessions, for a lock the requesting transaction
 * holds.  The backend sleeps on a condition variable, not on a lock, so
 * PostgreSQL's deadlock detector never sees that cycle: e.g. a transaction that
 * consumed events (a lock on multiraft.events) submits, while a DDL statement on
 * multiraft.events queues behind it and the worker's next batch queues behind
 * the DDL.  Every group of the node would stop until the request timed out.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"

#include "requests_slots.h"

/* Processes looked at in one search: chains of waiters are short. */
#define MAX_WAITERS_SEEN 64

/*
 * Whether the worker (pid) waits for this backend: this backend is among the
 * processes blocking it, transitively (pg_blocking_pids(), which counts both
 * lock holders and waiters queued ahead).  Cheap while the worker waits for no
 * lock: its PGPROC's waitLock, read without a lock, is only a hint, and the
 * search itself is exact.
 */
bool
requests_worker_waits_for_me(pid_t worker)
{
	PGPROC	   *proc = BackendPidGetProc(worker);
	int32		seen[MAX_WAITERS_SEEN];
	int			n_seen = 0;

	if (proc == NULL || proc->waitLock == NULL)
		return false;
	seen[n_seen++] = worker;
	for (int next = 0; next < n_seen; next++)
	{
		ArrayType  *blockers;
		Datum	   *elems;
		int			n;

		blockers = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids,
														  Int32GetDatum(seen[next])));
		deconstruct_array(blockers, INT4OID, sizeof(int32), true, TYPALIGN_INT,
						  &elems, NULL, &n);
		for (int i = 0; i < n; i++)
		{
			int32		pid = DatumGetInt32(elems[i]);
			bool		known = false;

			if (pid == MyProcPid)
				return true;
			for (int k = 0; k < n_seen && !known; k++)
				known = seen[k] == pid;
			if (!known && n_seen < MAX_WAITERS_SEEN)
				seen[n_seen++] = pid;
		}
		pfree(elems);
		pfree(blockers);
	}
	return false;
}
