/* sim_log.c — shadow log of a replica's persisted entries (see sim_log.h). */
#include "sim_log.h"

#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

void sim_log_init(struct sim_log *l)
{
    memset(l, 0, sizeof *l);
}

void sim_log_free(struct sim_log *l)
{
    free(l->e);
    memset(l, 0, sizeof *l);
}

bool sim_log_term(const struct sim_log *l, raft_index i, raft_term *out)
{
    if (i == l->snap_index) {
        *out = l->snap_term;
        return true;
    }
    if (i < l->snap_index || i > sim_log_last(l))
        return false;
    *out = l->e[i - l->snap_index - 1].term;
    return true;
}

const struct sim_log_ent *sim_log_get(const struct sim_log *l, raft_index i)
{
    if (i <= l->snap_index || i > sim_log_last(l))
        return NULL;
    return &l->e[i - l->snap_index - 1];
}

int sim_log_append(struct sim_log *l, raft_index index, raft_term term, uint64_t hash,
                   uint8_t type)
{
    if (index <= l->snap_index)
        return 0;
    if (index > sim_log_last(l) + 1)
        return -1;
    l->n = (size_t)(index - l->snap_index - 1);
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct sim_log_ent *ne = realloc(l->e, nc * sizeof *ne);
        if (ne == NULL)
            abort();
        l->e = ne;
        l->cap = nc;
    }
    l->e[l->n].term = term;
    l->e[l->n].hash = hash;
    l->e[l->n].type = type;
    l->n++;
    return 0;
}

bool sim_log_has_conf_change(const struct sim_log *l, raft_index lo, raft_index hi)
{
    for (raft_index i = lo + 1; i <= hi; i++) {
        const struct sim_log_ent *e = sim_log_get(l, i);
        if (e != NULL && e->type == RAFT_ENTRY_CONF_CHANGE)
            return true;
    }
    return false;
}

void sim_log_compact(struct sim_log *l, raft_index index)
{
    if (index <= l->snap_index || index > sim_log_last(l))
        return;
    size_t drop = (size_t)(index - l->snap_index);
    l->snap_term = l->e[drop - 1].term;
    memmove(l->e, l->e + drop, (l->n - drop) * sizeof *l->e);
    l->n -= drop;
    l->snap_index = index;
}

void sim_log_install(struct sim_log *l, raft_index index, raft_term term)
{
    l->n = 0;
    l->snap_index = index;
    l->snap_term = term;
}

uint64_t sim_entry_hash(uint8_t type, const void *data, size_t len)
{
    /* FNV-1a over the bytes, then mixed with the type and length. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return sim_mix64(sim_mix64(h, type), len);
}

uint64_t sim_chain_next(uint64_t chain, raft_index index, raft_term term, uint64_t hash)
{
    return sim_mix64(sim_mix64(sim_mix64(chain, index), term), hash);
}
