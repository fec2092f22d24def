/*
 * fuzz_input.h — reading a libFuzzer input as a stream of small decisions, for
 * the fuzz targets of test/fuzz: bytes run out as zeros, and 64-bit values come
 * mostly near an interesting value, sometimes at the extremes.
 */
#ifndef MULTIRAFT_FUZZ_INPUT_H
#define MULTIRAFT_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t u8(struct in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint64_t u64v(struct in *in, uint64_t near)
{
    /* Mostly values near the interesting range, sometimes extremes. */
    uint8_t sel = u8(in);
    switch (sel >> 5) {
    case 0:
        return sel & 31;
    case 1:
        return near + (sel & 7);
    case 2:
        return near > (uint64_t)(sel & 7) ? near - (sel & 7) : 0;
    case 3:
        return UINT64_MAX - (sel & 3);
    case 4:
        return (uint64_t)1 << 63;
    default: {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = (v << 8) | u8(in);
        return v;
    }
    }
}

/* Terms and indexes near UINT64_MAX make the core's "+ 1" wrap (docs/sim-findings.md
 * #3); until the core refuses them, forged terms/indexes stay below 2^62 unless this
 * is 1. */
#ifndef FUZZ_HUGE_VALUES
#define FUZZ_HUGE_VALUES 0
#endif

static inline uint64_t termv(struct in *in, uint64_t near)
{
    uint64_t t = u64v(in, near);
    return FUZZ_HUGE_VALUES ? t : t & ((UINT64_C(1) << 62) - 1);
}
#define idxv termv

#endif /* MULTIRAFT_FUZZ_INPUT_H */
