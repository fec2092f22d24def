/*
 * storage_prune.c — deleting the dedup records of generated command ids once
 * their group is past their bound (mr_dedup_record.expires_after): no copy of
 * such a command can apply any more (multiraft.h, mr_propose_generated).
 *
 * Runs with each compaction of a group (storage_write.c), so it must cost
 * little however large the table: one range scan of the partial index
 * dedup_expiry (group_id, expires_after) per group, deleting by tid.  (As one
 * SQL statement over all groups the planner preferred a hash join over the
 * whole index: ~50 ms per call with 200,000 records.)  The scan starts where
 * the previous one for the group stopped (kept with the group's log positions,
 * storage_log.c), so it never walks the index entries of rows it deleted itself.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "storage.h"

void
storage_prune_dedup(mr_group_id group, raft_index applied)
{
	int64	   *pruned = storage_log_dedup_pruned(group);
	Relation	heap;
	Relation	index;
	ScanKeyData skey[3];
	int64		below = (int64) Min(applied, (raft_index) PG_INT64_MAX);

	/* Applied indexes only grow within a replica: a smaller one is a new replica
	 * of the group here, with records of its own. */
	if (below < *pruned)
		*pruned = PG_INT64_MIN;
	if (below == *pruned)
		return;
	heap = table_open(storage_rel(SR_DEDUP), RowExclusiveLock);
	index = index_open(storage_rel(SR_DEDUP_EXPIRY), RowExclusiveLock);
	ScanKeyInit(&skey[0], 1, BTEqualStrategyNumber, F_INT8EQ, U64_DATUM(group));
	ScanKeyInit(&skey[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(*pruned));
	ScanKeyInit(&skey[2], 2, BTLessStrategyNumber, F_INT8LT, Int64GetDatum(below));
	/* The batch's deletes share one scan-and-delete and its snapshot (storage_log.c). */
	storage_delete_range(heap, index, skey, 3);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	*pruned = below;
}
