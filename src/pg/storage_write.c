/*
 * storage_write.c — persists the batches of the multi-raft layer (mr_batch) in
 * the worker's current transaction: the groups' rows in the order
 * mr_group_write prescribes, dedup records and tombstones per batch; the meta
 * rows once per transaction (storage_txn_finish), because one transaction may
 * carry several batches (worker_batch.c) and a group's meta row only needs its
 * last value — as do the events and their notifications (storage_events.c).
 * The caller commits: one commit, one WAL flush for every group.
 *
 * Each stage is one write for all groups of the batch: the rows of a table go
 * in together (storage_insert.c: multi-insert and index inserts, or one
 * statement over arrays + unnest when an operator changed the table), the
 * deletes are statements over arrays, except the log's, which go row by row to
 * the addresses the worker keeps (storage_log.c).  That keeps the per-group
 * order of mr_group_write (remove/create, snapshot, entries, compaction, meta)
 * because every group appears at most once in a batch; if a batch ever lists a
 * group twice, its writes are done one at a time in batch order instead.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "storage.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

static bool
groups_unique(const struct mr_group_write *w, size_t n)
{
	uint64	   *ids;
	bool		unique = true;

	if (n < 2)
		return true;
	ids = palloc(sizeof(uint64) * n);
	for (size_t i = 0; i < n; i++)
		ids[i] = w[i].group;
	qsort(ids, n, sizeof(uint64), cmp_u64);
	for (size_t i = 1; i < n && unique; i++)
		unique = ids[i] != ids[i - 1];
	pfree(ids);
	return unique;
}

/* Replica ids as a bigint[] value. */
static Datum
id_array(const raft_id *ids, uint32 n)
{
	StorageColumn c;

	storage_column_init(&c, INT8OID, Max(n, 1));
	for (uint32 i = 0; i < n; i++)
		storage_column_add(&c, U64_DATUM(ids[i]), false);
	return storage_column_array(&c);
}

static void
exec_group_list(StoragePlan p, StorageColumn *groups)
{
	Datum		v[1];

	if (groups->n == 0)
		return;
	v[0] = storage_column_array(groups);
	storage_exec(p, v, NULL, false, SPI_OK_DELETE);
}

/* One statement over parallel columns (none if the first is empty). */
static void
exec_columns(StoragePlan p, StorageColumn *cols, int ncols, int expected)
{
	Datum		v[4];

	Assert(ncols <= (int) lengthof(v));
	if (cols[0].n == 0)
		return;
	for (int i = 0; i < ncols; i++)
		v[i] = storage_column_array(&cols[i]);
	storage_exec(p, v, NULL, false, expected);
}

/*
 * What the batches of the current transaction leave for storage_txn_finish: the
 * latest meta row of each group (the events: storage_events.c).  Allocated in
 * TopTransactionContext, so an aborted transaction takes it along.
 */
typedef struct TxnWrites
{
	bool		active;
	StorageColumn meta[STORAGE_META_COLUMNS];
	bool	   *meta_dropped;	/* per meta row: the group was removed later */
	int			meta_cap;
	HTAB	   *meta_pos;		/* group -> row in meta[] */
} TxnWrites;

typedef struct MetaPos
{
	uint64		group;
	int			row;
} MetaPos;

static TxnWrites txn;

void
storage_txn_begin(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	HASHCTL		ctl;

	memset(&txn, 0, sizeof(txn));
	for (int c = 0; c < STORAGE_META_COLUMNS; c++)
		storage_column_init(&txn.meta[c], (c == 5 || c == 6) ? INT8ARRAYOID :
							c == 10 ? BYTEAOID : INT8OID, 16);
	txn.meta_cap = 16;
	txn.meta_dropped = palloc0(sizeof(bool) * txn.meta_cap);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(MetaPos);
	ctl.hcxt = TopTransactionContext;
	txn.meta_pos = hash_create("multiraft meta rows", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	txn.active = true;
	MemoryContextSwitchTo(old);
	storage_events_begin();
}

static void
txn_drop_meta(mr_group_id group)
{
	uint64		key = group;
	bool		found;
	MetaPos    *e = hash_search(txn.meta_pos, &key, HASH_FIND, &found);

	if (found)
		txn.meta_dropped[e->row] = true;
}

static void
txn_keep_meta(const struct mr_group_write *g)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	uint64		key = g->group;
	bool		found;
	MetaPos    *e = hash_search(txn.meta_pos, &key, HASH_ENTER, &found);
	Datum		v[STORAGE_META_COLUMNS];

	v[0] = U64_DATUM(g->group);
	v[1] = U64_DATUM(g->replica_id);
	v[2] = U64_DATUM(g->hard_state.term);
	v[3] = U64_DATUM(g->hard_state.vote);
	v[4] = U64_DATUM(g->hard_state.commit);
	v[5] = id_array(g->conf_state.voters, g->conf_state.n_voters);
	v[6] = id_array(g->conf_state.learners, g->conf_state.n_learners);
	v[7] = U64_DATUM(g->applied);
	v[8] = U64_DATUM(g->log_start_index);
	v[9] = U64_DATUM(g->log_start_term);
	v[10] = storage_bytea(g->state, g->state_len);
	if (found)
	{
		/* overwrite the row (the old values stay allocated until commit) */
		for (int c = 0; c < STORAGE_META_COLUMNS; c++)
			txn.meta[c].values[e->row] = v[c];
		txn.meta_dropped[e->row] = false;
	}
	else
	{
		e->row = txn.meta[0].n;
		for (int c = 0; c < STORAGE_META_COLUMNS; c++)
			storage_column_add(&txn.meta[c], v[c], false);
		if (e->row >= txn.meta_cap)
		{
			txn.meta_dropped = repalloc(txn.meta_dropped, sizeof(bool) * txn.meta_cap * 2);
			memset(txn.meta_dropped + txn.meta_cap, 0, sizeof(bool) * txn.meta_cap);
			txn.meta_cap *= 2;
		}
		txn.meta_dropped[e->row] = false;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Inserts the rows of cols (one column per column of the table, in order):
 * straight into the table and its indexes while it is as the extension created
 * it (storage_insert.c), else with statement p, which takes the same columns
 * as arrays — so triggers an operator added still fire.
 */
static void
insert_rows(StorageRel r, StoragePlan p, StorageColumn *cols, int ncols)
{
	Relation	rel = storage_insert_open(r, cols, ncols);
	Datum		v[8];

	Assert(ncols <= lengthof(v));
	if (rel != NULL)
	{
		storage_insert_rows(rel, cols, ncols, NULL);
		return;
	}
	for (int c = 0; c < ncols; c++)
		v[c] = storage_column_array(&cols[c]);
	storage_exec(p, v, NULL, false, SPI_OK_INSERT);
}

/* Writes groups w[0..n-1] (each group at most once) stage by stage. */
static void
write_groups(const struct mr_group_write *w, size_t n)
{
	StorageColumn wipe,
				wipe_dedup;
	StorageColumn log[STORAGE_LOG_COLUMNS];
	size_t		nruns = 0;

	for (size_t i = 0; i < n; i++)
		nruns += w[i].n_entries > 0;

	/*
	 * 1. removed or re-created replicas: every row of the group goes — except
	 * the dedup records under MR_GW_KEEP_DEDUP: the group lives on and a later
	 * replica here must find the commands this node already applied, or it
	 * would apply (and announce) them again.  2. snapshots: the log is
	 * replaced.  The log rows go through storage_log.c, which knows them.
	 */
	storage_column_init(&wipe, INT8OID, 4);
	storage_column_init(&wipe_dedup, INT8OID, 4);
	for (size_t i = 0; i < n; i++)
	{
		if (w[i].flags & (MR_GW_REMOVED | MR_GW_CREATED))
		{
			storage_column_add(&wipe, U64_DATUM(w[i].group), false);
			if (!(w[i].flags & MR_GW_KEEP_DEDUP))
				storage_column_add(&wipe_dedup, U64_DATUM(w[i].group), false);
		}
		if (w[i].flags & (MR_GW_REMOVED | MR_GW_CREATED) || w[i].has_snapshot)
			storage_log_delete_group(w[i].group);
	}
	exec_group_list(SP_DELETE_GROUP_META, &wipe);
	exec_group_list(SP_DELETE_GROUP_DEDUP, &wipe_dedup);

	/*
	 * The snapshot's dedup records are ADDED to those stored (a record is a
	 * fact about what this node applied, never wrong; a snapshot older than
	 * what an earlier replica applied here must not make the node apply those
	 * commands again).
	 */
	for (size_t i = 0; i < n; i++)
	{
		if (!(w[i].flags & MR_GW_REMOVED) && w[i].has_snapshot)
		{
			storage_restore_dedup_blob(w[i].group, w[i].snapshot_blob,
									   w[i].snapshot_blob_len);
			storage_log_learn_start(w[i].group, w[i].log_start_index);
		}
	}

	/*
	 * 3. entries: a suffix from entries[0].index is replaced; each group's
	 * entries go in as one row (storage_log_rows.c), or a few if they are large.
	 */
	for (int c = 0; c < STORAGE_LOG_COLUMNS; c++)
		storage_column_init(&log[c], c == 3 ? BYTEAOID : INT8OID, (int) nruns);
	for (size_t i = 0; i < n; i++)
	{
		if ((w[i].flags & MR_GW_REMOVED) || w[i].n_entries == 0)
			continue;
		storage_log_truncate(w[i].group, w[i].entries[0].index, log);
		storage_log_add_rows(log, w[i].group, w[i].entries, w[i].n_entries);
	}
	storage_log_insert(log);

	/* 4. compaction (sees this batch's entries too) */
	storage_log_new_phase();
	for (size_t i = 0; i < n; i++)
		if (!(w[i].flags & MR_GW_REMOVED) && w[i].compacted)
			storage_log_compact(w[i].group, w[i].log_start_index);

	/* 5. meta rows: kept for storage_txn_finish (the last value wins) */
	for (size_t i = 0; i < n; i++)
	{
		if (w[i].flags & MR_GW_REMOVED)
			txn_drop_meta(w[i].group);
		else if (w[i].meta_changed)
			txn_keep_meta(&w[i]);
	}
}

/*
 * Whether the batch removes the group for good (a removal entry: its id never
 * returns).  A replica removed while the group lives on (MR_GW_KEEP_DEDUP) keeps
 * its records, this batch's included: a later replica here may apply the same
 * entries again from an older snapshot and must find them.
 */
static bool
group_removed_for_good(const struct mr_batch *b, mr_group_id g)
{
	for (size_t i = 0; i < b->n_groups; i++)
		if (b->groups[i].group == g && (b->groups[i].flags & MR_GW_REMOVED) &&
			!(b->groups[i].flags & MR_GW_KEEP_DEDUP))
			return true;
	return false;
}

static void
write_dedup(const struct mr_batch *b)
{
	StorageColumn g,
				id,
				ix;
	bool		any_removed = false;

	if (b->n_dedup == 0)
		return;
	for (size_t i = 0; i < b->n_groups; i++)
		any_removed |= (b->groups[i].flags & MR_GW_REMOVED) != 0;
	storage_column_init(&g, INT8OID, b->n_dedup);
	storage_column_init(&id, BYTEAOID, b->n_dedup);
	storage_column_init(&ix, INT8OID, b->n_dedup);
	for (size_t i = 0; i < b->n_dedup; i++)
	{
		const struct mr_dedup_record *d = &b->dedup[i];

		if (any_removed && group_removed_for_good(b, d->group))
			continue;
		storage_column_add(&g, U64_DATUM(d->group), false);
		storage_column_add(&id, storage_bytea(d->command_id, d->command_id_len), false);
		storage_column_add(&ix, U64_DATUM(d->index), false);
	}
	if (g.n > 0)
	{
		StorageColumn cols[3] = {g, id, ix};

		insert_rows(SR_DEDUP, SP_APPEND_DEDUP, cols, 3);
	}
}

static void
write_tombstones(const struct mr_tombstone *t, size_t n)
{
	StorageColumn cols[4];

	if (n == 0)
		return;
	for (int c = 0; c < (int) lengthof(cols); c++)
		storage_column_init(&cols[c], INT8OID, n);
	for (size_t i = 0; i < n; i++)
	{
		bool		later = false;

		/* ON CONFLICT DO UPDATE touches a row once per statement: last one wins
		 * (each tombstone record holds the whole tombstone, never less). */
		for (size_t k = i + 1; k < n && !later; k++)
			later = t[k].group == t[i].group;
		if (later)
			continue;
		storage_column_add(&cols[0], U64_DATUM(t[i].group), false);
		storage_column_add(&cols[1], U64_DATUM(t[i].min_replica_id), false);
		storage_column_add(&cols[2], U64_DATUM(t[i].applied), false);
		storage_column_add(&cols[3], U64_DATUM(t[i].incarnation), false);
	}
	exec_columns(SP_UPSERT_TOMBSTONE, cols, lengthof(cols), SPI_OK_INSERT);
}

void
storage_write_batch(const struct mr_batch *b)
{
	if (!txn.active)
		elog(ERROR, "multiraft: storage_write_batch outside storage_txn_begin");
	storage_log_begin();
	if (groups_unique(b->groups, b->n_groups))
		write_groups(b->groups, b->n_groups);
	else
		for (size_t i = 0; i < b->n_groups; i++)
			write_groups(&b->groups[i], 1);
	storage_log_end();
	storage_events_keep(b->events, b->n_events);
	write_dedup(b);
	write_tombstones(b->tombstones, b->n_tombstones);
}

void
storage_txn_finish(void)
{
	if (!txn.active)
		return;
	txn.active = false;

	/* meta rows: the last value of each group not removed since */
	storage_meta_write(txn.meta, txn.meta_dropped);

	/* events, in batch order, and one NOTIFY per group */
	storage_events_finish();
}
