/*
 * util.c — allocator plumbing, growable arrays, the per-Ready arena, the PRNG and
 * the names of codes/types/roles.
 */
#include "raft_internal.h"

#include <stdalign.h>
#include <stdlib.h>

/* ------------------------------------------------------------ default allocator */

static void *default_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}
static void *default_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}
static void default_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}
static const struct raft_allocator default_allocator = {
    NULL, default_malloc, default_realloc, default_free,
};

const struct raft_allocator *raft_default_allocator(void)
{
    return &default_allocator;
}

/* ------------------------------------------------------------ accounting */

void *raft_mem_alloc(struct raft *r, size_t n)
{
    void *p = r->a.malloc(r->a.ctx, n);
    if (p != NULL)
        r->mem += n;
    return p;
}

void *raft_mem_realloc(struct raft *r, void *p, size_t old_n, size_t n)
{
    void *q = r->a.realloc(r->a.ctx, p, n);
    if (q != NULL)
        r->mem = r->mem - old_n + n;
    return q;
}

void raft_mem_free(struct raft *r, void *p, size_t n)
{
    if (p == NULL)
        return;
    r->a.free(r->a.ctx, p);
    r->mem -= n;
}

int raft_vec_grow(struct raft *r, void **arr, uint32_t *cap, uint32_t need, size_t size,
                  uint32_t initial)
{
    uint32_t c = *cap;
    void *p;
    if (need <= c)
        return RAFT_OK;
    if (c == 0)
        c = initial;
    while (c < need)
        c *= 2;
    p = raft_mem_realloc(r, *arr, (size_t)*cap * size, (size_t)c * size);
    if (p == NULL)
        return RAFT_ENOMEM;
    *arr = p;
    *cap = c;
    return RAFT_OK;
}

/* ------------------------------------------------------------ arena */

#define ARENA_ALIGN (alignof(max_align_t))
#define ARENA_HDR (((sizeof(struct raft_arena_chunk) + ARENA_ALIGN - 1) / ARENA_ALIGN) * ARENA_ALIGN)
#define ARENA_MIN_CHUNK 2048u

void *raft_arena_alloc(struct raft *r, size_t n)
{
    struct raft_arena_chunk *c;
    size_t need = ((n + ARENA_ALIGN - 1) / ARENA_ALIGN) * ARENA_ALIGN;
    if (need == 0)
        need = ARENA_ALIGN;
    if (raft_out_get(r) == NULL)
        return NULL;
    c = r->out->arena;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = need > ARENA_MIN_CHUNK ? need : ARENA_MIN_CHUNK;
        c = raft_mem_alloc(r, ARENA_HDR + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = r->out->arena;
        r->out->arena = c;
    }
    {
        char *p = (char *)c + ARENA_HDR + c->used;
        c->used += need;
        return p;
    }
}

/* Keeps the newest chunk (if it is a standard one) for the next Ready. */
void raft_arena_reset_keep(struct raft *r)
{
    struct raft_arena_chunk *c = r->out != NULL ? r->out->arena : NULL;
    if (c == NULL)
        return;
    if (c->next == NULL && c->cap == ARENA_MIN_CHUNK) {
        c->used = 0; /* the common case: one standard chunk */
        return;
    }
    if (c->cap == ARENA_MIN_CHUNK) {
        struct raft_arena_chunk *rest = c->next;
        c->next = NULL;
        c->used = 0;
        r->out->arena = rest;
        raft_arena_reset(r);
        r->out->arena = c;
    } else {
        raft_arena_reset(r);
    }
}

void raft_arena_reset(struct raft *r)
{
    struct raft_arena_chunk *c;
    if (r->out == NULL)
        return;
    c = r->out->arena;
    while (c != NULL) {
        struct raft_arena_chunk *next = c->next;
        raft_mem_free(r, c, ARENA_HDR + c->cap);
        c = next;
    }
    r->out->arena = NULL;
}

/* ------------------------------------------------------------ sink */

void raft_sink_init(struct raft_entry_sink *s, struct raft *r, raft_index lo)
{
    memset(s, 0, sizeof *s);
    s->r = r;
    s->next = lo;
    /* Borrow the raft's spare buffer: no allocation in the steady state. */
    if (r->out != NULL) {
        s->ents = r->out->scratch;
        s->cap = r->out->cap_scratch;
        r->out->scratch = NULL;
        r->out->cap_scratch = 0;
    }
}

void raft_sink_fini(struct raft_entry_sink *s)
{
    struct raft *r = s->r;
    if (r->out != NULL && r->out->scratch == NULL) {
        r->out->scratch = s->ents;
        r->out->cap_scratch = s->cap;
    } else {
        raft_mem_free(r, s->ents, (size_t)s->cap * sizeof *s->ents);
    }
    s->ents = NULL;
    s->n = s->cap = 0;
}

int raft_entry_sink_push(struct raft_entry_sink *s, const struct raft_entry *e)
{
    struct raft_entry *d;
    int rc;
    if (s->err != RAFT_OK)
        return s->err;
    if (e->index != s->next) {
        s->err = RAFT_EINVAL;
        return s->err;
    }
    rc = raft_vec_reserve(s->r, (void **)&s->ents, &s->cap, s->n + 1, sizeof *s->ents, 8);
    if (rc != RAFT_OK) {
        s->err = rc;
        return rc;
    }
    d = &s->ents[s->n];
    *d = *e;
    if (e->len > 0) {
        void *p = raft_arena_alloc(s->r, e->len);
        if (p == NULL) {
            s->err = RAFT_ENOMEM;
            return s->err;
        }
        memcpy(p, e->data, e->len);
        d->data = p;
    } else {
        d->data = NULL;
    }
    s->n++;
    s->next++;
    s->bytes += e->len;
    return RAFT_OK;
}

/* A stand-alone sink borrows the arena/vector helpers through a zeroed raft that
 * only carries the allocator. */
struct raft_entry_sink *raft_entry_sink_new(const struct raft_allocator *a, raft_index lo)
{
    struct raft *r;
    struct raft_entry_sink *s;
    if (a == NULL)
        a = raft_default_allocator();
    r = a->malloc(a->ctx, sizeof *r);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof *r);
    r->a = *a;
    s = raft_mem_alloc(r, sizeof *s);
    if (s == NULL) {
        a->free(a->ctx, r);
        return NULL;
    }
    raft_sink_init(s, r, lo);
    return s;
}

size_t raft_entry_sink_count(const struct raft_entry_sink *sink)
{
    return sink->n;
}

const struct raft_entry *raft_entry_sink_entries(const struct raft_entry_sink *sink)
{
    return sink->ents;
}

void raft_entry_sink_free(struct raft_entry_sink *sink)
{
    struct raft *r;
    struct raft_allocator a;
    if (sink == NULL)
        return;
    r = sink->r;
    raft_sink_fini(sink);
    raft_free_output(r);
    raft_mem_free(r, sink, sizeof *sink);
    a = r->a;
    a.free(a.ctx, r);
}

/* ------------------------------------------------------------ PRNG */

/* splitmix64: tiny, deterministic, good enough for election jitter. */
uint64_t raft_prng_next(struct raft *r)
{
    uint64_t z = (r->prng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------ names */

const char *raft_strerror(int rc)
{
    switch (rc) {
    case RAFT_OK: return "ok";
    case RAFT_FORWARDED: return "forwarded to the leader";
    case RAFT_ENOMEM: return "out of memory";
    case RAFT_EINVAL: return "invalid argument";
    case RAFT_ENOTLEADER: return "not the leader";
    case RAFT_ETRANSFER: return "leadership transfer in progress";
    case RAFT_ECONFPENDING: return "a configuration change is pending";
    case RAFT_EBADCONF: return "invalid configuration change";
    case RAFT_ECOMPACTED: return "log compacted";
    case RAFT_EUNAVAILABLE: return "log index unavailable";
    case RAFT_ESNAPOUTOFDATE: return "snapshot out of date";
    case RAFT_ECORRUPT: return "corrupt data";
    case RAFT_EBUSY: return "ready not advanced";
    case RAFT_ENOTMEMBER: return "not a member of the group";
    case RAFT_ESTORAGE: return "storage error";
    case RAFT_EDROPPED: return "request dropped";
    default: return "unknown error";
    }
}

const char *raft_msg_type_name(int type)
{
    static const char *const names[] = {
        "?", "APPEND", "APPEND_RESP", "VOTE", "VOTE_RESP", "PREVOTE", "PREVOTE_RESP",
        "HEARTBEAT", "HEARTBEAT_RESP", "SNAPSHOT", "TIMEOUT_NOW", "PROPOSE",
        "READ_INDEX", "READ_INDEX_RESP", "TRANSFER_LEADER", "DURABLE",
    };
    if (type < 1 || type > RAFT_MSG_TYPE_MAX)
        return "?";
    return names[type];
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "?";
    }
}
