/*
 * storage_insert.c — many rows into one storage table without the executor:
 * the log rows, the dedup records of applied commands and the events of every
 * batch (storage_write.c).
 *
 * An INSERT ... SELECT FROM unnest(arrays) costs a fixed 20-30 us per statement
 * (plan cache check, executor start-up, the function scan, the projection) and
 * a heap WAL record per row.  Here the rows go through the table AM's
 * multi-insert — as COPY FROM does it: one WAL record per heap page instead of
 * one per row — and then into every index of the table with
 * ExecInsertIndexTuples, which checks uniqueness (a command id stored twice
 * fails the batch, as the plain INSERT did) and evaluates the predicates of
 * any partial index.
 *
 * Only while the table is as the extension created it: no triggers, rules,
 * check constraints, generated columns or row security, and exactly the
 * columns the caller brings, in order and type.  An operator who adds a
 * trigger to multiraft.events (to fan events out, say) gets it fired: the
 * caller then runs its SQL statement instead (storage_insert_open answers NULL).
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

#include "storage.h"

/* Rows per multi-insert call (as COPY FROM): bounds the slots held at once. */
#define INSERT_CHUNK 1000

/* Whether rel takes rows of cols' shape with nothing but its indexes to maintain. */
bool
storage_as_created(Relation rel, const StorageColumn *cols, int ncols)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rules != NULL || rel->rd_rel->relrowsecurity)
		return false;
	if (desc->constr != NULL &&
		(desc->constr->num_check > 0 || desc->constr->has_generated_stored))
		return false;
	if (desc->natts != ncols)
		return false;
	for (int i = 0; i < ncols; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != cols[i].elemtype)
			return false;
	}
	return true;
}

Relation
storage_insert_open(StorageRel r, const StorageColumn *cols, int ncols)
{
	Relation	rel = table_open(storage_rel(r), RowExclusiveLock);

	if (storage_as_created(rel, cols, ncols))
		return rel;
	table_close(rel, NoLock);	/* the statement takes the same lock anyway */
	return NULL;
}

void
storage_insert_rows(Relation rel, const StorageColumn *cols, int ncols, ItemPointer tids)
{
	int			n = cols[0].n;
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	CommandId	cid = GetCurrentCommandId(true);
	TupleTableSlot **slots = palloc0(sizeof(TupleTableSlot *) * Min(Max(n, 1), INSERT_CHUNK));

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	for (int start = 0; start < n; start += INSERT_CHUNK)
	{
		int			m = Min(INSERT_CHUNK, n - start);

		for (int i = 0; i < m; i++)
		{
			TupleTableSlot *slot;

			if (slots[i] == NULL)
				slots[i] = table_slot_create(rel, NULL);
			slot = slots[i];
			ExecClearTuple(slot);
			for (int c = 0; c < ncols; c++)
			{
				slot->tts_values[c] = cols[c].values[start + i];
				slot->tts_isnull[c] = cols[c].nulls[start + i];
			}
			ExecStoreVirtualTuple(slot);
		}
		table_multi_insert(rel, slots, m, cid, 0, NULL);
		if (tids != NULL)
			for (int i = 0; i < m; i++)
				tids[start + i] = slots[i]->tts_tid;
		for (int i = 0; i < m; i++)
		{
			if (rri->ri_NumIndices > 0)
				list_free(ExecInsertIndexTuples(rri, slots[i], estate, false, false,
												NULL, NIL));
			ResetPerTupleExprContext(estate);
		}
	}
	for (int i = 0; i < Min(n, INSERT_CHUNK); i++)
		if (slots[i] != NULL)
			ExecDropSingleTupleTableSlot(slots[i]);
	pfree(slots);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);

	/* As after an SPI statement: what follows in this transaction sees the rows. */
	CommandCounterIncrement();
}
