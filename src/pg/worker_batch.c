/*
 * worker_batch.c — one Ready/Advance cycle of the multi-raft node
 * (multiraft.h "THE HOST LOOP"): persist, then send, then complete.
 *
 * Persisting is ONE transaction for the whole batch, every group included; its
 * commit is the WAL flush that Raft needs before votes and appends are
 * acknowledged, and the one that makes events, dedup records and the applied
 * index durable together (so an event is never lost nor written twice).
 * synchronous_commit stays on for the worker (worker.c forces it).
 *
 * mr_ready() itself runs inside the transaction: applying committed entries may
 * call the storage callbacks (dedup lookups, snapshot data), which read tables.
 *
 * If anything in the transaction fails, nothing of the batch leaves the node: no
 * message is sent, no request is completed, and mr_advance() is not called.  The
 * layer's memory is then ahead of the tables, so the caller must rebuild the
 * node from the tables (worker.c).
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "storage.h"
#include "transport.h"
#include "worker_internal.h"

static int
cmp_group(const void *a, const void *b)
{
	mr_group_id x = *(const mr_group_id *) a;
	mr_group_id y = *(const mr_group_id *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Every group the batch touched (sorted, may repeat), for the status table. */
static mr_group_id *
touched_groups(const struct mr_batch *b, size_t *n)
{
	size_t		cap = b->n_groups + b->n_events + b->n_completions;
	mr_group_id *g = palloc(sizeof(mr_group_id) * Max(cap, 1));
	size_t		k = 0;

	for (size_t i = 0; i < b->n_groups; i++)
		g[k++] = b->groups[i].group;
	for (size_t i = 0; i < b->n_events; i++)
		g[k++] = b->events[i].group;
	for (size_t i = 0; i < b->n_completions; i++)
		g[k++] = b->completions[i].group;
	qsort(g, k, sizeof(mr_group_id), cmp_group);
	*n = k;
	return g;
}

static bool
batch_has_writes(const struct mr_batch *b)
{
	return b->n_groups || b->n_events || b->n_dedup || b->n_tombstones;
}

/* The batch is durable: send, advance, publish, complete. */
static void
after_persist(struct mr_batch *b)
{
	struct mr_completion *done;
	mr_group_id *groups;
	size_t		ngroups;
	size_t		ndone;
	uint64		elections = 0,
				leaders = 0;
	int			rc;

	/* 2. send: durable now, so the acknowledgements may leave */
	for (size_t i = 0; i < b->n_envelopes; i++)
		transport_send(&b->envelopes[i]);

	/* 3. completions are copied out so that they can be delivered after the
	 * status they depend on is published (requests.h: publish, then complete) */
	ndone = b->n_completions;
	done = palloc(sizeof(struct mr_completion) * Max(ndone, 1));
	if (ndone > 0)
		memcpy(done, b->completions, sizeof(struct mr_completion) * ndone);
	groups = touched_groups(b, &ngroups);
	for (size_t i = 0; i < b->n_events; i++)
	{
		elections += b->events[i].type == MR_EVENT_ELECTION_STARTED;
		leaders += b->events[i].type == MR_EVENT_LEADER_ELECTED;
	}
	if (batch_has_writes(b))
		status_counter_add(MR_CTR_BATCHES_WRITTEN, 1);
	if (elections)
		status_counter_add(MR_CTR_ELECTIONS_STARTED, elections);
	if (leaders)
		status_counter_add(MR_CTR_LEADERS_ELECTED, leaders);

	rc = mr_advance(worker_node, b);
	if (rc != MR_OK)
		elog(ERROR, "multiraft: mr_advance failed: %s", mr_strerror(rc));
	worker_publish_groups(groups, ngroups);
	worker_complete(done, ndone);
	worker_publish_counters();
}

bool
worker_process_batch(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	struct mr_batch b;
	volatile bool ready = false;
	volatile bool ok = true;

	memset(&b, 0, sizeof(b));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "multiraft: SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		storage_callback_reset();
		rc = mr_ready(worker_node, &b);
		if (rc != MR_OK)
			elog(ERROR, "multiraft: mr_ready failed: %s", mr_strerror(rc));
		ready = true;
		if (storage_callback_error() != NULL)
			ereport(ERROR,
					(errmsg("multiraft: storage callback failed: %s",
							storage_callback_error()->message)));
		if (batch_has_writes(&b))
			storage_write_batch(&b);
		PopActiveSnapshot();
		SPI_finish();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("multiraft: could not persist a batch (%s): %s",
						ready ? "writing" : "building", e->message),
				 e->detail ? errdetail_internal("%s", e->detail) : 0,
				 errhint("The worker reloads every group from its tables; requests in flight fail.")));
		FreeErrorData(e);
		storage_callback_reset();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	if (!ok)
		return false;
	after_persist(&b);
	return true;
}
