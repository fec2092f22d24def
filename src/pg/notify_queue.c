/*
 * notify_queue.c — the worker's notifications (NOTIFY multiraft_events,
 * '<group_id>:<log_index>'), added to PostgreSQL's NOTIFY queue without letting
 * another session stop the worker through it.
 *
 * Two ways a session could, with no privilege but LISTEN/NOTIFY:
 *
 * - The queue is shared by the whole server and freed only up to the oldest
 *   position a listening session has not read.  A session that LISTENs and then
 *   stays idle in a transaction reads nothing; once the queue is full every
 *   NOTIFY fails at commit, and the worker's batches would fail one after
 *   another.  So past multiraft.notify_queue_max_usage (half, by default, where
 *   PostgreSQL itself warns) the worker records events without notifying, warns
 *   once, and notifies again once the queue has room.  Reading the usage takes
 *   the queue's locks and advances its tail: at most once a second.
 *
 * - A committing notifier holds one server-wide heavyweight lock while it copies
 *   its notifications into the queue: a session committing 300,000 notifications
 *   held the worker's commit for 11 s.  So the worker takes that lock itself
 *   without waiting, before its commit (which then finds it held); if another
 *   session has it, this batch's notifications wait for a later transaction of
 *   the worker — the next batch, or the maintenance round (worker.c) — and go
 *   out merged with its own (a group's highest index).
 *
 * Notifications are wake-up hints: the events are in multiraft.events either
 * way, where consume_events finds them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/async.h"
#include "fmgr.h"
#include "storage/lock.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "storage.h"

#define NOTIFY_CHANNEL "multiraft_events"
#define NOTIFY_QUEUE_CHECK_MS 1000

static struct
{
	TimestampTz checked_at;		/* 0: never */
	bool		full;			/* not notifying since the last check */
	uint64		skipped;		/* notifications left out while full */
} nq;

/* Notifications that found the NOTIFY lock taken (TopMemoryContext). */
static struct
{
	NotifyGroup *groups;
	int			n;
	int			cap;
} deferred;

static double
queue_usage(void)
{
	LOCAL_FCINFO(fcinfo, 0);

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	return DatumGetFloat8(pg_notification_queue_usage(fcinfo));
}

/* Whether the queue may take nnotify more notifications now. */
static bool
queue_has_room(int nnotify)
{
	TimestampTz now = GetCurrentTimestamp();
	double		usage;

	if (nq.checked_at != 0 &&
		!TimestampDifferenceExceeds(nq.checked_at, now, NOTIFY_QUEUE_CHECK_MS))
	{
		if (nq.full)
			nq.skipped += nnotify;
		return !nq.full;
	}
	nq.checked_at = now;
	usage = queue_usage();
	if (usage >= multiraft_notify_queue_max_usage && multiraft_notify_queue_max_usage < 1.0)
	{
		if (!nq.full)
			ereport(WARNING,
					(errmsg("multiraft is not notifying multiraft_events: the NOTIFY queue is %.1f%% full",
							usage * 100),
					 errdetail("A session listening for notifications is not reading them, most likely one that stays idle in a transaction."),
					 errhint("Events are still recorded in multiraft.events. End that session's transaction (pg_stat_activity shows it; idle_in_transaction_session_timeout ends such sessions); notifications resume once the queue is less full than multiraft.notify_queue_max_usage.")));
		nq.full = true;
		nq.skipped += nnotify;
		return false;
	}
	if (nq.full)
		ereport(LOG,
				(errmsg("multiraft is notifying multiraft_events again: the NOTIFY queue is %.1f%% full",
						usage * 100),
				 errdetail("While it was fuller, " UINT64_FORMAT " notifications were left out; their events are in multiraft.events.",
						   nq.skipped)));
	nq.full = false;
	nq.skipped = 0;
	return true;
}

/*
 * The lock PreCommit_Notify takes (LockSharedObject on the pg_database class),
 * without waiting: held to the end of the transaction once taken.
 */
static bool
notify_lock_taken(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, InvalidOid, 0);
	return LockAcquire(&tag, AccessExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

static int
cmp_group_index(const void *a, const void *b)
{
	const NotifyGroup *x = a;
	const NotifyGroup *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index ? 1 : 0;
}

/* Sorts and keeps each group's last (highest) entry; returns the count. */
static int
one_per_group(NotifyGroup *g, int n)
{
	int			k = 0;

	if (n <= 1)
		return n;
	qsort(g, n, sizeof(NotifyGroup), cmp_group_index);
	for (int i = 0; i < n; i++)
		if (i + 1 == n || g[i + 1].group != g[i].group)
			g[k++] = g[i];
	return k;
}

static void
defer(const NotifyGroup *g, int n)
{
	if (deferred.n + n > deferred.cap)
	{
		int			cap = Max(deferred.cap * 2, deferred.n + n);

		deferred.groups = deferred.groups == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(NotifyGroup) * cap) :
			repalloc(deferred.groups, sizeof(NotifyGroup) * cap);
		deferred.cap = cap;
	}
	memcpy(deferred.groups + deferred.n, g, sizeof(NotifyGroup) * n);
	deferred.n = one_per_group(deferred.groups, deferred.n + n);
}

/*
 * The notifications taken from `deferred` into the current transaction: put
 * back if it aborts (the events they announce committed earlier), dropped if it
 * commits.  This transaction's own go with its rows if it aborts.
 */
static struct
{
	NotifyGroup *groups;
	int			n;
} inflight;

static void
at_end_of_xact(XactEvent event, void *arg)
{
	(void) arg;
	if (inflight.n == 0)
		return;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		defer(inflight.groups, inflight.n);
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		pfree(inflight.groups);
		inflight.groups = NULL;
		inflight.n = 0;
	}
}

void
notify_send(NotifyGroup *groups, int n)
{
	static bool registered = false;
	NotifyGroup *all;
	int			nall;

	n = one_per_group(groups, n);
	if (n + deferred.n == 0 || inflight.n > 0)
		return;					/* (inflight: one call per transaction) */
	if (!queue_has_room(n + deferred.n))
	{
		deferred.n = 0;			/* left out, as this batch's (counted) */
		return;
	}
	if (!notify_lock_taken())
	{
		defer(groups, n);
		return;
	}
	if (!registered)
	{
		RegisterXactCallback(at_end_of_xact, NULL);
		registered = true;
	}
	/* one notification per group and transaction, with its highest index */
	nall = deferred.n + n;
	all = palloc(sizeof(NotifyGroup) * Max(nall, 1));
	memcpy(all, deferred.groups, sizeof(NotifyGroup) * deferred.n);
	memcpy(all + deferred.n, groups, sizeof(NotifyGroup) * n);
	nall = one_per_group(all, nall);
	for (int i = 0; i < nall; i++)
	{
		char		payload[64];

		snprintf(payload, sizeof(payload), INT64_FORMAT ":" UINT64_FORMAT,
				 (int64) all[i].group, all[i].index);
		Async_Notify(NOTIFY_CHANNEL, payload);
	}
	if (deferred.n > 0)
	{
		inflight.groups = MemoryContextAlloc(TopMemoryContext,
											 sizeof(NotifyGroup) * deferred.n);
		memcpy(inflight.groups, deferred.groups, sizeof(NotifyGroup) * deferred.n);
		inflight.n = deferred.n;
		deferred.n = 0;
	}
}

bool
notify_deferred(void)
{
	return deferred.n > 0;
}
