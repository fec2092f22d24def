/*
 * sim_rng.h — the simulator's only source of randomness: splitmix64.
 *
 * Every random choice of a run (schedule, faults, workload, replica seeds) comes from
 * one of these, seeded from the run's seed, so a seed replays exactly.  No rand(),
 * no clock.
 */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct sim_rng {
    uint64_t s;
};

static inline void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
    r->s = seed;
}

static inline uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); 0 when n == 0.  (Modulo bias is irrelevant here.) */
static inline uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
    return n ? sim_rng_next(r) % n : 0;
}

/* Uniform in [lo, hi] (inclusive). */
static inline uint64_t sim_rng_range(struct sim_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + sim_rng_below(r, hi - lo + 1);
}

/* True with probability ppm / 1,000,000. */
static inline bool sim_rng_ppm(struct sim_rng *r, uint32_t ppm)
{
    return sim_rng_below(r, 1000000) < ppm;
}

/* A 64-bit mixer (for hashing entries and chaining state-machine digests). */
static inline uint64_t sim_mix64(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 29);
}

#endif /* SIM_RNG_H */
