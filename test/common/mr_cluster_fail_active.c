/*
 * mr_cluster_fail_active.c — an allocator for the tests of a failed wake: it fails,
 * once when armed, the growth of one node's set of awake groups (out of memory in
 * mr_group_wake), and allocates everything else as malloc does.
 */
#include <stdlib.h>

#include "mr_cluster.h"
#include "mr_internal.h"

static void *fa_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void fa_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void *fa_realloc(void *ctx, void *p, size_t size)
{
    struct mrc_fail_active *f = ctx;
    struct mr_node *n = f->c != NULL && mrc_is_up(f->c, f->node) ? mrc_node(f->c, f->node) : NULL;
    if (f->armed && n != NULL && p != NULL && p == (void *)n->active) {
        f->armed = false;
        f->failures++;
        return NULL;
    }
    return realloc(p, size);
}

void mrc_fail_active_allocator(struct mrc_fail_active *f, mr_node_id node,
                               struct raft_allocator *out)
{
    f->c = NULL;
    f->node = node;
    f->armed = false;
    f->failures = 0;
    out->ctx = f;
    out->malloc = fa_malloc;
    out->realloc = fa_realloc;
    out->free = fa_free;
}
