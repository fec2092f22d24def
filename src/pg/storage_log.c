/*
 * storage_log.c — ranged deletes of multiraft.log rows, straight through its
 * primary key (group_id, log_index).  A row holds a run of entries first_index ..
 * log_index (storage_log_rows.c), so the key is a run's last index: compaction
 * deletes the runs that end at or below the new log start (a run that straddles
 * it stays until a later compaction passes its end; the loader skips its entries
 * at or below the start), and a truncation deletes the runs that end at or above
 * the first replaced index, writing again the head of a run it cuts.
 *
 * Why not SQL: the log is a queue (rows are inserted at the right end of each
 * group's range and deleted from the left by compaction), so between two
 * vacuums its primary key is mostly dead entries, and its statistics describe a
 * table of a few live rows.  The planner then picks full scans for the ranged
 * DELETEs of a batch (measured: a third of the worker's time).  Here each
 * delete is one index scan between exact bounds, and compaction starts at the
 * group's previous log start, so the dead entries of earlier compactions are
 * never visited.  Only the worker writes this table, so a plain heap delete of
 * what the transaction's snapshot sees is enough.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "storage.h"

/* What the worker knows of a group's rows (learned at load and kept up to date by
 * every write; reset with the node, forgotten with the group's replica). */
typedef struct LogStart
{
	uint64		group;			/* hash key */
	uint64		start;			/* rows <= start are deleted already (0: unknown) */
	uint64		last;			/* no row above last exists ... */
	bool		last_known;		/* ... if this is set */
} LogStart;

static HTAB *log_starts = NULL;
static Relation log_heap = NULL;
static Relation log_index_rel = NULL;
static Snapshot phase_snap = NULL;

void
storage_log_reset(void)
{
	if (log_starts != NULL)
		hash_destroy(log_starts);
	log_starts = NULL;
}

static HTAB *
starts(void)
{
	if (log_starts == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(LogStart);
		ctl.hcxt = TopMemoryContext;
		log_starts = hash_create("multiraft log starts", 1024, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return log_starts;
}

static LogStart *
entry(mr_group_id group)
{
	uint64		key = group;
	bool		found;
	LogStart   *e = hash_search(starts(), &key, HASH_ENTER, &found);

	if (!found)
	{
		e->start = 0;
		e->last = 0;
		e->last_known = false;
	}
	return e;
}

void
storage_log_loaded(mr_group_id group, raft_index start, raft_index last)
{
	LogStart   *e = entry(group);

	e->start = start;
	e->last = last;
	e->last_known = true;
}

void
storage_log_appended(mr_group_id group, raft_index last)
{
	LogStart   *e = entry(group);

	/* The append replaced any suffix from its first index (truncation). */
	e->last = last;
	e->last_known = true;
}

void
storage_log_forget(mr_group_id group)
{
	uint64		key = group;

	(void) hash_search(starts(), &key, HASH_REMOVE, NULL);
}

void
storage_log_begin(void)
{
	/*
	 * A batch that failed between storage_log_begin() and storage_log_end()
	 * left its relations and its phase snapshot here.  The abort of its
	 * (sub)transaction released them through the resource owner, so only
	 * dangling pointers remain: forget them.  (Unregistering that snapshot
	 * again raised an error in every later batch of the process, reloads
	 * included; found by multiraft.storage_selftest().)
	 */
	phase_snap = NULL;
	log_heap = NULL;
	log_index_rel = NULL;
	log_heap = table_open(storage_rel(SR_LOG), RowExclusiveLock);
	log_index_rel = index_open(storage_rel(SR_LOG_PKEY), RowExclusiveLock);
}

void
storage_log_new_phase(void)
{
	if (phase_snap != NULL)
		UnregisterSnapshot(phase_snap);
	phase_snap = NULL;
}

void
storage_log_end(void)
{
	storage_log_new_phase();
	if (log_index_rel != NULL)
		index_close(log_index_rel, NoLock);
	if (log_heap != NULL)
		table_close(log_heap, NoLock);
	log_index_rel = NULL;
	log_heap = NULL;
}

/* Deletes the rows of the log that a range scan of its key with keys finds, as
 * the current phase sees them; calls seen(slot, arg) with each before deleting
 * it, if given. */
static void
delete_range_scan(ScanKey keys, int nkeys, void (*seen) (TupleTableSlot *, void *),
				  void *arg)
{
	Relation	heap = log_heap;
	Relation	index = log_index_rel;
	IndexScanDesc scan;
	TupleTableSlot *slot;

	Assert(log_heap != NULL);	/* between storage_log_begin and storage_log_end */
	/*
	 * One snapshot per phase (storage_log_new_phase), taken at the first delete:
	 * it sees the rows written and deleted by the statements before it in this
	 * transaction (storage_write.c starts a phase after each statement whose
	 * rows a later delete may meet).
	 */
	if (phase_snap == NULL)
	{
		CommandCounterIncrement();
		phase_snap = RegisterSnapshot(GetLatestSnapshot());
	}
	slot = table_slot_create(heap, NULL);
	scan = index_beginscan(heap, index, phase_snap, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		if (seen != NULL)
			seen(slot, arg);
		simple_table_tuple_delete(heap, &slot->tts_tid, phase_snap);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}

/* Deletes the rows of group with lo <= log_index <= hi that this phase sees. */
static void
delete_range(mr_group_id group, int64 lo, int64 hi,
			 void (*seen) (TupleTableSlot *, void *), void *arg)
{
	ScanKeyData key[3];

	if (lo > hi)
		return;
	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ, U64_DATUM(group));
	ScanKeyInit(&key[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(lo));
	ScanKeyInit(&key[2], 2, BTLessEqualStrategyNumber, F_INT8LE, Int64GetDatum(hi));
	delete_range_scan(key, 3, seen, arg);
}

typedef struct CutRun
{
	mr_group_id group;
	raft_index from;			/* the first replaced index */
	raft_index compacted;		/* entries up to here are compacted away */
	StorageColumn *cols;		/* where the kept heads go */
} CutRun;

/*
 * A run ending at or after the first replaced index: if it starts before it, its
 * head (first_index .. from - 1) is still the log, and is written again — but
 * not the entries compaction has passed: a row ending at or below the log start
 * would lie below where the next compaction starts, and stay for good.
 */
static void
keep_head(TupleTableSlot *slot, void *arg)
{
	CutRun	   *c = arg;
	bool		isnull;
	raft_index	last = DATUM_U64(slot_getattr(slot, 2, &isnull));
	raft_index	first = DATUM_U64(slot_getattr(slot, 3, &isnull));
	raft_index	keep = Max(first, c->compacted + 1);
	Datum		v;
	struct raft_entry *e;
	size_t		n;

	if (keep >= c->from)
		return;
	v = slot_getattr(slot, 4, &isnull);
	e = storage_log_row_unpack(c->group, first, last, v, isnull, &n);
	storage_log_add_rows(c->cols, c->group, e + (keep - first), (size_t) (c->from - keep));
	pfree(e);
}

void
storage_log_truncate(mr_group_id group, raft_index from, struct StorageColumn *cols)
{
	uint64		key = group;
	bool		found;
	LogStart   *e = hash_search(starts(), &key, HASH_FIND, &found);
	CutRun		cut = {group, from, found ? e->start : 0, cols};

	/* The usual case: the entries extend the log, nothing to replace. */
	if (found && e->last_known && from > e->last)
		return;
	delete_range(group, (int64) from, PG_INT64_MAX, keep_head, &cut);
}

void
storage_log_compact(mr_group_id group, raft_index upto)
{
	uint64		key = group;
	bool		found;
	LogStart   *e = hash_search(starts(), &key, HASH_FIND, &found);
	int64		lo = found ? (int64) e->start + 1 : 0;	/* start 0: from the first row */

	delete_range(group, lo, (int64) upto, NULL, NULL);
	entry(group)->start = upto;
}
