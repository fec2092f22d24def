/*
 * mr_util.c — memory helpers of the multi-raft layer: the caller's allocator,
 * growable arrays, the batch arena (freed at mr_advance) and the PRNG.
 */
#include "mr_internal.h"

void *mr_hash_malloc(const struct raft_allocator *a, size_t n)
{
    return a->malloc(a->ctx, n);
}

void mr_hash_free(const struct raft_allocator *a, void *p)
{
    if (p != NULL)
        a->free(a->ctx, p);
}

int mr_core_step(struct mr_node *n, int rc)
{
    if (rc == RAFT_ENOMEM)
        n->ready_incomplete = true;
    return rc;
}

void *mr_alloc(struct mr_node *n, size_t size)
{
    return n->a.malloc(n->a.ctx, size == 0 ? 1 : size);
}

void *mr_realloc(struct mr_node *n, void *p, size_t size)
{
    return n->a.realloc(n->a.ctx, p, size == 0 ? 1 : size);
}

void mr_free(struct mr_node *n, void *p)
{
    if (p != NULL)
        n->a.free(n->a.ctx, p);
}

void *mr_vec_push(struct mr_node *n, struct mr_vec *v, size_t elem, const void *item)
{
    unsigned char *slot;
    if (v->len == v->cap) {
        size_t cap = v->cap == 0 ? 4 : v->cap * 2;
        void *p = mr_realloc(n, v->data, cap * elem);
        if (p == NULL)
            return NULL;
        v->data = p;
        v->cap = cap;
    }
    slot = (unsigned char *)v->data + v->len * elem;
    if (item != NULL)
        memcpy(slot, item, elem);
    else
        memset(slot, 0, elem);
    v->len++;
    return slot;
}

void mr_vec_free(struct mr_node *n, struct mr_vec *v)
{
    mr_free(n, v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

void *mr_arena_alloc(struct mr_node *n, size_t size)
{
    void *p = mr_alloc(n, size);
    if (p == NULL)
        return NULL;
    if (mr_vec_push(n, &n->arena, sizeof p, &p) == NULL) {
        mr_free(n, p);
        return NULL;
    }
    return p;
}

void mr_arena_reset(struct mr_node *n)
{
    void **ps = n->arena.data;
    for (size_t i = 0; i < n->arena.len; i++)
        mr_free(n, ps[i]);
    n->arena.len = 0;
}

/* splitmix64: tiny, seedable, good enough for timeouts and staggering. */
uint64_t mr_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t mr_rand(struct mr_node *n)
{
    return mr_mix64(n->prng += 0x9E3779B97F4A7C15ull);
}
