/*
 * storage_log.c — where each group's rows of multiraft.log are, and the deletes
 * that truncation, compaction and a group's removal make.
 *
 * A row holds a run of entries first_index .. log_index of one group
 * (storage_log_rows.c).  The table has no index: with many groups, an index on
 * (group_id, log_index) took each run's insert to a random leaf page, and each
 * compaction through an index scan (bench/ANALYSES.md, twentieth analysis).
 * Instead the worker keeps, per group, its runs in index order with the
 * physical address (TID) of each row: learned when it loads the table
 * (storage_load.c), added to when it inserts rows (storage_log_insert, which
 * takes the TIDs from the insert itself) and removed from when it deletes them.
 * These lists are the whole table as this process sees it: every row is in the
 * list of its group (leftovers of groups without a meta row too), so removing a
 * group deletes its rows without looking for them.
 *
 * Only the worker writes this table.  An operator's VACUUM FULL or CLUSTER
 * rewrites it into a new file, where every row has a new address: each batch
 * compares the table's file with the one its addresses are in, and reads the
 * addresses again after a rewrite (relearn).  And each delete first reads the
 * row at its TID and checks that it is the run it expects (group, first and
 * last index): a row an operator updated or deleted, or a TID whose row was
 * rolled back and whose slot was reused, fails the batch with an error instead
 * of deleting another row.  The worker then reloads everything from the tables
 * (worker.c), these lists included.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "storage.h"

typedef struct LogRun
{
	raft_index	first;
	raft_index	last;
	ItemPointerData tid;
} LogRun;

/* A group's rows, in index order: runs[head .. head + n - 1]. */
typedef struct LogRuns
{
	uint64		group;			/* hash key */
	raft_index	start;			/* the log start: entries at or below are compacted */
	int			head;
	int			n;
	int			cap;
	LogRun	   *runs;
} LogRuns;

static MemoryContext runs_cxt = NULL;
static HTAB *groups = NULL;
static Oid	runs_file = InvalidOid;	/* the table's file the addresses are in */
static Relation log_heap = NULL;
static Snapshot phase_snap = NULL;

void
storage_log_reset(void)
{
	if (runs_cxt != NULL)
		MemoryContextDelete(runs_cxt);
	runs_cxt = NULL;
	groups = NULL;
	runs_file = InvalidOid;
}

static HTAB *
group_table(void)
{
	if (groups == NULL)
	{
		HASHCTL		ctl;

		runs_cxt = AllocSetContextCreate(TopMemoryContext, "multiraft log rows",
										 ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(LogRuns);
		ctl.hcxt = runs_cxt;
		groups = hash_create("multiraft log rows", 1024, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return groups;
}

static LogRuns *
find(mr_group_id group)
{
	uint64		key = group;

	return hash_search(group_table(), &key, HASH_FIND, NULL);
}

static LogRuns *
enter(mr_group_id group)
{
	uint64		key = group;
	bool		found;
	LogRuns    *g = hash_search(group_table(), &key, HASH_ENTER, &found);

	if (!found)
	{
		g->start = 0;
		g->head = 0;
		g->n = 0;
		g->cap = 0;
		g->runs = NULL;
	}
	return g;
}

static void
push_run(LogRuns *g, raft_index first, raft_index last, ItemPointer tid)
{
	LogRun	   *r;

	if (g->head + g->n == g->cap)
	{
		if (g->head > 0)
		{
			/* reuse the room compaction left at the front */
			memmove(g->runs, g->runs + g->head, sizeof(LogRun) * g->n);
			g->head = 0;
		}
		if (g->n == g->cap)
		{
			int			cap = Max(4, g->cap * 2);

			g->runs = g->runs == NULL ?
				MemoryContextAlloc(runs_cxt, sizeof(LogRun) * cap) :
				repalloc(g->runs, sizeof(LogRun) * cap);
			g->cap = cap;
		}
	}
	r = &g->runs[g->head + g->n++];
	r->first = first;
	r->last = last;
	r->tid = *tid;
}

void
storage_log_learn_start(mr_group_id group, raft_index start)
{
	enter(group)->start = start;
}

void
storage_log_learn_row(mr_group_id group, ItemPointer tid, raft_index first, raft_index last)
{
	/*
	 * Rows come in log_index order (the readers sort them).  Rows that overlap,
	 * which no write makes, are kept too, not refused: that group's restore
	 * finds its entries not consecutive and leaves the group out with a
	 * WARNING (storage_load.c), the other groups start, and removing the group
	 * deletes every one of its rows.
	 */
	push_run(enter(group), first, last, tid);
}

void
storage_log_learn_tuple(HeapTuple t, TupleDesc d)
{
	bool		isnull;
	Datum		tid = SPI_getbinval(t, d, 1, &isnull);

	if (isnull)
		elog(ERROR, "multiraft: a log row without an address");
	storage_log_learn_row((mr_group_id) storage_col_u64(t, d, 2),
						  (ItemPointer) DatumGetPointer(tid),
						  storage_col_u64(t, d, 4), storage_col_u64(t, d, 3));
}

void
storage_log_forget(mr_group_id group)
{
	uint64		key = group;
	LogRuns    *g = find(group);

	if (g == NULL)
		return;
	if (g->runs != NULL)
		pfree(g->runs);
	(void) hash_search(group_table(), &key, HASH_REMOVE, NULL);
}

/*
 * The table was rewritten since the addresses were learned: every row is
 * somewhere else, the same rows (a rewrite keeps the live rows).  Each group
 * keeps its log start; its runs are read again, in index order.
 */
static void
relearn(void)
{
	HASH_SEQ_STATUS it;
	LogRuns    *g;

	ereport(LOG,
			(errmsg("multiraft: multiraft.log was rewritten (VACUUM FULL or CLUSTER); reading where its rows are again")));
	hash_seq_init(&it, group_table());
	while ((g = hash_seq_search(&it)) != NULL)
	{
		g->head = 0;
		g->n = 0;
	}
	if (SPI_execute("SELECT ctid, group_id, log_index, first_index FROM multiraft.log"
					" ORDER BY group_id, log_index", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not read where the log rows are");
	for (uint64 i = 0; i < SPI_processed; i++)
		storage_log_learn_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	SPI_freetuptable(SPI_tuptable);
}

void
storage_log_learned_file(void)
{
	Relation	rel = table_open(storage_rel(SR_LOG), AccessShareLock);

	runs_file = rel->rd_node.relNode;
	table_close(rel, NoLock);
}

void
storage_log_begin(void)
{
	/*
	 * A batch that failed between storage_log_begin() and storage_log_end()
	 * left its relation and its phase snapshot here.  The abort of its
	 * (sub)transaction released them through the resource owner, so only
	 * dangling pointers remain: forget them.  (Unregistering that snapshot
	 * again raised an error in every later batch of the process, reloads
	 * included; found by multiraft.storage_selftest().)
	 */
	phase_snap = NULL;
	log_heap = NULL;
	log_heap = table_open(storage_rel(SR_LOG), RowExclusiveLock);
	if (runs_file != log_heap->rd_node.relNode)
	{
		if (OidIsValid(runs_file))
			relearn();
		runs_file = log_heap->rd_node.relNode;
	}
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
	if (log_heap != NULL)
		table_close(log_heap, NoLock);
	log_heap = NULL;
}

/*
 * One snapshot per phase (storage_log_new_phase), taken at the first read: it
 * sees the rows written and deleted by the statements before it in this
 * transaction (storage_write.c starts a phase after each statement whose rows
 * a later delete may meet).
 */
static Snapshot
phase_snapshot(void)
{
	Assert(log_heap != NULL);	/* between storage_log_begin and storage_log_end */
	if (phase_snap == NULL)
	{
		CommandCounterIncrement();
		phase_snap = RegisterSnapshot(GetLatestSnapshot());
	}
	return phase_snap;
}

/*
 * Deletes the row of run r of group; if keep_from < keep_to, first adds its
 * entries keep_from .. keep_to - 1 to cols as new rows (the head of a run a
 * truncation cuts).  ERROR unless the row at the run's TID is that run.
 */
static void
delete_run(mr_group_id group, const LogRun *r, raft_index keep_from, raft_index keep_to,
		   StorageColumn *cols)
{
	Snapshot	snap = phase_snapshot();
	TupleTableSlot *slot = table_slot_create(log_heap, NULL);
	ItemPointerData tid = r->tid;
	bool		same;

	same = table_tuple_fetch_row_version(log_heap, &tid, snap, slot);
	if (same)
	{
		/* group_id, log_index, first_index: NOT NULL, but trust nothing */
		slot_getsomeattrs(slot, 3);
		same = !slot->tts_isnull[0] && !slot->tts_isnull[1] && !slot->tts_isnull[2] &&
			DATUM_U64(slot->tts_values[0]) == (uint64) group &&
			DATUM_U64(slot->tts_values[1]) == r->last &&
			DATUM_U64(slot->tts_values[2]) == r->first;
	}
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("multiraft: log row of group " INT64_FORMAT " with entries "
						UINT64_FORMAT " to " UINT64_FORMAT " is not where the worker left it",
						(int64) group, (uint64) r->first, (uint64) r->last),
				 errdetail("Only the worker may change multiraft.log; it reloads its state.")));
	if (keep_from < keep_to)
	{
		bool		vnull;
		Datum		v = slot_getattr(slot, 4, &vnull);
		size_t		n;
		struct raft_entry *e = storage_log_row_unpack(group, r->first, r->last, v, vnull, &n);

		storage_log_add_rows(cols, group, e + (keep_from - r->first),
							 (size_t) (keep_to - keep_from));
		pfree(e);
	}
	ExecDropSingleTupleTableSlot(slot);
	simple_table_tuple_delete(log_heap, &tid, snap);
}

void
storage_log_truncate(mr_group_id group, raft_index from, StorageColumn *cols)
{
	LogRuns    *g = find(group);

	/*
	 * The runs that end at or after the first replaced index go, last first.
	 * One that starts before it still holds the log's head first .. from - 1:
	 * that head is written again, but not the entries compaction has passed
	 * (a row below the log start would only wait for the next compaction).
	 */
	while (g != NULL && g->n > 0 && g->runs[g->head + g->n - 1].last >= from)
	{
		LogRun		r = g->runs[g->head + g->n - 1];
		raft_index	keep = Max(r.first, g->start + 1);

		g->n--;
		delete_run(group, &r, keep, r.first < from ? from : keep, cols);
	}
}

void
storage_log_compact(mr_group_id group, raft_index upto)
{
	LogRuns    *g = enter(group);

	/* A run that straddles the new start stays until a later compaction passes
	 * its end (the loader skips its entries at or below the start). */
	while (g->n > 0 && g->runs[g->head].last <= upto)
	{
		LogRun		r = g->runs[g->head];

		g->head++;
		g->n--;
		delete_run(group, &r, 0, 0, NULL);
	}
	if (g->n == 0)
		g->head = 0;
	g->start = upto;
}

void
storage_log_delete_group(mr_group_id group)
{
	/* Every run ends at or after index 0, and none starts before it. */
	storage_log_truncate(group, 0, NULL);
	storage_log_forget(group);
}

/* Learns the rows of cols (as inserted, at tids). */
static void
learn_inserted(const StorageColumn *cols, const ItemPointerData *tids)
{
	for (int i = 0; i < cols[0].n; i++)
		storage_log_learn_row((mr_group_id) DATUM_U64(cols[0].values[i]),
							  (ItemPointer) &tids[i],
							  DATUM_U64(cols[2].values[i]), DATUM_U64(cols[1].values[i]));
}

/*
 * The fallback while an operator changed the table (a trigger, say): the SQL
 * statement, which returns where each row went and what it holds — a BEFORE
 * trigger may have changed or skipped rows, and what is stored is what counts.
 */
static void
insert_by_statement(StorageColumn *cols)
{
	Datum		v[STORAGE_LOG_COLUMNS];

	for (int c = 0; c < STORAGE_LOG_COLUMNS; c++)
		v[c] = storage_column_array(&cols[c]);
	storage_exec(SP_INSERT_LOG, v, NULL, false, SPI_OK_INSERT_RETURNING);
	for (uint64 i = 0; i < SPI_processed; i++)
		storage_log_learn_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	SPI_freetuptable(SPI_tuptable);
}

void
storage_log_insert(StorageColumn *cols)
{
	Relation	rel;
	ItemPointerData *tids;

	if (cols[0].n == 0)
		return;
	rel = storage_insert_open(SR_LOG, cols, STORAGE_LOG_COLUMNS);
	if (rel == NULL)
	{
		insert_by_statement(cols);
		return;
	}
	tids = palloc(sizeof(ItemPointerData) * cols[0].n);
	storage_insert_rows(rel, cols, STORAGE_LOG_COLUMNS, tids);
	learn_inserted(cols, tids);
	pfree(tids);
}
