/* sim_map.c — open-addressing (linear probing) u64-pair map, see sim_map.h. */
#include "sim_map.h"

#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

static size_t slot_of(uint64_t k1, uint64_t k2, size_t cap)
{
    return (size_t)(sim_mix64(sim_mix64(0x51ed27ULL, k1), k2) & (cap - 1));
}

void sim_map_init(struct sim_map *m)
{
    memset(m, 0, sizeof *m);
}

void sim_map_free(struct sim_map *m)
{
    free(m->s);
    memset(m, 0, sizeof *m);
}

struct sim_map_slot *sim_map_get(const struct sim_map *m, uint64_t k1, uint64_t k2)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = slot_of(k1, k2, m->cap);; i = (i + 1) & (m->cap - 1)) {
        struct sim_map_slot *s = &m->s[i];
        if (!s->used)
            return NULL;
        if (s->k1 == k1 && s->k2 == k2)
            return s;
    }
}

static void grow(struct sim_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 256;
    struct sim_map_slot *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        abort();
    for (size_t i = 0; i < m->cap; i++) {
        struct sim_map_slot *o = &m->s[i];
        if (!o->used)
            continue;
        size_t j = slot_of(o->k1, o->k2, ncap);
        while (ns[j].used)
            j = (j + 1) & (ncap - 1);
        ns[j] = *o;
    }
    free(m->s);
    m->s = ns;
    m->cap = ncap;
}

struct sim_map_slot *sim_map_put(struct sim_map *m, uint64_t k1, uint64_t k2, bool *created)
{
    struct sim_map_slot *s = sim_map_get(m, k1, k2);
    if (s != NULL) {
        *created = false;
        return s;
    }
    if ((m->n + 1) * 2 > m->cap)
        grow(m);
    size_t i = slot_of(k1, k2, m->cap);
    while (m->s[i].used)
        i = (i + 1) & (m->cap - 1);
    s = &m->s[i];
    s->used = true;
    s->k1 = k1;
    s->k2 = k2;
    s->v1 = s->v2 = 0;
    m->n++;
    *created = true;
    return s;
}
