/*
 * storage_load.c — start-up: every group of multiraft.group_meta with its log
 * rows, and every tombstone, back into the multi-raft layer.
 *
 * The meta rows and the log rows are read by two cursors in group order and
 * merged, so memory holds one group's log at a time (plus a fetch chunk), however
 * many groups there are.  The same code reads a single group for the storage
 * self-test (storage_load_group), so what it checks is what start-up reads.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "storage.h"

#define FETCH_ROWS 1000

typedef struct LogCursor
{
	Portal		portal;
	SPITupleTable *tuptable;
	uint64		nrows;
	uint64		pos;
	bool		done;
} LogCursor;

/* A read-only cursor over select_list ... order_by, for every group or only one. */
static Portal
open_cursor(bool one, const char *select, mr_group_id only, const char *order_by)
{
	char	   *sql = psprintf("%s%s %s", select, one ? " WHERE group_id = $1" : "", order_by);
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {U64_DATUM(only)};
	Portal		p = SPI_cursor_open_with_args(NULL, sql, one ? 1 : 0, argtypes, args,
											  NULL, true, 0);

	if (p == NULL)
		elog(ERROR, "multiraft: could not open cursor for \"%s\"", sql);
	return p;
}

/* The current row of c, fetching the next chunk when needed; NULL at the end. */
static HeapTuple
cursor_row(LogCursor *c)
{
	if (c->done)
		return NULL;
	if (c->tuptable == NULL || c->pos >= c->nrows)
	{
		if (c->tuptable)
			SPI_freetuptable(c->tuptable);
		SPI_cursor_fetch(c->portal, true, FETCH_ROWS);
		c->tuptable = SPI_tuptable;
		c->nrows = SPI_processed;
		c->pos = 0;
		if (c->nrows == 0)
		{
			c->done = true;
			return NULL;
		}
	}
	return c->tuptable->vals[c->pos];
}

uint64
storage_col_u64(HeapTuple t, TupleDesc d, int col)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, col, &isnull);

	if (isnull)
		elog(ERROR, "multiraft: unexpected NULL in column %d of the stored state", col);
	return DATUM_U64(v);
}

/* A bigint[] column as a palloc'd array of replica ids. */
static raft_id *
col_ids(HeapTuple t, TupleDesc d, int col, uint32 *n)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	raft_id    *ids;

	if (isnull)
	{
		*n = 0;
		return NULL;
	}
	deconstruct_array(DatumGetArrayTypeP(v), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &count);
	ids = palloc(sizeof(raft_id) * Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			elog(ERROR, "multiraft: NULL replica id in the stored configuration");
		ids[i] = DATUM_U64(elems[i]);
	}
	*n = (uint32) count;
	return ids;
}

static void *
col_bytes(HeapTuple t, TupleDesc d, int col, size_t *len)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, col, &isnull);
	bytea	   *b;
	void	   *copy;

	if (isnull)
	{
		*len = 0;
		return NULL;
	}
	b = DatumGetByteaPP(v);
	*len = VARSIZE_ANY_EXHDR(b);
	copy = palloc(Max(*len, 1));
	memcpy(copy, VARDATA_ANY(b), *len);
	return copy;
}

/* Takes one stored group. */
/* corrupt: NULL, or why the group's log rows cannot be read (r has no log then) */
typedef void (*GroupFn) (void *arg, const struct mr_group_restore *r, const char *corrupt);

/*
 * Reads the stored groups in group order — every group, or only `only` when
 * one is true — and calls fn for each with its meta row and its log entries
 * after log_start_index, in the shape mr_restore_group() takes.  r lives in a
 * context that is reset after fn returns.  With learn, storage_log.c learns
 * where the rows read are (the group's, replacing what it knew of them; reading
 * every group, every row, leftovers of groups without a meta row included: it
 * must know every row to delete them).  Returns the number of groups.
 */
static int
read_groups(bool one, mr_group_id only, bool learn, GroupFn fn, void *arg)
{
	MemoryContext group_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"multiraft group restore",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext outer = CurrentMemoryContext;
	LogCursor	meta = {0},
				log = {0};
	int			count = 0;
	HeapTuple	lt;

	meta.portal = open_cursor(one,
							  "SELECT group_id, replica_id, term, vote, commit_index, voters, "
							  "learners, applied_index, log_start_index, log_start_term, layer_state "
							  "FROM multiraft.group_meta",
							  only, "ORDER BY group_id");
	log.portal = open_cursor(one,
							 "SELECT ctid, group_id, log_index, first_index, entries "
							 "FROM multiraft.log",
							 only, "ORDER BY group_id, log_index");

	for (;;)
	{
		HeapTuple	mt = cursor_row(&meta);
		TupleDesc	md;
		struct mr_group_restore r;
		struct raft_entry *entries;
		size_t		n = 0,
					cap = 16;
		char	   *corrupt = NULL;

		if (mt == NULL)
			break;
		md = meta.tuptable->tupdesc;
		MemoryContextReset(group_cxt);
		MemoryContextSwitchTo(group_cxt);

		memset(&r, 0, sizeof(r));
		r.group = storage_col_u64(mt, md, 1);
		r.replica_id = storage_col_u64(mt, md, 2);
		r.hard_state.term = storage_col_u64(mt, md, 3);
		r.hard_state.vote = storage_col_u64(mt, md, 4);
		r.hard_state.commit = storage_col_u64(mt, md, 5);
		r.conf_state.voters = col_ids(mt, md, 6, &r.conf_state.n_voters);
		r.conf_state.learners = col_ids(mt, md, 7, &r.conf_state.n_learners);
		r.applied = storage_col_u64(mt, md, 8);
		r.log_start_index = storage_col_u64(mt, md, 9);
		r.log_start_term = storage_col_u64(mt, md, 10);
		r.state = col_bytes(mt, md, 11, &r.state_len);
		if (learn)
		{
			storage_log_forget(r.group);
			storage_log_learn_start(r.group, r.log_start_index);
		}

		/*
		 * Log rows of this group; rows of groups without meta are leftovers.
		 * Both cursors are in bigint order, so the merge compares group ids as
		 * bigints too (as unsigned numbers, an id >= 2^63 would sort last and
		 * its leftover rows would hide every later group's log).
		 */
		entries = palloc(sizeof(struct raft_entry) * cap);
		while ((lt = cursor_row(&log)) != NULL)
		{
			TupleDesc	ld = log.tuptable->tupdesc;
			int64		g = (int64) storage_col_u64(lt, ld, 2);
			uint64		last,
						first;
			size_t		len,
						count;
			void	   *packed;
			const char *why;

			if (g > (int64) r.group)
				break;
			log.pos++;
			if (learn)
				storage_log_learn_tuple(lt, ld);	/* leftovers (g < r.group) too */
			if (g < (int64) r.group)
				continue;
			last = storage_col_u64(lt, ld, 3);
			first = storage_col_u64(lt, ld, 4);
			/*
			 * Rows ending at or below log_start_index are compacted away: a
			 * quiesced group's rows stay until its next compacted write
			 * (multiraft.h, mr_group_write).  A row that straddles the log
			 * start gives only its later entries.
			 */
			if (last <= r.log_start_index || corrupt != NULL)
				continue;
			packed = col_bytes(lt, ld, 5, &len);
			why = storage_log_row_problem(first, last, len);
			if (why == NULL)
			{
				count = (size_t) (last - first + 1);
				while (n + count > cap)
				{
					cap *= 2;
					entries = repalloc(entries, sizeof(struct raft_entry) * cap);
				}
				why = storage_log_unpack_checked(first, last, packed, len, entries + n);
			}
			if (why != NULL)
			{
				/* This group only: the others start (its rows are kept). */
				corrupt = psprintf("its log row ending at index " UINT64_FORMAT " is corrupt: %s",
								   last, why);
				n = 0;
				continue;
			}
			if (first <= r.log_start_index)
			{
				size_t		skip = (size_t) (r.log_start_index - first + 1);

				memmove(entries + n, entries + n + skip,
						sizeof(struct raft_entry) * (count - skip));
				count -= skip;
			}
			n += count;
		}
		r.entries = entries;
		r.n_entries = n;
		meta.pos++;
		count++;

		MemoryContextSwitchTo(outer);
		fn(arg, &r, corrupt);
	}
	/* The leftovers after the last group with a meta row (reading them all). */
	while (learn && !one && (lt = cursor_row(&log)) != NULL)
	{
		log.pos++;
		storage_log_learn_tuple(lt, log.tuptable->tupdesc);
	}
	MemoryContextSwitchTo(outer);
	if (meta.tuptable)
		SPI_freetuptable(meta.tuptable);
	if (log.tuptable)
		SPI_freetuptable(log.tuptable);
	SPI_cursor_close(meta.portal);
	SPI_cursor_close(log.portal);
	MemoryContextDelete(group_cxt);
	return count;
}

typedef struct RestoreState
{
	struct mr_node *node;
	int			ngroups;
} RestoreState;

/* Start-up: one group into the layer (a refused group is reported, not fatal). */
static void
restore_into_node(void *arg, const struct mr_group_restore *r, const char *corrupt)
{
	RestoreState *s = arg;
	int			rc = corrupt != NULL ? MR_ECORRUPT : mr_restore_group(s->node, r);

	if (rc == MR_OK)
	{
		s->ngroups++;
		return;
	}
	/* A passing shortage must not fence a healthy replica for good (the tombstone
	 * below): the start fails and is tried again (worker.c, start_node). */
	if (rc == MR_ENOMEM)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("multiraft: out of memory restoring group " UINT64_FORMAT,
						(uint64) r->group)));
	ereport(WARNING,
			(errmsg("multiraft: group " UINT64_FORMAT " could not be restored: %s",
					(uint64) r->group, corrupt != NULL ? corrupt : mr_strerror(rc)),
			 errdetail("Replica " UINT64_FORMAT ", %zu log entries after index " UINT64_FORMAT ".",
					   (uint64) r->replica_id, r->n_entries, (uint64) r->log_start_index),
			 errhint("The group stays unavailable on this node; its rows are kept.")));
	/* Never let this replica come back with a forgotten vote. */
	if (r->replica_id < PG_UINT64_MAX)
		(void) mr_restore_tombstone(s->node, r->group, r->replica_id + 1, r->applied, 0);
}

/*
 * How far each group's events went out: the highest log_index among the events
 * still queued and those consume_events took (multiraft.events_consumed).  The
 * layer re-applies what a meta row trailed by (MR_META_LAG) without announcing
 * it again.  One pass over the queue at start-up.
 */
static void
restore_announced(struct mr_node *node)
{
	if (SPI_execute("SELECT group_id, max(log_index) FROM ("
					"  SELECT group_id, log_index FROM multiraft.events"
					"   WHERE log_index IS NOT NULL"
					"  UNION ALL"
					"  SELECT group_id, log_index FROM multiraft.events_consumed) a"
					" GROUP BY group_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not read how far the events went");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];

		/* A group removed here has only its tombstone; one that failed to load,
		 * a tombstone of its meta row's applied index, raised here. */
		(void) mr_restore_announced(node, storage_col_u64(t, SPI_tuptable->tupdesc, 1),
									storage_col_u64(t, SPI_tuptable->tupdesc, 2));
	}
	SPI_freetuptable(SPI_tuptable);
}

void
storage_load(struct mr_node *node, int *ngroups, int *ntombstones)
{
	RestoreState s = {node, 0};
	int			rc;

	*ntombstones = 0;
	storage_log_reset();		/* the rows are learned afresh */
	(void) read_groups(false, 0, true, restore_into_node, &s);
	storage_log_learned_file();
	*ngroups = s.ngroups;

	if (SPI_execute("SELECT group_id, min_replica_id, applied_index, incarnation FROM multiraft.tombstone",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not read the tombstones");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		uint64		g = storage_col_u64(t, SPI_tuptable->tupdesc, 1);
		uint64		min = storage_col_u64(t, SPI_tuptable->tupdesc, 2);
		uint64		applied = storage_col_u64(t, SPI_tuptable->tupdesc, 3);
		uint64		incarnation = storage_col_u64(t, SPI_tuptable->tupdesc, 4);

		/* An incarnation is 32 bits: anything else was not written here. */
		rc = incarnation > PG_UINT32_MAX ? MR_ECORRUPT :
			mr_restore_tombstone(node, g, min, applied, (uint32) incarnation);
		if (rc != MR_OK)
			ereport(WARNING,
					(errmsg("multiraft: tombstone of group " UINT64_FORMAT " could not be restored: %s",
							g, mr_strerror(rc))));
		else
			(*ntombstones)++;
	}
	SPI_freetuptable(SPI_tuptable);
	restore_announced(node);
}

/* One group, copied out into the caller's context (storage_load_group). */
typedef struct CopyState
{
	MemoryContext cxt;
	struct mr_group_restore *out;
} CopyState;

static void *
copy_bytes(const void *p, size_t len)
{
	void	   *q = palloc(Max(len, 1));

	if (len > 0)
		memcpy(q, p, len);
	return q;
}

static void
copy_out(void *arg, const struct mr_group_restore *r, const char *corrupt)
{
	CopyState  *s = arg;
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	struct mr_group_restore *o = s->out;
	struct raft_entry *entries;

	if (corrupt != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("multiraft: group " UINT64_FORMAT " cannot be read: %s",
						(uint64) r->group, corrupt)));
	*o = *r;
	o->conf_state.voters = copy_bytes(r->conf_state.voters,
									  sizeof(raft_id) * r->conf_state.n_voters);
	o->conf_state.learners = copy_bytes(r->conf_state.learners,
										sizeof(raft_id) * r->conf_state.n_learners);
	o->state = r->state_len > 0 ? copy_bytes(r->state, r->state_len) : NULL;
	entries = palloc(sizeof(struct raft_entry) * Max(r->n_entries, 1));
	for (size_t i = 0; i < r->n_entries; i++)
	{
		entries[i] = r->entries[i];
		entries[i].data = copy_bytes(r->entries[i].data, r->entries[i].len);
	}
	o->entries = entries;
	MemoryContextSwitchTo(old);
}

bool
storage_load_group(mr_group_id group, struct mr_group_restore *r, bool adopt)
{
	CopyState	s = {CurrentMemoryContext, r};

	memset(r, 0, sizeof(*r));
	return read_groups(true, group, adopt, copy_out, &s) > 0;
}
