/*
 * memory_storage.c — an in-memory implementation of the storage contract
 * (struct raft_storage) with the write operations a caller performs from Ready.
 * Used by unit tests, the simulator and as the reference for the conformance suite.
 *
 * Layout: entries (ci, ci + n] are held, in ents[0 .. n), a window into the array
 * base[0 .. cap); (ci, ct) is the index/term of the last compacted entry (0/0
 * initially), so term(ci) is known.  Compaction moves the window's start (no copy);
 * an append that finds no room at its end moves the window back to the start of
 * the array, growing it first when the entries would fill more than half of it —
 * so each entry is moved O(1) times on average, however many entries a lagging
 * member keeps held (mr_group_compact).  Each entry records the bytes of all
 * entries up to it (cum, from an arbitrary origin; cum_ci: that of the last
 * compacted entry), so the bytes of any range cost O(1).  Entry data is packed into
 * reference-counted blocks of at least 4 KiB (a new block only when the current one
 * is full), freed when no entry refers to them any more.
 */
#include "raft_internal.h"

struct ms_block {
    size_t refs;
    size_t size;
    size_t used;
    /* data follows */
};
#define MS_BLOCK_MIN 4096u
/* A storage's first block is this small, and each next one twice the last up to
 * MS_BLOCK_MIN: a group restored or woken for a few small entries — most of them,
 * on a node with many groups — held a 4 KiB block each (6.4 KB per restored
 * replica with 100,000 groups; 2.6 KB with this). */
#define MS_BLOCK_FIRST 256u

struct ms_entry {
    struct raft_entry e;
    struct ms_block *block;
    uint64_t cum; /* data bytes of the entries up to this one (see Layout) */
};

struct raft_memory_storage {
    struct raft_allocator a;
    struct raft_hard_state hs;
    raft_id *conf_ids;           /* voters then learners */
    uint32_t n_voters, n_learners;
    struct raft_snapshot snap;   /* last created/installed snapshot (index 0: none) */
    raft_id *snap_ids;
    raft_index ci;
    raft_term ct;
    struct ms_entry *base;       /* the array: cap entries */
    struct ms_entry *ents;       /* the held entries, n of them, within base */
    size_t n, cap;
    uint64_t cum_ci;             /* cum of the last compacted entry */
    struct ms_block *cur;        /* block receiving new data (holds one ref) */
};

static void *ms_alloc(struct raft_memory_storage *ms, size_t n)
{
    return ms->a.malloc(ms->a.ctx, n == 0 ? 1 : n);
}
static void ms_free(struct raft_memory_storage *ms, const void *p)
{
    if (p != NULL)
        ms->a.free(ms->a.ctx, (void *)p);
}

struct raft_memory_storage *raft_memory_storage_new(const struct raft_allocator *a)
{
    struct raft_memory_storage *ms;
    if (a == NULL)
        a = raft_default_allocator();
    ms = a->malloc(a->ctx, sizeof *ms);
    if (ms == NULL)
        return NULL;
    memset(ms, 0, sizeof *ms);
    ms->a = *a;
    return ms;
}

static void unref(struct raft_memory_storage *ms, struct ms_entry *me)
{
    if (me->block != NULL && --me->block->refs == 0)
        ms_free(ms, me->block);
    me->block = NULL;
}

static void free_entries(struct raft_memory_storage *ms, size_t from)
{
    for (size_t i = from; i < ms->n; i++)
        unref(ms, &ms->ents[i]);
    ms->n = from;
}

void raft_memory_storage_free(struct raft_memory_storage *ms)
{
    if (ms == NULL)
        return;
    free_entries(ms, 0);
    if (ms->cur != NULL && --ms->cur->refs == 0)
        ms_free(ms, ms->cur);
    ms_free(ms, ms->base);
    ms_free(ms, ms->conf_ids);
    ms_free(ms, ms->snap_ids);
    ms_free(ms, ms->snap.data);
    ms->a.free(ms->a.ctx, ms);
}

/* ------------------------------------------------------------------ read side */

static int ms_initial_state(void *user, struct raft_hard_state *hs, struct raft_conf_state *cs)
{
    struct raft_memory_storage *ms = user;
    *hs = ms->hs;
    cs->voters = ms->conf_ids;
    cs->n_voters = ms->n_voters;
    cs->learners = ms->conf_ids != NULL ? ms->conf_ids + ms->n_voters : NULL;
    cs->n_learners = ms->n_learners;
    return RAFT_OK;
}

static raft_index ms_first_index(void *user)
{
    struct raft_memory_storage *ms = user;
    return ms->ci + 1;
}

static raft_index ms_last_index(void *user)
{
    struct raft_memory_storage *ms = user;
    return ms->ci + ms->n;
}

static int ms_term(void *user, raft_index i, raft_term *out)
{
    struct raft_memory_storage *ms = user;
    if (i < ms->ci)
        return RAFT_ECOMPACTED;
    if (i > ms->ci + ms->n)
        return RAFT_EUNAVAILABLE;
    *out = i == ms->ci ? ms->ct : ms->ents[i - ms->ci - 1].e.term;
    return RAFT_OK;
}

static int ms_entries(void *user, raft_index lo, raft_index hi, uint64_t max_bytes,
                      struct raft_entry_sink *sink)
{
    struct raft_memory_storage *ms = user;
    uint64_t bytes = 0;
    if (lo <= ms->ci)
        return RAFT_ECOMPACTED;
    if (hi > ms->ci + ms->n + 1)
        return RAFT_EUNAVAILABLE;
    for (raft_index i = lo; i < hi; i++) {
        const struct raft_entry *e = &ms->ents[i - ms->ci - 1].e;
        int rc;
        if (i > lo && bytes + e->len > max_bytes)
            break;
        bytes += e->len;
        if ((rc = raft_entry_sink_push(sink, e)) != RAFT_OK)
            return rc;
    }
    return RAFT_OK;
}

uint64_t raft_memory_storage_size(const struct raft_memory_storage *ms, raft_index lo,
                                  raft_index hi)
{
    uint64_t before;
    if (lo <= ms->ci)
        lo = ms->ci + 1;
    if (hi > ms->ci + ms->n + 1)
        hi = ms->ci + ms->n + 1;
    if (lo >= hi)
        return 0;
    before = lo - 1 == ms->ci ? ms->cum_ci : ms->ents[lo - ms->ci - 2].cum;
    return ms->ents[hi - ms->ci - 2].cum - before;
}

static int ms_snapshot(void *user, struct raft_snapshot *out)
{
    struct raft_memory_storage *ms = user;
    *out = ms->snap;
    return RAFT_OK;
}

void raft_memory_storage_interface(struct raft_memory_storage *ms, struct raft_storage *out)
{
    out->user = ms;
    out->initial_state = ms_initial_state;
    out->entries = ms_entries;
    out->term = ms_term;
    out->first_index = ms_first_index;
    out->last_index = ms_last_index;
    out->snapshot = ms_snapshot;
}

/* ------------------------------------------------------------------ write side */

/* Makes room for `want` entries from the window's start (Layout): moves the
 * window to the array's start when that leaves the array at most half full,
 * grows the array first otherwise. */
static int room_for(struct raft_memory_storage *ms, size_t want)
{
    size_t off = ms->base != NULL ? (size_t)(ms->ents - ms->base) : 0;
    if (off + want <= ms->cap)
        return RAFT_OK;
    if (want > ms->cap / 2) {
        size_t cap = ms->cap ? ms->cap : 16;
        struct ms_entry *q;
        while (cap / 2 < want)
            cap *= 2;
        q = ms->a.realloc(ms->a.ctx, ms->base, cap * sizeof *q);
        if (q == NULL)
            return RAFT_ENOMEM;
        ms->base = q;
        ms->cap = cap;
        ms->ents = q + off;
        if (off + want <= cap)
            return RAFT_OK;
    }
    memmove(ms->base, ms->ents, sizeof *ms->ents * ms->n);
    ms->ents = ms->base;
    return RAFT_OK;
}

int raft_memory_storage_append(struct raft_memory_storage *ms, const struct raft_entry *e,
                               size_t n)
{
    size_t skip = 0;
    raft_index k;
    while (skip < n && e[skip].index <= ms->ci)
        skip++; /* already compacted: committed, hence identical */
    e += skip;
    n -= skip;
    if (n == 0)
        return RAFT_OK;
    k = e[0].index;
    if (k > ms->ci + ms->n + 1)
        return RAFT_EINVAL;
    for (size_t i = 1; i < n; i++)
        if (e[i].index != k + i)
            return RAFT_EINVAL;
    {
        size_t keep = (size_t)(k - ms->ci - 1);
        size_t bytes = 0;
        struct ms_block *b = NULL;
        char *p = NULL;
        if (room_for(ms, keep + n) != RAFT_OK)
            return RAFT_ENOMEM;
        for (size_t i = 0; i < n; i++)
            bytes += e[i].len;
        if (bytes > 0) {
            b = ms->cur;
            if (b == NULL || b->size - b->used < bytes) {
                size_t grow = ms->cur == NULL ? MS_BLOCK_FIRST
                              : ms->cur->size >= MS_BLOCK_MIN / 2 ? MS_BLOCK_MIN
                                                                  : 2 * ms->cur->size;
                size_t size = bytes < grow ? grow : bytes;
                b = ms_alloc(ms, sizeof *b + size);
                if (b == NULL)
                    return RAFT_ENOMEM;
                b->refs = 1; /* the storage's own reference as current block */
                b->size = size;
                b->used = 0;
                if (ms->cur != NULL && --ms->cur->refs == 0)
                    ms_free(ms, ms->cur);
                ms->cur = b;
            }
            p = (char *)(b + 1) + b->used;
            b->used += bytes;
        }
        free_entries(ms, keep); /* truncate the conflicting suffix */
        for (size_t i = 0; i < n; i++) {
            struct ms_entry *d = &ms->ents[ms->n++];
            d->cum = (ms->n > 1 ? d[-1].cum : ms->cum_ci) + e[i].len;
            d->e = e[i];
            d->e.data = NULL;
            d->block = NULL;
            if (e[i].len > 0) {
                memcpy(p, e[i].data, e[i].len);
                d->e.data = p;
                d->block = b;
                b->refs++;
                p += e[i].len;
            }
        }
    }
    return RAFT_OK;
}

int raft_memory_storage_set_hard_state(struct raft_memory_storage *ms,
                                       const struct raft_hard_state *hs)
{
    ms->hs = *hs;
    return RAFT_OK;
}

void raft_memory_storage_hard_state(const struct raft_memory_storage *ms,
                                    struct raft_hard_state *out)
{
    *out = ms->hs;
}

static raft_id *copy_conf(struct raft_memory_storage *ms, const struct raft_conf_state *cs,
                          int *rc)
{
    size_t n = (size_t)cs->n_voters + cs->n_learners;
    raft_id *ids = ms_alloc(ms, sizeof(raft_id) * n);
    *rc = ids == NULL ? RAFT_ENOMEM : RAFT_OK;
    if (ids == NULL)
        return NULL;
    if (cs->n_voters > 0)
        memcpy(ids, cs->voters, sizeof(raft_id) * cs->n_voters);
    if (cs->n_learners > 0)
        memcpy(ids + cs->n_voters, cs->learners, sizeof(raft_id) * cs->n_learners);
    return ids;
}

int raft_memory_storage_set_conf_state(struct raft_memory_storage *ms,
                                       const struct raft_conf_state *cs)
{
    int rc;
    raft_id *ids = copy_conf(ms, cs, &rc);
    if (ids == NULL)
        return rc;
    ms_free(ms, ms->conf_ids);
    ms->conf_ids = ids;
    ms->n_voters = cs->n_voters;
    ms->n_learners = cs->n_learners;
    return RAFT_OK;
}

static int set_snapshot(struct raft_memory_storage *ms, raft_index index, raft_term term,
                        const struct raft_conf_state *cs, const void *data, size_t len)
{
    int rc;
    raft_id *ids = copy_conf(ms, cs, &rc);
    void *d = NULL;
    if (ids == NULL)
        return rc;
    if (len > 0) {
        d = ms_alloc(ms, len);
        if (d == NULL) {
            ms_free(ms, ids);
            return RAFT_ENOMEM;
        }
        memcpy(d, data, len);
    }
    ms_free(ms, ms->snap_ids);
    ms_free(ms, ms->snap.data);
    ms->snap_ids = ids;
    ms->snap.index = index;
    ms->snap.term = term;
    ms->snap.conf.voters = ids;
    ms->snap.conf.n_voters = cs->n_voters;
    ms->snap.conf.learners = ids + cs->n_voters;
    ms->snap.conf.n_learners = cs->n_learners;
    ms->snap.data = d;
    ms->snap.len = len;
    return RAFT_OK;
}

int raft_memory_storage_apply_snapshot(struct raft_memory_storage *ms,
                                       const struct raft_snapshot *snap)
{
    int rc;
    if (snap->index <= ms->snap.index)
        return RAFT_ESNAPOUTOFDATE;
    rc = set_snapshot(ms, snap->index, snap->term, &snap->conf, snap->data, snap->len);
    if (rc != RAFT_OK)
        return rc;
    rc = raft_memory_storage_set_conf_state(ms, &snap->conf);
    if (rc != RAFT_OK)
        return rc;
    free_entries(ms, 0);
    ms->ci = snap->index;
    ms->ct = snap->term;
    return RAFT_OK;
}

int raft_memory_storage_create_snapshot(struct raft_memory_storage *ms, raft_index index,
                                        const struct raft_conf_state *cs,
                                        const void *data, size_t len)
{
    raft_term t;
    int rc;
    if (index <= ms->snap.index)
        return RAFT_ESNAPOUTOFDATE;
    rc = ms_term(ms, index, &t);
    if (rc != RAFT_OK)
        return rc;
    return set_snapshot(ms, index, t, cs, data, len);
}

int raft_memory_storage_compact(struct raft_memory_storage *ms, raft_index index)
{
    size_t drop;
    if (index <= ms->ci)
        return RAFT_ECOMPACTED;
    if (index > ms->ci + ms->n)
        return RAFT_EUNAVAILABLE;
    if (index > ms->snap.index)
        return RAFT_EINVAL;
    drop = (size_t)(index - ms->ci);
    ms->ct = ms->ents[drop - 1].e.term;
    ms->cum_ci = ms->ents[drop - 1].cum;
    for (size_t i = 0; i < drop; i++)
        unref(ms, &ms->ents[i]);
    ms->ents += drop; /* moved back to the array's start by a later append */
    ms->n -= drop;
    ms->ci = index;
    return RAFT_OK;
}

int raft_memory_storage_bootstrap(struct raft_memory_storage *ms,
                                  const struct raft_conf_state *cs)
{
    struct raft_snapshot snap;
    struct raft_hard_state hs = {1, RAFT_NONE, 1};
    int rc;
    memset(&snap, 0, sizeof snap);
    snap.index = 1;
    snap.term = 1;
    snap.conf = *cs;
    rc = raft_memory_storage_apply_snapshot(ms, &snap);
    if (rc != RAFT_OK)
        return rc;
    ms->hs = hs;
    return RAFT_OK;
}
