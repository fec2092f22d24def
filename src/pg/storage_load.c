/*
 * storage_load.c — start-up: every group of multiraft.group_meta with its log
 * rows, and every tombstone, back into the multi-raft layer.
 *
 * The meta rows and the log rows are read by two cursors in group order and
 * merged, so memory holds one group's log at a time (plus a fetch chunk), however
 * many groups there are.
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

static Portal
open_cursor(const char *name, const char *sql)
{
	Portal		p = SPI_cursor_open_with_args(name, sql, 0, NULL, NULL, NULL, true, 0);

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

static uint64
col_u64(HeapTuple t, TupleDesc d, int col)
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

void
storage_load(struct mr_node *node, int *ngroups, int *ntombstones)
{
	MemoryContext group_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"multiraft group restore",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext outer = CurrentMemoryContext;
	LogCursor	meta = {0},
				log = {0};
	int			rc;

	*ngroups = 0;
	*ntombstones = 0;

	meta.portal = open_cursor("multiraft_load_meta",
							  "SELECT group_id, replica_id, term, vote, commit_index, voters, "
							  "learners, applied_index, log_start_index, log_start_term, layer_state "
							  "FROM multiraft.group_meta ORDER BY group_id");
	log.portal = open_cursor("multiraft_load_log",
							 "SELECT group_id, log_index, term, entry_type, data "
							 "FROM multiraft.log ORDER BY group_id, log_index");

	for (;;)
	{
		HeapTuple	mt = cursor_row(&meta);
		TupleDesc	md;
		struct mr_group_restore r;
		struct raft_entry *entries;
		size_t		n = 0,
					cap = 16;
		HeapTuple	lt;

		if (mt == NULL)
			break;
		md = meta.tuptable->tupdesc;
		MemoryContextReset(group_cxt);
		MemoryContextSwitchTo(group_cxt);

		memset(&r, 0, sizeof(r));
		r.group = col_u64(mt, md, 1);
		r.replica_id = col_u64(mt, md, 2);
		r.hard_state.term = col_u64(mt, md, 3);
		r.hard_state.vote = col_u64(mt, md, 4);
		r.hard_state.commit = col_u64(mt, md, 5);
		r.conf_state.voters = col_ids(mt, md, 6, &r.conf_state.n_voters);
		r.conf_state.learners = col_ids(mt, md, 7, &r.conf_state.n_learners);
		r.applied = col_u64(mt, md, 8);
		r.log_start_index = col_u64(mt, md, 9);
		r.log_start_term = col_u64(mt, md, 10);
		r.state = col_bytes(mt, md, 11, &r.state_len);

		/* Log rows of this group; rows of groups without meta are leftovers. */
		entries = palloc(sizeof(struct raft_entry) * cap);
		while ((lt = cursor_row(&log)) != NULL)
		{
			TupleDesc	ld = log.tuptable->tupdesc;
			uint64		g = col_u64(lt, ld, 1);
			uint64		index;
			size_t		len;
			bool		isnull;

			if (g > r.group)
				break;
			log.pos++;
			if (g < r.group)
				continue;
			index = col_u64(lt, ld, 2);
			/* Rows at or below log_start_index are compacted away already. */
			if (index <= r.log_start_index)
				continue;
			if (n == cap)
			{
				cap *= 2;
				entries = repalloc(entries, sizeof(struct raft_entry) * cap);
			}
			entries[n].index = index;
			entries[n].term = col_u64(lt, ld, 3);
			entries[n].type = (uint8) DatumGetInt16(SPI_getbinval(lt, ld, 4, &isnull));
			entries[n].data = col_bytes(lt, ld, 5, &len);
			if (len > PG_UINT32_MAX)
				elog(ERROR, "multiraft: log entry too large");
			entries[n].len = (uint32) len;
			n++;
		}
		r.entries = entries;
		r.n_entries = n;
		meta.pos++;

		rc = mr_restore_group(node, &r);
		MemoryContextSwitchTo(outer);
		if (rc == MR_OK)
		{
			(*ngroups)++;
			storage_log_loaded(r.group, r.log_start_index,
							   n > 0 ? entries[n - 1].index : r.log_start_index);
		}
		else
		{
			ereport(WARNING,
					(errmsg("multiraft: group " UINT64_FORMAT " could not be restored: %s",
							(uint64) r.group, mr_strerror(rc)),
					 errdetail("Replica " UINT64_FORMAT ", %zu log entries after index " UINT64_FORMAT ".",
							   (uint64) r.replica_id, n, (uint64) r.log_start_index),
					 errhint("The group stays unavailable on this node; its rows are kept.")));
			/* Never let this replica come back with a forgotten vote. */
			if (r.replica_id < PG_UINT64_MAX)
				(void) mr_restore_tombstone(node, r.group, r.replica_id + 1);
		}
	}
	MemoryContextSwitchTo(outer);
	if (meta.tuptable)
		SPI_freetuptable(meta.tuptable);
	if (log.tuptable)
		SPI_freetuptable(log.tuptable);
	SPI_cursor_close(meta.portal);
	SPI_cursor_close(log.portal);
	MemoryContextDelete(group_cxt);

	if (SPI_execute("SELECT group_id, min_replica_id FROM multiraft.tombstone",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not read the tombstones");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		uint64		g = col_u64(t, SPI_tuptable->tupdesc, 1);
		uint64		min = col_u64(t, SPI_tuptable->tupdesc, 2);

		rc = mr_restore_tombstone(node, g, min);
		if (rc != MR_OK)
			ereport(WARNING,
					(errmsg("multiraft: tombstone of group " UINT64_FORMAT " could not be restored: %s",
							g, mr_strerror(rc))));
		else
			(*ntombstones)++;
	}
	SPI_freetuptable(SPI_tuptable);
}
