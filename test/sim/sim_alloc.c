/* sim_alloc.c — counting allocator over malloc (see sim_alloc.h). */
#include "sim_alloc.h"

#include <stdlib.h>
#include <string.h>

/* Each block carries its size in a 16-byte header (keeps max_align_t alignment). */
#define HDR 16u

static void *sa_malloc(void *ctx, size_t n)
{
    struct sim_alloc *sa = ctx;
    unsigned char *p = malloc(n + HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof n);
    sa->bytes += n;
    sa->blocks++;
    sa->calls++;
    if (sa->bytes > sa->peak)
        sa->peak = sa->bytes;
    return p + HDR;
}

static void sa_free(void *ctx, void *q)
{
    struct sim_alloc *sa = ctx;
    size_t n;
    if (q == NULL)
        return;
    unsigned char *p = (unsigned char *)q - HDR;
    memcpy(&n, p, sizeof n);
    sa->bytes -= n;
    sa->blocks--;
    free(p);
}

static void *sa_realloc(void *ctx, void *q, size_t n)
{
    struct sim_alloc *sa = ctx;
    size_t old;
    if (q == NULL)
        return sa_malloc(ctx, n);
    unsigned char *p = (unsigned char *)q - HDR;
    memcpy(&old, p, sizeof old);
    unsigned char *np = realloc(p, n + HDR);
    if (np == NULL)
        return NULL;
    memcpy(np, &n, sizeof n);
    sa->bytes = sa->bytes - old + n;
    sa->calls++;
    if (sa->bytes > sa->peak)
        sa->peak = sa->bytes;
    return np + HDR;
}

void sim_alloc_init(struct sim_alloc *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->a.ctx = sa;
    sa->a.malloc = sa_malloc;
    sa->a.realloc = sa_realloc;
    sa->a.free = sa_free;
}
