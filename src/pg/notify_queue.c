/*
 * notify_queue.c — whether the worker may add its notifications to
 * PostgreSQL's NOTIFY queue.
 *
 * The queue is shared by the whole server and is freed only up to the oldest
 * position some listening session has not read yet.  A session that LISTENs
 * and then stays idle in a transaction reads nothing, so the queue fills up
 * behind it, and once it is full every NOTIFY fails at commit ("too many
 * notifications in the NOTIFY queue").  The worker's transactions notify, so
 * its batches would then fail one after another and the node would stop
 * taking part in every group it serves: the whole cluster's availability
 * hostage to one session's mistake, which any role allowed to connect can
 * make.
 *
 * So once the queue is fuller than multiraft.notify_queue_max_usage (half,
 * by default, where PostgreSQL itself starts warning), the worker writes its
 * events without notifying, warns once, and notifies again once the queue
 * has room.  Notifications are wake-up hints: the events themselves are in
 * multiraft.events, where consume_events finds them.  Reading the queue's
 * usage takes its locks and advances its tail, so it is read at most once a
 * second; a second's notifications are far below the margin left.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "storage.h"

#define NOTIFY_QUEUE_CHECK_MS 1000

static struct
{
	TimestampTz checked_at;		/* 0: never */
	bool		full;			/* not notifying since the last check */
	uint64		skipped;		/* notifications left out while full */
} nq;

static double
queue_usage(void)
{
	LOCAL_FCINFO(fcinfo, 0);

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	return DatumGetFloat8(pg_notification_queue_usage(fcinfo));
}

bool
notify_queue_has_room(int nnotify)
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
