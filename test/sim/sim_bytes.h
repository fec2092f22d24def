/*
 * sim_bytes.h — little-endian 64-bit fields in the simulator's payloads (proposal
 * ids, applied state, conf-change contexts), one copy for every sim module.
 */
#ifndef SIM_BYTES_H
#define SIM_BYTES_H

#include <stdint.h>

static inline void sim_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t sim_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif
