/*
 * log.c — the replica's view of its log: stable entries (read through the storage
 * interface) followed by the unstable suffix (appended but not yet persisted by the
 * caller), plus a snapshot received from the leader and not yet installed.
 *
 * Unstable entry data lives in chunks (one allocation per append call) that never
 * move, so entry pointers handed out in messages stay valid until raft_advance(),
 * which is the only place chunks are freed.
 */
#include "raft_internal.h"

#define CHUNK_HDR (((sizeof(struct raft_data_chunk) + 15) / 16) * 16)
#define CHUNK_MIN ((size_t)4096 - CHUNK_HDR)

raft_index raft_log_last_index(struct raft *r)
{
    if (r->log.n > 0)
        return r->log.offset + r->log.n - 1;
    if (r->log.snap != NULL)
        return r->log.snap->index;
    return r->st.last_index(r->st.user);
}

raft_index raft_log_stable_last(const struct raft *r)
{
    return r->log.offset + r->log.n_stable - 1;
}

raft_index raft_log_first_index(struct raft *r)
{
    if (r->log.snap != NULL)
        return r->log.snap->index + 1;
    return r->st.first_index(r->st.user);
}

raft_term raft_log_term(struct raft *r, raft_index i, int *rc)
{
    struct raft_log *l = &r->log;
    raft_term t = 0;
    int res;
    *rc = RAFT_OK;
    if (l->n > 0 && i >= l->offset) {
        if (i < l->offset + l->n)
            return l->ents[i - l->offset].term;
        *rc = RAFT_EUNAVAILABLE;
        return 0;
    }
    if (l->snap != NULL) {
        if (i == l->snap->index)
            return l->snap->term;
        *rc = i < l->snap->index ? RAFT_ECOMPACTED : RAFT_EUNAVAILABLE;
        return 0;
    }
    res = r->st.term(r->st.user, i, &t);
    if (res != RAFT_OK) {
        if (res != RAFT_ECOMPACTED && res != RAFT_EUNAVAILABLE)
            res = RAFT_ESTORAGE;
        *rc = res;
        return 0;
    }
    return t;
}

raft_term raft_log_last_term(struct raft *r)
{
    int rc;
    return raft_log_term(r, raft_log_last_index(r), &rc);
}

bool raft_log_match(struct raft *r, raft_index i, raft_term t)
{
    int rc;
    raft_term have = raft_log_term(r, i, &rc);
    return rc == RAFT_OK && have == t;
}

bool raft_log_up_to_date(struct raft *r, raft_term last_term, raft_index last_index)
{
    /* §5.4.1: compare the terms of the last entries, then the lengths. */
    raft_term my_term = raft_log_last_term(r);
    if (last_term != my_term)
        return last_term > my_term;
    return last_index >= raft_log_last_index(r);
}

int raft_log_append(struct raft *r, const struct raft_entry *e, size_t n)
{
    struct raft_log *l = &r->log;
    struct raft_data_chunk *c = NULL, *it;
    size_t bytes = 0, i;
    raft_index k;
    char *p;
    int rc;

    if (n == 0)
        return RAFT_OK;
    k = e[0].index;
    for (i = 0; i < n; i++)
        bytes += e[i].len;
    /* Reserve first so a failure leaves the log untouched. */
    {
        uint32_t keep = l->n;
        if (k <= l->offset)
            keep = 0;
        else if (k < l->offset + l->n)
            keep = (uint32_t)(k - l->offset);
        rc = raft_vec_reserve(r, (void **)&l->ents, &l->cap, keep + (uint32_t)n,
                              sizeof *l->ents, 8);
        if (rc != RAFT_OK)
            return rc;
        if (bytes > 0) {
            c = l->chunks;
            if (c == NULL || c->size - c->used < bytes) {
                /* Small appends share a chunk; a chunk never moves. */
                size_t size = bytes < CHUNK_MIN ? CHUNK_MIN : bytes;
                c = raft_mem_alloc(r, CHUNK_HDR + size);
                if (c == NULL)
                    return RAFT_ENOMEM;
                c->size = size;
                c->used = 0;
                c->last = 0; /* read by the truncation below before it is set */
                c->next = l->chunks;
                l->chunks = c;
            }
        }
        if (keep != l->n || k < l->offset) {
            /* Truncation (§5.3: delete the conflicting entry and all that follow).
             * Data of truncated entries stays allocated until advance. */
            for (it = l->chunks; it != NULL; it = it->next)
                if (it->last >= k)
                    it->last = k - 1;
        }
        if (k <= l->offset)
            l->offset = k;
        l->n = keep;
        if (l->n_stable > keep)
            l->n_stable = keep;
    }
    if (c != NULL) {
        c->last = e[n - 1].index;
        p = (char *)c + CHUNK_HDR + c->used;
        c->used += bytes;
    } else {
        p = NULL;
    }
    for (i = 0; i < n; i++) {
        struct raft_entry *d = &l->ents[l->n++];
        *d = e[i];
        if (e[i].len > 0) {
            memcpy(p, e[i].data, e[i].len);
            d->data = p;
            p += e[i].len;
        } else {
            d->data = NULL;
        }
    }
    return RAFT_OK;
}

/* Pushes an unstable entry without copying its data (chunks outlive the Ready). */
static int sink_push_ref(struct raft_entry_sink *s, const struct raft_entry *e)
{
    int rc = raft_vec_reserve(s->r, (void **)&s->ents, &s->cap, s->n + 1, sizeof *s->ents, 8);
    if (rc != RAFT_OK)
        return rc;
    s->ents[s->n++] = *e;
    s->next++;
    s->bytes += e->len;
    return RAFT_OK;
}

int raft_log_entries(struct raft *r, raft_index lo, raft_index hi, uint64_t max_bytes,
                     struct raft_entry_sink *sink)
{
    struct raft_log *l = &r->log;
    raft_index i;
    int rc;
    if (lo >= hi)
        return RAFT_OK;
    if (lo < raft_log_first_index(r))
        return RAFT_ECOMPACTED;
    if (hi > raft_log_last_index(r) + 1)
        return RAFT_EUNAVAILABLE;
    if (lo < l->offset && l->snap == NULL) {
        raft_index shi = hi < l->offset ? hi : l->offset;
        rc = r->st.entries(r->st.user, lo, shi, max_bytes, sink);
        if (rc == RAFT_OK)
            rc = sink->err;
        if (rc != RAFT_OK)
            return rc == RAFT_ECOMPACTED || rc == RAFT_EUNAVAILABLE || rc == RAFT_ENOMEM
                       ? rc : RAFT_ESTORAGE;
        if (sink->next != shi)
            return RAFT_OK; /* size limit reached inside storage */
        lo = shi;
    }
    for (i = lo; i < hi; i++) {
        const struct raft_entry *e = &l->ents[i - l->offset];
        if (sink->n > 0 && sink->bytes + e->len > max_bytes)
            break;
        rc = sink_push_ref(sink, e);
        if (rc != RAFT_OK)
            return rc;
    }
    return RAFT_OK;
}

int raft_find_entry(struct raft *r, raft_index lo, raft_index hi,
                    bool (*match)(void *arg, const struct raft_entry *e), void *arg,
                    bool *found)
{
    *found = false;
    while (lo < hi && !*found) {
        struct raft_entry_sink sink;
        int rc;
        raft_sink_init(&sink, r, lo);
        rc = raft_log_entries(r, lo, hi, 1u << 20, &sink);
        if (rc == RAFT_OK && sink.n == 0)
            rc = RAFT_ESTORAGE; /* no progress: a storage that returned nothing */
        for (uint32_t k = 0; rc == RAFT_OK && k < sink.n && !*found; k++)
            *found = match(arg, &sink.ents[k]);
        lo += sink.n;
        raft_sink_fini(&sink);
        if (rc != RAFT_OK)
            return rc;
    }
    return RAFT_OK;
}

uint32_t raft_log_mem_count(const struct raft *r, raft_index lo, raft_index hi,
                            uint64_t max_bytes)
{
    const struct raft_log *l = &r->log;
    raft_index end = l->offset + l->n;
    uint64_t bytes = 0;
    uint32_t k = 0;
    if (hi > end)
        hi = end;
    for (raft_index i = lo; i < hi; i++, k++) {
        uint32_t len = l->ents[i - l->offset].len;
        if (k > 0 && bytes + len > max_bytes)
            break;
        bytes += len;
    }
    return k;
}

void raft_log_commit_to(struct raft *r, raft_index i)
{
    if (i > r->log.committed)
        r->log.committed = i;
}

static void free_snap(struct raft *r)
{
    struct raft_log *l = &r->log;
    if (l->snap == NULL)
        return;
    raft_mem_free(r, l->snap_ids,
                  sizeof(raft_id) * (l->snap->conf.n_voters + l->snap->conf.n_learners));
    raft_mem_free(r, (void *)l->snap->data, l->snap->len);
    raft_mem_free(r, l->snap, sizeof *l->snap);
    l->snap = NULL;
    l->snap_ids = NULL;
    l->snap_handed = false;
}

int raft_log_restore(struct raft *r, const struct raft_snapshot *s)
{
    struct raft_log *l = &r->log;
    struct raft_snapshot *copy;
    raft_id *ids = NULL;
    void *data = NULL;
    uint32_t nids = s->conf.n_voters + s->conf.n_learners;
    struct raft_data_chunk *it;

    copy = raft_mem_alloc(r, sizeof *copy);
    if (copy == NULL)
        return RAFT_ENOMEM;
    if (nids > 0) {
        ids = raft_mem_alloc(r, sizeof(raft_id) * nids);
        if (ids == NULL)
            goto oom;
        memcpy(ids, s->conf.voters, sizeof(raft_id) * s->conf.n_voters);
        if (s->conf.n_learners > 0)
            memcpy(ids + s->conf.n_voters, s->conf.learners,
                   sizeof(raft_id) * s->conf.n_learners);
    }
    if (s->len > 0) {
        data = raft_mem_alloc(r, s->len);
        if (data == NULL)
            goto oom;
        memcpy(data, s->data, s->len);
    }
    free_snap(r);
    *copy = *s;
    copy->data = data;
    copy->conf.voters = ids;
    copy->conf.learners = ids != NULL ? ids + s->conf.n_voters : NULL;
    l->snap = copy;
    l->snap_ids = ids;
    l->snap_handed = false;
    /* The snapshot replaces the whole log. */
    for (it = l->chunks; it != NULL; it = it->next)
        it->last = 0;
    l->n = 0;
    l->n_stable = 0;
    l->offset = s->index + 1;
    l->committed = s->index;
    return RAFT_OK;
oom:
    raft_mem_free(r, ids, sizeof(raft_id) * nids);
    raft_mem_free(r, copy, sizeof *copy);
    return RAFT_ENOMEM;
}

static void free_chunks(struct raft *r, bool all)
{
    struct raft_data_chunk **pp = &r->log.chunks;
    while (*pp != NULL) {
        struct raft_data_chunk *c = *pp;
        if (all || c->last < r->log.offset) {
            *pp = c->next;
            raft_mem_free(r, c, CHUNK_HDR + c->size);
        } else {
            pp = &c->next;
        }
    }
}

void raft_log_stable(struct raft *r, uint32_t n)
{
    struct raft_log *l = &r->log;
    if (l->snap != NULL && l->snap_handed) {
        if (l->applied < l->snap->index)
            l->applied = l->snap->index;
        free_snap(r);
    }
    l->n_stable += n;
    if (l->n_stable > l->n)
        l->n_stable = l->n;
    if (l->n_stable > 0) {
        /* Evict cached entries that are both persisted and applied. */
        raft_index upto = l->offset + l->n_stable - 1;
        if (upto > l->applied)
            upto = l->applied;
        if (upto >= l->offset) {
            uint32_t d = (uint32_t)(upto - l->offset + 1);
            memmove(l->ents, l->ents + d, sizeof *l->ents * (l->n - d));
            l->n -= d;
            l->n_stable -= d;
            l->offset += d;
        }
    }
    if (l->n == 0) {
        /* Everything is stable: keep the newest standard chunk for reuse. */
        struct raft_data_chunk *keep = l->chunks;
        if (keep != NULL && keep->size == CHUNK_MIN) {
            l->chunks = keep->next;
            keep->next = NULL;
            free_chunks(r, true);
            keep->used = 0;
            keep->last = 0;
            l->chunks = keep;
        } else {
            free_chunks(r, true);
        }
    } else {
        free_chunks(r, false);
    }
}

void raft_log_release(struct raft *r)
{
    struct raft_log *l = &r->log;
    if (l->n != 0)
        return;
    free_chunks(r, true);
    raft_mem_free(r, l->ents, sizeof *l->ents * l->cap);
    l->ents = NULL;
    l->cap = 0;
}

void raft_log_free(struct raft *r)
{
    free_snap(r);
    free_chunks(r, true);
    raft_mem_free(r, r->log.ents, sizeof *r->log.ents * r->log.cap);
    r->log.ents = NULL;
    r->log.n = r->log.n_stable = r->log.cap = 0;
}
