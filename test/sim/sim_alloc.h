/*
 * sim_alloc.h — a counting allocator handed to the core (struct raft_allocator), so
 * every run can check that the core released all its memory (raft_free) and that
 * nothing leaked across crashes/restarts.
 */
#ifndef SIM_ALLOC_H
#define SIM_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct sim_alloc {
    struct raft_allocator a;  /* ctx points back to this struct */
    size_t bytes;             /* currently allocated */
    size_t blocks;
    size_t peak;
    uint64_t calls;
};

void sim_alloc_init(struct sim_alloc *sa);

#endif /* SIM_ALLOC_H */
