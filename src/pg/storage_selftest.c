/*
 * storage_selftest.c — the storage conformance suite's factory
 * (test/common/storage_conformance.h) over the tables of schema multiraft,
 * through the worker's own write and load code; multiraft.storage_selftest()
 * (api_selftest.c) runs the suite with it.
 *
 * Writes.  Each write operation of the suite becomes the mr_group_write the
 * multi-raft layer hands over for it, persisted as the worker persists a batch
 * (worker_batch.c): storage_txn_begin, storage_write_batch, storage_txn_finish.
 *   append(e)              entries (those above the log start: the memory
 *                          storage skips them too)
 *   set_hard_state(hs)     meta row: term, vote, commit
 *   set_conf_state(cs)     meta row: voters, learners
 *   create_snapshot(i,cs,d) the layer's snapshot is its applied state: meta row
 *                          applied_index i, configuration cs, layer_state d
 *   apply_snapshot(s)      has_snapshot (no command-id records), log start and
 *                          applied index s.index/s.term, configuration s.conf,
 *                          layer_state s.data
 *   compact(i)             compacted, log start i and the term of entry i
 *   create / destroy       a new replica (MR_GW_CREATED) / a removed group
 *                          (MR_GW_REMOVED, after which no row may be left)
 * The other meta fields are the stored ones: the layer always writes a group's
 * current values.  The tables refuse nothing — the layer only compacts what it
 * applied and never installs an older snapshot — so the factory, standing in
 * for the layer, checks those preconditions against the stored state first.
 *
 * Reads.  After every write the group is read back by storage_load_group() (the
 * code start-up uses) and rebuilt into a fresh raft memory storage the way
 * mr_restore_group() builds a restored group's; the suite reads only that, so it
 * sees exactly what the tables hold.  reopen = the same, as after a restart.
 *
 * Groups.  Scratch groups have negative ids (-1, -2, ...), which no real group
 * can have (SQL group ids are > 0): their rows lie outside the key range of
 * every real group, and the caller rolls them back.  Each operation runs in a
 * subtransaction of its own, so that a failed write is rolled back like a
 * failed batch and the run goes on.  The statement and log-row caches used
 * are this backend's, not the worker's.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "storage.h"
#include "storage_selftest.h"

typedef struct SelftestGroup
{
	mr_group_id group;
	MemoryContext cxt;			/* holds r */
	struct mr_group_restore r;	/* the stored state, as last read */
	struct raft_memory_storage *ms; /* r rebuilt: what the suite reads */
} SelftestGroup;

/* ---------------------------------------------------------------- guarded calls */

/*
 * Runs fn(arg) in a subtransaction: an ERROR rolls back what fn wrote (as a
 * failed batch writes nothing), is remembered as last_error, and fails the
 * operation.  A cancel stops the run instead of being reported.
 */
static bool
guarded(StorageSelftest *t, void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	if (t->abort != NULL)
		return false;
	MemoryContextReset(t->op_cxt);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(t->op_cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(t->cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		if (e->sqlerrcode == ERRCODE_QUERY_CANCELED)
			t->abort = e;
		else
		{
			t->last_error = e->message ? pstrdup(e->message) : pstrdup("unknown error");
			FreeErrorData(e);
		}
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

/* A snapshot that sees everything this transaction wrote so far. */
static void
push_current_snapshot(void)
{
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
}

static void
do_write(void *arg)
{
	struct mr_batch b;

	memset(&b, 0, sizeof(b));
	b.groups = arg;
	b.n_groups = 1;
	push_current_snapshot();
	storage_txn_begin();
	storage_write_batch(&b);
	storage_txn_finish();
	PopActiveSnapshot();
}

/* ---------------------------------------------------------------- reading back */

typedef struct LoadArgs
{
	SelftestGroup *g;
	MemoryContext cxt;
	struct mr_group_restore r;
	bool		adopt;
} LoadArgs;

static void
do_load(void *arg)
{
	LoadArgs   *a = arg;
	MemoryContext old;
	bool		found;
	Datum		v[2];
	Oid			types[2] = {INT8OID, INT8OID};
	int64		stale;
	bool		isnull;

	push_current_snapshot();
	old = MemoryContextSwitchTo(a->cxt);
	found = storage_load_group(a->g->group, &a->r, a->adopt);
	MemoryContextSwitchTo(old);
	if (!found)
		elog(ERROR, "no meta row for the group");
	/* The loader skips rows at or below the log start: they must be gone. */
	v[0] = U64_DATUM(a->g->group);
	v[1] = U64_DATUM(a->r.log_start_index);
	if (SPI_execute_with_args("SELECT count(*) FROM multiraft.log "
							  "WHERE group_id = $1 AND log_index <= $2",
							  2, types, v, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the compacted log rows");
	stale = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										&isnull));
	if (stale > 0)
		elog(ERROR, INT64_FORMAT " log rows at or below the log start index " UINT64_FORMAT
			 " were not deleted", stale, (uint64) a->r.log_start_index);
	PopActiveSnapshot();
}

/*
 * What mr_restore_group() (src/multiraft/mr_node.c) puts in a restored group's
 * memory storage, with layer_state as the snapshot's data (the layer decodes
 * those bytes into the group instead).  NULL, or what is wrong.
 */
static const char *
rebuild(struct raft_memory_storage *ms, const struct mr_group_restore *r)
{
	bool		state_at_start = r->applied == r->log_start_index;

	if (r->log_start_index > 0)
	{
		struct raft_snapshot s;

		memset(&s, 0, sizeof(s));
		s.index = r->log_start_index;
		s.term = r->log_start_term;
		s.conf = r->conf_state;
		s.data = state_at_start ? r->state : NULL;
		s.len = state_at_start ? r->state_len : 0;
		if (raft_memory_storage_apply_snapshot(ms, &s) != RAFT_OK)
			return "the log start could not be restored";
	}
	for (size_t i = 0; i < r->n_entries; i++)
		if (r->entries[i].index != r->log_start_index + 1 + i)
			return "the log rows are not consecutive from the log start";
	if ((r->n_entries > 0 && raft_memory_storage_append(ms, r->entries, r->n_entries) != RAFT_OK) ||
		raft_memory_storage_set_hard_state(ms, &r->hard_state) != RAFT_OK ||
		raft_memory_storage_set_conf_state(ms, &r->conf_state) != RAFT_OK)
		return "the log or the meta row could not be restored";
	if (r->applied < r->log_start_index || r->applied > r->log_start_index + r->n_entries)
		return "the applied index lies outside the stored log";
	if (!state_at_start &&
		raft_memory_storage_create_snapshot(ms, r->applied, &r->conf_state,
											r->state, r->state_len) != RAFT_OK)
		return "the snapshot at the applied index could not be restored";
	return NULL;
}

/* Replaces g's view by the group as stored.  adopt: as at start-up (reopen). */
static int
reload(StorageSelftest *t, SelftestGroup *g, bool adopt)
{
	LoadArgs	a;
	const char *bad = NULL;
	struct raft_memory_storage *ms = raft_memory_storage_new(NULL);

	if (ms == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	memset(&a, 0, sizeof(a));
	a.g = g;
	a.adopt = adopt;
	a.cxt = AllocSetContextCreate(t->cxt, "multiraft selftest group", ALLOCSET_DEFAULT_SIZES);
	if (!guarded(t, do_load, &a))
		bad = "";
	else if ((bad = rebuild(ms, &a.r)) != NULL)
		t->last_error = pstrdup(bad);
	if (g->ms != NULL)
		raft_memory_storage_free(g->ms);
	if (g->cxt != NULL)
		MemoryContextDelete(g->cxt);
	g->cxt = a.cxt;
	if (bad != NULL)
	{
		/* Nothing readable: an empty storage and an empty stored state. */
		raft_memory_storage_free(ms);
		ms = raft_memory_storage_new(NULL);
		if (ms == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		memset(&a.r, 0, sizeof(a.r));
		a.r.group = g->group;
		a.r.replica_id = 1;
	}
	g->ms = ms;
	g->r = a.r;
	return bad == NULL ? RAFT_OK : RAFT_ESTORAGE;
}

/*
 * Writes w, then reads the group back (a failed write's error is the one kept).
 * A failed write was rolled back, but the write path's knowledge of the log
 * rows may have followed it part of the way: relearned from the tables, as
 * the worker reloads after a failed batch.
 */
static int
persist(StorageSelftest *t, SelftestGroup *g, struct mr_group_write *w)
{
	bool		wrote = guarded(t, do_write, w);
	char	   *write_error = t->last_error;
	int			rc;

	if (!wrote)
		storage_log_forget(g->group);
	rc = reload(t, g, !wrote);

	if (wrote)
		return rc;
	t->last_error = write_error;
	return RAFT_ESTORAGE;
}

/* A write that changes nothing yet: the stored meta values. */
static void
write_init(const SelftestGroup *g, struct mr_group_write *w)
{
	memset(w, 0, sizeof(*w));
	w->group = g->group;
	w->replica_id = g->r.replica_id;
	w->hard_state = g->r.hard_state;
	w->conf_state = g->r.conf_state;
	w->applied = g->r.applied;
	w->log_start_index = g->r.log_start_index;
	w->log_start_term = g->r.log_start_term;
	w->state = g->r.state;
	w->state_len = g->r.state_len;
}

/* ---------------------------------------------------------------- the factory */

/* The suite keeps this interface while g->ms is replaced at every reload. */
static int
st_initial_state(void *user, struct raft_hard_state *hs, struct raft_conf_state *cs)
{
	struct raft_storage s;

	raft_memory_storage_interface(((SelftestGroup *) user)->ms, &s);
	return s.initial_state(s.user, hs, cs);
}

static int
st_entries(void *user, raft_index lo, raft_index hi, uint64_t max_bytes,
		   struct raft_entry_sink *sink)
{
	struct raft_storage s;

	raft_memory_storage_interface(((SelftestGroup *) user)->ms, &s);
	return s.entries(s.user, lo, hi, max_bytes, sink);
}

static int
st_term(void *user, raft_index i, raft_term *out)
{
	struct raft_storage s;

	raft_memory_storage_interface(((SelftestGroup *) user)->ms, &s);
	return s.term(s.user, i, out);
}

static raft_index
st_first_index(void *user)
{
	struct raft_storage s;

	raft_memory_storage_interface(((SelftestGroup *) user)->ms, &s);
	return s.first_index(s.user);
}

static raft_index
st_last_index(void *user)
{
	struct raft_storage s;

	raft_memory_storage_interface(((SelftestGroup *) user)->ms, &s);
	return s.last_index(s.user);
}

static int
st_snapshot(void *user, struct raft_snapshot *out)
{
	struct raft_storage s;

	raft_memory_storage_interface(((SelftestGroup *) user)->ms, &s);
	return s.snapshot(s.user, out);
}

static void
group_interface(SelftestGroup *g, struct raft_storage *st)
{
	memset(st, 0, sizeof(*st));
	st->user = g;
	st->initial_state = st_initial_state;
	st->entries = st_entries;
	st->term = st_term;
	st->first_index = st_first_index;
	st->last_index = st_last_index;
	st->snapshot = st_snapshot;
}

static int
f_create(void *ctx, void **handle, struct raft_storage *st)
{
	StorageSelftest *t = ctx;
	SelftestGroup *g = MemoryContextAllocZero(t->cxt, sizeof(SelftestGroup));
	struct mr_group_write w;
	int			rc;

	t->last_error = NULL;
	g->group = (mr_group_id) t->next_group--;
	g->r.replica_id = 1;
	write_init(g, &w);
	w.flags = MR_GW_CREATED | MR_GW_KEEP_DEDUP;	/* as the layer's new replicas */
	w.meta_changed = true;
	rc = persist(t, g, &w);
	if (rc != RAFT_OK)
	{
		raft_memory_storage_free(g->ms);
		return rc;
	}
	group_interface(g, st);
	*handle = g;
	return RAFT_OK;
}

typedef struct CountArgs
{
	SelftestGroup *g;
	int64		n;
} CountArgs;

static void
do_count(void *arg)
{
	CountArgs  *a = arg;
	Oid			types[1] = {INT8OID};
	Datum		v[1] = {U64_DATUM(a->g->group)};
	bool		isnull;

	push_current_snapshot();
	if (SPI_execute_with_args("SELECT (SELECT count(*) FROM multiraft.log WHERE group_id = $1)"
							  " + (SELECT count(*) FROM multiraft.group_meta WHERE group_id = $1)"
							  " + (SELECT count(*) FROM multiraft.dedup WHERE group_id = $1)",
							  1, types, v, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the group's rows");
	a->n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									   &isnull));
	PopActiveSnapshot();
}

static bool
rows_left(StorageSelftest *t, SelftestGroup *g, int64 *n)
{
	CountArgs	a = {g, 0};
	bool		ok = guarded(t, do_count, &a);

	*n = a.n;
	return ok;
}

static void
f_destroy(void *ctx, void *handle)
{
	StorageSelftest *t = ctx;
	SelftestGroup *g = handle;
	struct mr_group_write w;
	int64		n = 0;

	write_init(g, &w);
	w.flags = MR_GW_REMOVED;
	if (!guarded(t, do_write, &w) || !rows_left(t, g, &n) || n > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(t->cxt);

		t->remove_failures++;
		t->failures = lappend(t->failures,
							  n > 0 ? psprintf("remove_group: " INT64_FORMAT " rows of group " INT64_FORMAT " left", n, (int64) g->group)
							  : psprintf("remove_group: %s", t->last_error ? t->last_error : "failed"));
		MemoryContextSwitchTo(old);
	}
	raft_memory_storage_free(g->ms);
	if (g->cxt != NULL)
		MemoryContextDelete(g->cxt);
	pfree(g);
}

static int
f_append(void *ctx, void *handle, const struct raft_entry *e, size_t n)
{
	SelftestGroup *g = handle;
	struct mr_group_write w;
	size_t		skip = 0;
	int			rc = raft_memory_storage_append(g->ms, e, n);

	if (rc != RAFT_OK)
		return rc;
	write_init(g, &w);
	while (skip < n && e[skip].index <= g->r.log_start_index)
		skip++;
	w.entries = e + skip;
	w.n_entries = n - skip;
	return persist(ctx, g, &w);
}

static int
f_set_hard_state(void *ctx, void *handle, const struct raft_hard_state *hs)
{
	SelftestGroup *g = handle;
	struct mr_group_write w;

	write_init(g, &w);
	w.meta_changed = true;
	w.hard_state = *hs;
	return persist(ctx, g, &w);
}

static int
f_set_conf_state(void *ctx, void *handle, const struct raft_conf_state *cs)
{
	SelftestGroup *g = handle;
	struct mr_group_write w;

	write_init(g, &w);
	w.meta_changed = true;
	w.conf_state = *cs;
	return persist(ctx, g, &w);
}

static int
f_apply_snapshot(void *ctx, void *handle, const struct raft_snapshot *s)
{
	SelftestGroup *g = handle;
	struct mr_group_write w;
	int			rc = raft_memory_storage_apply_snapshot(g->ms, s);

	if (rc != RAFT_OK)
		return rc;
	write_init(g, &w);
	w.has_snapshot = true;		/* no command-id records: an empty blob */
	w.meta_changed = true;
	w.conf_state = s->conf;
	w.applied = s->index;
	w.log_start_index = s->index;
	w.log_start_term = s->term;
	w.state = s->data;
	w.state_len = s->len;
	return persist(ctx, g, &w);
}

static int
f_create_snapshot(void *ctx, void *handle, raft_index index,
				  const struct raft_conf_state *cs, const void *data, size_t len)
{
	SelftestGroup *g = handle;
	struct mr_group_write w;
	int			rc = raft_memory_storage_create_snapshot(g->ms, index, cs, data, len);

	if (rc != RAFT_OK)
		return rc;
	write_init(g, &w);
	w.meta_changed = true;
	w.applied = index;
	w.conf_state = *cs;
	w.state = data;
	w.state_len = len;
	return persist(ctx, g, &w);
}

static int
f_compact(void *ctx, void *handle, raft_index index)
{
	SelftestGroup *g = handle;
	struct mr_group_write w;
	struct raft_storage st;
	raft_term term = 0;
	int			rc;

	raft_memory_storage_interface(g->ms, &st);
	(void) st.term(st.user, index, &term);
	rc = raft_memory_storage_compact(g->ms, index);
	if (rc != RAFT_OK)
		return rc;
	write_init(g, &w);
	w.compacted = true;
	w.meta_changed = true;
	w.log_start_index = index;
	w.log_start_term = term;
	return persist(ctx, g, &w);
}

static int
f_reopen(void *ctx, void **handle, struct raft_storage *st)
{
	SelftestGroup *g = *handle;
	int			rc;

	/* As a restart: the write path's knowledge of the log is learned afresh. */
	storage_log_forget(g->group);
	rc = reload(ctx, g, true);
	group_interface(g, st);
	return rc;
}

/* ---------------------------------------------------------------- one more check */

typedef struct TwoWrites
{
	struct mr_group_write *first;
	struct mr_group_write *second;
} TwoWrites;

/* Two batches in one transaction, as the worker's rounds are. */
static void
do_write_two(void *arg)
{
	TwoWrites  *a = arg;
	struct mr_batch b;

	memset(&b, 0, sizeof(b));
	b.n_groups = 1;
	push_current_snapshot();
	storage_txn_begin();
	b.groups = a->first;
	storage_write_batch(&b);
	CommandCounterIncrement();
	b.groups = a->second;
	storage_write_batch(&b);
	storage_txn_finish();
	PopActiveSnapshot();
}

/*
 * A replica removed and created again within one transaction (a node removed
 * from a group and added back at once): the new replica's meta row must
 * replace the old one, which this same transaction deleted.  Returns the
 * number of failed checks (0 or 1).
 */
int
storage_selftest_recreate(StorageSelftest *t)
{
	struct raft_storage st;
	void	   *h;
	SelftestGroup *g;
	struct mr_group_write rm;
	struct mr_group_write cr;
	TwoWrites	a = {&rm, &cr};
	bool		ok;

	if (f_create(t, &h, &st) != RAFT_OK)
	{
		storage_selftest_report(t, "recreate_in_one_transaction", "could not create the group");
		return 1;
	}
	g = h;
	write_init(g, &rm);
	rm.flags = MR_GW_REMOVED | MR_GW_KEEP_DEDUP;
	write_init(g, &cr);
	cr.replica_id = 2;
	cr.flags = MR_GW_CREATED | MR_GW_KEEP_DEDUP;
	cr.meta_changed = true;
	ok = guarded(t, do_write_two, &a);
	if (!ok)
		storage_selftest_report(t, "recreate_in_one_transaction", "the transaction failed");
	else if (reload(t, g, false) != RAFT_OK || g->r.replica_id != 2)
	{
		storage_selftest_report(t, "recreate_in_one_transaction",
								"the new replica's meta row was not stored");
		ok = false;
	}
	f_destroy(t, g);
	return ok ? 0 : 1;
}

/* ---------------------------------------------------------------- set-up */

void
storage_selftest_init(StorageSelftest *t, struct storage_factory *f, MemoryContext parent)
{
	memset(t, 0, sizeof(*t));
	t->cxt = AllocSetContextCreate(parent, "multiraft selftest", ALLOCSET_DEFAULT_SIZES);
	t->op_cxt = AllocSetContextCreate(t->cxt, "multiraft selftest op", ALLOCSET_DEFAULT_SIZES);
	t->next_group = -1;

	memset(f, 0, sizeof(*f));
	f->ctx = t;
	f->create = f_create;
	f->destroy = f_destroy;
	f->append = f_append;
	f->set_hard_state = f_set_hard_state;
	f->set_conf_state = f_set_conf_state;
	f->apply_snapshot = f_apply_snapshot;
	f->create_snapshot = f_create_snapshot;
	f->compact = f_compact;
	f->reopen = f_reopen;
}

/* The suite's report callback: one line per failure, with the storage error. */
void
storage_selftest_report(void *arg, const char *check, const char *message)
{
	StorageSelftest *t = arg;
	MemoryContext old = MemoryContextSwitchTo(t->cxt);

	if (t->last_error != NULL && t->last_error[0] != '\0')
		t->failures = lappend(t->failures, psprintf("%s: %s (%s)", check, message, t->last_error));
	else
		t->failures = lappend(t->failures, psprintf("%s: %s", check, message));
	t->last_error = NULL;
	MemoryContextSwitchTo(old);
}
