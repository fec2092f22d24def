/*
 * storage_meta.c — the meta rows of multiraft.group_meta (one per group: hard
 * state, configuration, applied index, log start, the layer's state), written
 * once at the end of each transaction that touched the group
 * (storage_txn_finish).
 *
 * Written straight through the heap and the primary key, the way PostgreSQL
 * writes its own catalog rows (CatalogTupleUpdate / CatalogTupleInsert),
 * rather than as one INSERT ... ON CONFLICT DO UPDATE over unnest(): the row
 * nearly always exists, and the upsert's speculative path cost a row lock (one
 * more WAL record per row) and about twice the time of the update itself.  A
 * plain UPDATE joined to the arrays would leave the join's plan to the
 * planner, which for a generic plan may pick a scan of the whole table; here
 * each row is one probe of the primary key.  The table has no triggers,
 * constraints or indexes besides the primary key that this would bypass (it
 * belongs to the extension; the fillfactor of 50 keeps the updates HOT); an
 * operator's change that would be bypassed fails the batch instead (plain_indexes,
 * storage_as_created).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "nodes/execnodes.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "storage.h"

/* Whether every index CatalogOpenIndexes found is one that CatalogIndexInsert
 * maintains (the conditions it asserts): on plain columns, without a predicate, not
 * an exclusion constraint, checked at once.  An index on an expression would make it
 * evaluate the expression without an executor state, which crashes the worker and
 * with it the server. */
static bool
plain_indexes(CatalogIndexState indstate)
{
	for (int i = 0; i < indstate->ri_NumIndices; i++)
	{
		IndexInfo  *info = indstate->ri_IndexRelationInfo[i];

		if (info->ii_Expressions != NIL || info->ii_Predicate != NIL ||
			info->ii_ExclusionOps != NULL ||
			!indstate->ri_IndexRelationDescs[i]->rd_index->indimmediate)
			return false;
	}
	return true;
}

/* The row of group, as this transaction sees it now: its tid, or false. */
static bool
find_row(Relation heap, Relation index, Snapshot snap, TupleTableSlot *slot,
		 Datum group, ItemPointer tid)
{
	IndexScanDesc scan;
	ScanKeyData key;
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, group);
	scan = index_beginscan(heap, index, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
		*tid = slot->tts_tid;
	index_endscan(scan);
	ExecClearTuple(slot);
	return found;
}

void
storage_meta_write(StorageColumn cols[STORAGE_META_COLUMNS], const bool *skip)
{
	Relation	heap;
	Relation	index;
	TupleDesc	desc;
	TupleTableSlot *slot;
	CatalogIndexState indstate;
	Snapshot	snap;
	int			n = cols[0].n;

	if (n == 0)
		return;
	heap = table_open(storage_rel(SR_META), RowExclusiveLock);
	index = index_open(storage_rel(SR_META_PKEY), RowExclusiveLock);
	desc = RelationGetDescr(heap);
	indstate = CatalogOpenIndexes(heap);
	/* An error, not a crash: the batch fails and the worker reloads (worker.c). */
	if (!storage_as_created(heap, cols, STORAGE_META_COLUMNS) || !plain_indexes(indstate))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("multiraft.group_meta is not as the extension created it"),
				 errdetail("The worker writes its rows directly: the table takes no triggers, rules, row security, check constraints, generated or changed columns, nor indexes on expressions, partial, exclusion or deferrable ones."),
				 errhint("Undo the change to multiraft.group_meta.")));
	slot = table_slot_create(heap, NULL);

	/* See this transaction's own changes (a group removed and re-created). */
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetLatestSnapshot());

	for (int r = 0; r < n; r++)
	{
		Datum		values[STORAGE_META_COLUMNS];
		bool		nulls[STORAGE_META_COLUMNS] = {0};
		HeapTuple	tup;
		ItemPointerData tid;

		if (skip != NULL && skip[r])
			continue;
		for (int c = 0; c < STORAGE_META_COLUMNS; c++)
			values[c] = cols[c].values[r];
		tup = heap_form_tuple(desc, values, nulls);
		if (find_row(heap, index, snap, slot, values[0], &tid))
			CatalogTupleUpdateWithInfo(heap, &tid, tup, indstate);
		else
			CatalogTupleInsertWithInfo(heap, tup, indstate);
		heap_freetuple(tup);
	}

	UnregisterSnapshot(snap);
	CatalogCloseIndexes(indstate);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, RowExclusiveLock);
	table_close(heap, RowExclusiveLock);
}
