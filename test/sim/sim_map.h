/*
 * sim_map.h — a small open-addressing hash map from a pair of u64 to a pair of u64,
 * used by the checkers ((index, term) → entry digest; (voter, term) → candidate;
 * term → leader ...).  No deletion (checker state only grows during one run).
 */
#ifndef SIM_MAP_H
#define SIM_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_map_slot {
    uint64_t k1, k2;
    uint64_t v1, v2;
    bool used;
};

struct sim_map {
    struct sim_map_slot *s;
    size_t cap, n;  /* cap is a power of two */
};

void sim_map_init(struct sim_map *m);
void sim_map_free(struct sim_map *m);
/* Slot holding key (k1, k2), or NULL. */
struct sim_map_slot *sim_map_get(const struct sim_map *m, uint64_t k1, uint64_t k2);
/* Slot for key (k1, k2); *created tells whether it was just inserted (values 0). */
struct sim_map_slot *sim_map_put(struct sim_map *m, uint64_t k1, uint64_t k2, bool *created);

#endif /* SIM_MAP_H */
