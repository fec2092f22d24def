/*
 * worker_batch.c — Ready/Advance cycles of the multi-raft node
 * (multiraft.h "THE HOST LOOP"): persist, then send, then complete.
 *
 * Persisting is ONE transaction for the whole batch, every group included; its
 * commit is the WAL flush that Raft needs before votes and appends are
 * acknowledged, and the one that makes events, dedup records and the applied
 * index durable together (so an event is never lost nor written twice).
 * synchronous_commit stays on for the worker (worker.c forces it), except for
 * transactions that only hold state re-derivable from the durable log (below).
 *
 * mr_ready() itself runs inside the transaction: applying committed entries may
 * call the storage callbacks (dedup lookups, snapshot data), which read tables.
 *
 * Several rounds per transaction.  A batch that sends nothing (no envelope) may
 * be advanced before the commit, and the next batch built and written in the
 * same transaction: nothing of either leaves the node before the commit (the
 * completions are held until then), and the transaction makes both durable or
 * neither — so for everything outside this process the rounds are one atomic
 * persist step.  This is what lets a single-member group append a command and
 * apply it with one WAL flush instead of two (the leader commits its own entry
 * only after it is "persisted", i.e. after the first round's mr_advance).
 * As soon as a round has envelopes to send, the transaction commits first.
 *
 * And as soon as a round that needs no flush has completions: then the
 * transaction commits without waiting for its flush and the requests complete
 * at once.  Under load the round after a leader's apply proposes the commands
 * held while the applied round was in flight; in the same transaction their
 * appends would leave only after its flush (early appends are a first round's
 * only) and the applied commands' completions would wait for that flush too.
 * In a transaction of their own the appends leave before the leader's flush,
 * as every round's should (bench/ANALYSES.md, eighth analysis).
 *
 * Early appends (dissertation §10.2.1).  A leader may replicate entries before
 * its own write of them is durable: it counts itself towards their commit only
 * after that write (the core's self-progress moves at mr_advance), and its term
 * is already durable, so a crash before the commit only loses entries that some
 * followers hold — which Raft repairs like any unreplicated suffix.  The layer
 * puts such messages first in each envelope (n_early_messages); they leave as
 * soon as the batch is built, so the followers' flush overlaps the leader's.
 * Only in a transaction's first round: a later round may rest on state an
 * earlier round advanced but this transaction has not yet made durable.
 *
 * If anything in the transaction fails, nothing else leaves the node: no other
 * message is sent, no request is completed.  The layer's memory is then ahead of the
 * tables, so the caller must rebuild the node from the tables (worker.c).
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

/* Rounds per transaction (bounded: a transaction should stay short). */
#define MAX_ROUNDS 4

/* What the rounds advanced inside the transaction leave for after the commit. */
typedef struct Held
{
	struct mr_completion *done;
	size_t		ndone;
	size_t		capdone;
	mr_group_id *groups;		/* touched or visited groups, for the status table */
	size_t		ngroups;
	size_t		capgroups;
	uint64		elections;
	uint64		leaders;
	bool		wrote;
} Held;

static int
cmp_group(const void *a, const void *b)
{
	mr_group_id x = *(const mr_group_id *) a;
	mr_group_id y = *(const mr_group_id *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

static bool
batch_has_writes(const struct mr_batch *b)
{
	return b->n_groups || b->n_events || b->n_dedup || b->n_tombstones;
}

static void
hold_group(Held *h, mr_group_id g)
{
	if (h->ngroups == h->capgroups)
	{
		h->capgroups = Max(h->capgroups * 2, 64);
		h->groups = h->groups ? repalloc(h->groups, sizeof(mr_group_id) * h->capgroups)
			: palloc(sizeof(mr_group_id) * h->capgroups);
	}
	h->groups[h->ngroups++] = g;
}

/* Copies what must outlive mr_advance() of this round (called in cxt). */
static void
hold(Held *h, const struct mr_batch *b)
{
	if (h->ndone + b->n_completions > h->capdone)
	{
		h->capdone = Max(h->capdone * 2, h->ndone + b->n_completions + 16);
		h->done = h->done ? repalloc(h->done, sizeof(struct mr_completion) * h->capdone)
			: palloc(sizeof(struct mr_completion) * h->capdone);
	}
	if (b->n_completions > 0)
		memcpy(h->done + h->ndone, b->completions,
			   sizeof(struct mr_completion) * b->n_completions);
	h->ndone += b->n_completions;
	for (size_t i = 0; i < b->n_groups; i++)
		hold_group(h, b->groups[i].group);
	for (size_t i = 0; i < b->n_events; i++)
	{
		hold_group(h, b->events[i].group);
		h->elections += b->events[i].type == MR_EVENT_ELECTION_STARTED;
		h->leaders += b->events[i].type == MR_EVENT_LEADER_ELECTED;
	}
	for (size_t i = 0; i < b->n_completions; i++)
		hold_group(h, b->completions[i].group);
	for (size_t i = 0; i < b->n_visited; i++)
		hold_group(h, b->visited[i]);
	h->wrote |= batch_has_writes(b);
}

/* Sends the early part of every envelope of b (see the top). */
static void
send_early(const struct mr_batch *b)
{
	for (size_t i = 0; i < b->n_envelopes; i++)
	{
		struct mr_envelope early;

		if (mr_envelope_early(&b->envelopes[i], &early))
			transport_send(&early);
	}
}

/* Sends what of b did not leave early. */
static void
send_rest(const struct mr_batch *b, bool early_sent)
{
	for (size_t i = 0; i < b->n_envelopes; i++)
	{
		struct mr_envelope rest;

		if (!early_sent)
			transport_send(&b->envelopes[i]);
		else if (mr_envelope_rest(&b->envelopes[i], &rest))
			transport_send(&rest);
	}
}

/* The transaction committed: send, advance the last round, publish, complete. */
static void
after_commit(Held *h, struct mr_batch *b, bool advance_last, bool early_sent,
			 bool flushed)
{
	int			rc;

	/* 2. send: durable now, so the acknowledgements may leave */
	if (advance_last)
		send_rest(b, early_sent);

	if (h->wrote)
		status_counter_add(MR_CTR_BATCHES_WRITTEN, 1);
	if (flushed)
		status_counter_add(MR_CTR_BATCHES_FLUSHED, 1);
	if (h->elections)
		status_counter_add(MR_CTR_ELECTIONS_STARTED, h->elections);
	if (h->leaders)
		status_counter_add(MR_CTR_LEADERS_ELECTED, h->leaders);

	if (advance_last)
	{
		rc = mr_advance(worker_node, b);
		if (rc != MR_OK)
			elog(ERROR, "multiraft: mr_advance failed: %s", mr_strerror(rc));
	}
	/* 3. publish the status the completions depend on, then complete
	 * (requests.h: a group's status is published before its create completes) */
	qsort(h->groups, h->ngroups, sizeof(mr_group_id), cmp_group);
	worker_publish_groups(h->groups, h->ngroups);
	worker_complete(h->done, h->ndone);
	worker_publish_counters();
}

bool
worker_process_batch(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	struct mr_batch b;
	Held		h;
	volatile bool ready = false;
	volatile bool advance_last = true;
	volatile bool ok = true;
	volatile bool sync = false;
	volatile bool early_sent = false;
	int			saved_synchronous_commit = synchronous_commit;

	memset(&b, 0, sizeof(b));
	memset(&h, 0, sizeof(h));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "multiraft: SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		storage_txn_begin();
		for (int round = 1;; round++)
		{
			storage_callback_reset();
			ready = false;
			rc = mr_ready(worker_node, &b);
			if (rc != MR_OK)
				elog(ERROR, "multiraft: mr_ready failed: %s", mr_strerror(rc));
			ready = true;
			if (storage_callback_error() != NULL)
				ereport(ERROR,
						(errmsg("multiraft: storage callback failed: %s",
								storage_callback_error()->message)));
			/* early_sent describes the last round's batch, the one sent after */
			early_sent = round == 1;
			if (early_sent)
				send_early(&b);
			if (batch_has_writes(&b))
				storage_write_batch(&b);
			if (b.must_sync)
				sync = true;
			{
				MemoryContext old = MemoryContextSwitchTo(cxt);

				hold(&h, &b);
				MemoryContextSwitchTo(old);
			}
			/*
			 * Another round only if this one sends nothing and completes
			 * nothing that could leave without a flush (see the top).
			 */
			if (round == MAX_ROUNDS || b.n_envelopes > 0 ||
				(!sync && b.n_completions > 0))
				break;
			rc = mr_advance(worker_node, &b);
			if (rc != MR_OK)
				elog(ERROR, "multiraft: mr_advance failed: %s", mr_strerror(rc));
			if (!mr_has_ready(worker_node))
			{
				advance_last = false;
				break;
			}
			/* The next round's lookups must see this round's rows. */
			CommandCounterIncrement();
			PopActiveSnapshot();
			PushActiveSnapshot(GetTransactionSnapshot());
		}
		storage_txn_finish();
		PopActiveSnapshot();
		SPI_finish();

		/*
		 * A transaction that holds only state derived from the durable log
		 * (mr_batch.must_sync false: applied index, events, dedup records) need
		 * not wait for its WAL flush: after a crash the worker re-applies the
		 * log past the stored applied index and writes the lost rows again,
		 * exactly once, because each command's event and dedup record commit
		 * together (the meta row may trail anyway, MR_META_LAG).  The next
		 * synchronous commit flushes it anyway.  This saves the leader one flush
		 * per command.
		 */
		/*
		 * A batch that must sync waits for its flush whatever the setting says
		 * (worker.c keeps a server-wide "off" away from the worker, but this is
		 * where a lost flush would break Raft's promises, so it does not rely on
		 * that alone).
		 */
		synchronous_commit = !sync ? SYNCHRONOUS_COMMIT_OFF :
			Max(saved_synchronous_commit, SYNCHRONOUS_COMMIT_LOCAL_FLUSH);
		CommitTransactionCommand();
		synchronous_commit = saved_synchronous_commit;
	}
	PG_CATCH();
	{
		ErrorData  *e;

		synchronous_commit = saved_synchronous_commit;
		e = worker_take_error(cxt);
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
	after_commit(&h, &b, advance_last, early_sent, sync && h.wrote);
	return true;
}
