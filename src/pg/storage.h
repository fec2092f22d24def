/*
 * storage.h — the durable state of the multi-raft node in the tables of
 * sql/ext/20_storage.sql (multiraft.log, group_meta, dedup, tombstone, events).
 *
 * Only the worker calls these (and storage_selftest.c, in a backend, on scratch
 * groups it rolls back).  Every function runs inside a transaction of the
 * worker with SPI connected (SPI_connect by the caller) and an active snapshot,
 * and reports failures with ereport(ERROR): the caller catches, aborts the
 * transaction and rebuilds its in-memory state from the tables (worker.c).
 *
 *   storage_plans.c   the prepared statements (SPI_prepare + SPI_keepplan once)
 *   storage_load.c    start-up: every group and tombstone into the layer, and
 *                     how far each group's events went (and one group, for
 *                     storage_selftest.c)
 *   storage_write.c   mr_batches -> rows; per transaction: meta rows
 *   storage_events.c  per transaction: the events, one NOTIFY per group
 *   storage_dedup.c   the layer's storage callbacks (command-id lookup, the
 *                     host part of snapshots) and the snapshot blob format
 *   storage_log.c     where each group's log rows are (in memory), and their
 *                     deletes (truncation, compaction, removal) by address
 *   storage_log_rows.c the format of a log row: a run of entries in one bytea
 *   storage_insert.c  many rows of one table through multi-insert and its
 *                     indexes (log rows, dedup records, events), not the executor
 */
#ifndef MULTIRAFT_STORAGE_H
#define MULTIRAFT_STORAGE_H

#include "access/skey.h"
#include "storage/itemptr.h"
#include "executor/spi.h"
#include "utils/relcache.h"
#include "utils/elog.h"

#include "worker_layer.h"

/* ---- storage_plans.c ---- */

typedef enum StoragePlan
{
	SP_DELETE_GROUP_META = 0,	/* $1 bigint[] */
	SP_DELETE_GROUP_DEDUP,		/* $1 bigint[] */
	SP_INSERT_LOG,				/* $1..$4 group, last index, first index, packed entries
								 * arrays; returns ctid and the first three columns */
	SP_APPEND_DEDUP,			/* applied commands: $1 groups, $2 ids bytea[], $3 indexes */
	SP_INSERT_DEDUP,			/* from a snapshot: $1 groups, $2 ids bytea[], $3 indexes */
	SP_INSERT_EVENTS,			/* $1..$8 one array per column */
	SP_UPSERT_TOMBSTONE,		/* $1 groups, $2 min replica ids, $3 applied indexes */
	SP_SNAPSHOT_DEDUP,			/* $1 group, $2 index: ids and indexes <= index */
	SP_COUNT_
} StoragePlan;

/* The tables and indexes the storage files open directly (not through SPI). */
typedef enum StorageRel
{
	SR_LOG = 0,
	SR_META,
	SR_META_PKEY,
	SR_DEDUP,
	SR_DEDUP_PKEY,
	SR_EVENTS,
	SR_COUNT_
} StorageRel;

/* Its OID, resolved once per node start (ERROR if missing); storage_forget_plans()
 * forgets them with the statements. */
extern Oid	storage_rel(StorageRel r);
/* The sequence of multiraft.events.event_id (resolved and forgotten likewise). */
extern Oid	storage_events_sequence(void);

/* The prepared statement (prepared on first use, kept for the process). */
extern SPIPlanPtr storage_plan(StoragePlan p);
/* Frees every kept statement and forgets the cached relation ids and where the
 * log rows are (the extension was dropped, or the node is reloaded). */
extern void storage_forget_plans(void);
/* SPI_execute_plan that raises an error unless the result is `expected`. */
extern void storage_exec(StoragePlan p, Datum *values, const char *nulls,
						 bool read_only, int expected);

/* ---- storage_load.c ---- */

/* Restores every group and tombstone of the tables into node.  A group the layer
 * refuses as corrupt is left out (WARNING) and tombstoned in memory up to its
 * replica id so that it can never come back with a forgotten vote.  Sets the
 * counts of what was restored. */
extern void storage_load(struct mr_node *node, int *ngroups, int *ntombstones);
/* One group's stored state (meta row, log rows after log_start_index), read by
 * the same code as storage_load() and copied into the current memory context;
 * false if the group has no meta row.  adopt: the caller takes this state as
 * the node's, so storage_log.c learns where the group's log rows are, as at
 * start-up. */
extern bool storage_load_group(mr_group_id group, struct mr_group_restore *r, bool adopt);

/* ---- storage_log.c ---- */

struct StorageColumn;			/* below, with the helpers */

/*
 * The rows of multiraft.log (runs of entries, storage_log_rows.c) as this
 * process knows them: per group, its runs in index order and where each row is.
 * Learned at load (every row, leftovers of groups without a meta row too) and
 * kept by every write below; storage_log_reset() forgets everything (a reload).
 *
 * storage_log_truncate: deletes the runs of `group` that end at or after `from`
 * (a replaced suffix; the head of a run that starts before it, down to the log
 * start, is added to cols, the four columns of multiraft.log, to be written
 * again).  storage_log_compact: deletes the runs that end at or below `upto`,
 * the new log start.  storage_log_delete_group: all of the group's rows (removed,
 * created again, or its log replaced by a snapshot).  Each delete checks that the
 * row at the remembered address is still that run (ERROR otherwise).
 * storage_log_insert: inserts the rows of cols and learns where they went.
 */
extern void storage_log_truncate(mr_group_id group, raft_index from,
								 struct StorageColumn *cols);
extern void storage_log_compact(mr_group_id group, raft_index upto);
extern void storage_log_delete_group(mr_group_id group);
extern void storage_log_insert(struct StorageColumn *cols);
/* Learned at load: a group's log start, and each of its rows in index order. */
extern void storage_log_learn_start(mr_group_id group, raft_index start);
extern void storage_log_learn_row(mr_group_id group, ItemPointer tid,
								  raft_index first, raft_index last);
/* The same from a row read by SPI whose first four columns are ctid, group_id,
 * log_index, first_index. */
extern void storage_log_learn_tuple(HeapTuple t, TupleDesc d);
/* At load: the addresses learned are in the table's current file (after a
 * rewrite, VACUUM FULL or CLUSTER, the next batch reads them again). */
extern void storage_log_learned_file(void);
/* Forgets what is known of the group's rows (deletes nothing). */
extern void storage_log_forget(mr_group_id group);
/* Per batch: open / close the log relation for the calls above; a new phase
 * (a new snapshot for the deletes) after statements that deleted rows. */
extern void storage_log_begin(void);
extern void storage_log_new_phase(void);
extern void storage_log_end(void);
extern void storage_log_reset(void);	/* forget everything (node reload) */

/* ---- storage_write.c ---- */

/*
 * One transaction may persist several batches: storage_txn_begin() at its start,
 * storage_write_batch() per batch (groups' rows, dedup records, tombstones; the
 * meta rows and events are kept), storage_txn_finish() before the commit (meta
 * rows, events, one NOTIFY per group).
 */
extern void storage_txn_begin(void);
extern void storage_write_batch(const struct mr_batch *b);
extern void storage_txn_finish(void);

/* ---- storage_events.c ---- */

/* Within the transaction of storage_txn_begin: start keeping events, keep a
 * batch's (in batch order), write them and queue one NOTIFY per group
 * (storage_txn_finish calls these). */
extern void storage_events_begin(void);
extern void storage_events_keep(const struct mr_event *ev, size_t n);
extern void storage_events_finish(void);

/* ---- notify_queue.c ---- */

/* A group to announce, with the highest log index of its new events (0: none). */
typedef struct NotifyGroup
{
	uint64		group;
	uint64		index;
} NotifyGroup;

/*
 * Queues this transaction's notifications, one per group ('<group_id>:<index>',
 * the highest index), with those deferred earlier; PostgreSQL sends them at
 * commit.  Deferred instead while another session holds the NOTIFY lock; left
 * out while the queue is too full (multiraft.notify_queue_max_usage).  Sorts
 * `groups`.
 */
extern void notify_send(NotifyGroup *groups, int n);
/* Whether notifications wait for a transaction to send them in. */
extern bool notify_deferred(void);

/* ---- storage_dedup.c ---- */

/* The callbacks to put in mr_config.storage. */
extern void storage_callbacks(struct mr_storage_callbacks *cb);

/*
 * The callbacks run inside mr_ready(), i.e. inside the pure layer, where an
 * ereport must not unwind: they catch their own errors, answer "not found" /
 * failure, and remember the first error.  After mr_ready() the worker asks
 * whether one failed; if so the batch was built on a wrong answer and must never
 * be persisted.  The error data is owned by the caller's memory context.
 */
extern ErrorData *storage_callback_error(void);
extern void storage_callback_reset(void);

/* Blob format of snapshot_data (little endian):
 *   "MRD1" | u32 count | count * (u16 id_len | id bytes | u64 index)  */
/* Decodes blob and inserts its records for group (after the caller deleted the
 * group's old records).  Malformed input: the valid prefix is kept, WARNING. */
extern void storage_restore_dedup_blob(mr_group_id group, const void *blob, size_t len);

/* ---- helpers shared by the storage files ---- */

/* A growable array of Datums for one column of a multi-row statement. */
typedef struct StorageColumn
{
	Oid			elemtype;
	int			n;
	int			cap;
	Datum	   *values;
	bool	   *nulls;
	bool		any_null;
} StorageColumn;

extern void storage_column_init(StorageColumn *c, Oid elemtype, int cap_hint);
extern void storage_column_add(StorageColumn *c, Datum v, bool isnull);
/* The column as an array Datum (palloc'd in the current context). */
extern Datum storage_column_array(StorageColumn *c);

/* ---- storage_insert.c ---- */

/*
 * Rows given as columns (cols[c].values[r]), one column per attribute of the
 * table in table order, with cols[c].elemtype its type.  storage_insert_open
 * opens the table if it is as the extension created it (no triggers, rules,
 * check constraints, generated columns or row security; exactly these columns),
 * else answers NULL and the caller runs its SQL statement.  storage_insert_rows
 * inserts cols[0].n rows into every index too, closes the table and increments
 * the command counter (as an SPI statement would); tids, if not NULL, receives
 * where each row went.
 */
extern Relation storage_insert_open(StorageRel r, const StorageColumn *cols, int ncols);
/* Whether rel takes rows of cols' shape with nothing but its indexes to maintain: a
 * plain table, no triggers, rules, row security, check constraints or generated
 * columns, its columns of cols' types. */
extern bool storage_as_created(Relation rel, const StorageColumn *cols, int ncols);
extern void storage_insert_rows(Relation rel, const StorageColumn *cols, int ncols,
								ItemPointer tids);

/* ---- storage_meta.c ---- */

/* multiraft.group_meta's columns, in table order. */
#define STORAGE_META_COLUMNS 11
/* Writes row r of cols (one value per column, none NULL) unless skip[r]:
 * updates the group's row, or inserts it. */
extern void storage_meta_write(StorageColumn cols[STORAGE_META_COLUMNS], const bool *skip);


/* uint64 raft values in bigint columns: same bit pattern. */
#define U64_DATUM(x) Int64GetDatum((int64) (x))
#define DATUM_U64(d) ((uint64) DatumGetInt64(d))

/* A bytea Datum holding a copy of len bytes. */
extern Datum storage_bytea(const void *data, size_t len);

/* The n low bytes of v at p, little endian, and back: the byte order of the
 * formats stored in bytea columns (log rows, snapshot blobs). */
static inline void
storage_put_le(unsigned char *p, uint64 v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

static inline uint64
storage_get_le(const unsigned char *p, int n)
{
	uint64		v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
/* Column col of a stored row (SPI) as a uint64 raft value; ERROR if NULL
 * (storage_load.c). */
extern uint64 storage_col_u64(HeapTuple t, TupleDesc d, int col);

/* ---- storage_log_rows.c ---- */

/* The columns of multiraft.log, in order. */
#define STORAGE_LOG_COLUMNS 4
/* Adds the rows for entries e[0..n-1] of group (consecutive) to cols (initialised
 * by the caller: bigint, bigint, bigint, bytea): one row per run of entries that
 * stays below the size at which PostgreSQL would compress the row or move the
 * value out of line (TOAST); a single larger entry is a row alone. */
extern void storage_log_add_rows(StorageColumn *cols, mr_group_id group,
								 const struct raft_entry *e, size_t n);
/* Why a row first_index .. last of `len` bytes cannot hold its range, or NULL. */
extern const char *storage_log_row_problem(raft_index first, raft_index last, size_t len);
/* The same unpacking as storage_log_unpack, returning why the row is corrupt
 * (NULL if it is not) instead of an ERROR: start-up leaves such a group out. */
extern const char *storage_log_unpack_checked(raft_index first, raft_index last,
											  const void *data, size_t len,
											  struct raft_entry *out);
/* The number of entries of a row first_index .. last (a row of `len` bytes);
 * ERROR if its range cannot match its size. */
extern size_t storage_log_row_entries(mr_group_id group, raft_index first,
									  raft_index last, size_t len);
/* A row's entries into out[0 .. last - first] (their data points into data);
 * ERROR naming the row if its bytes do not hold exactly those entries. */
extern void storage_log_unpack(mr_group_id group, raft_index first, raft_index last,
							   const void *data, size_t len, struct raft_entry *out);
/* The same for a row's entries column as read (value v, isnull): a palloc'd array
 * of *n entries, whose data points into the value (or its detoasted copy, also
 * palloc'd); ERROR naming the row if NULL or corrupt. */
extern struct raft_entry *storage_log_row_unpack(mr_group_id group, raft_index first,
												 raft_index last, Datum v, bool isnull,
												 size_t *n);

#endif
