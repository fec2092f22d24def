/*
 * raft_bench.h — a lean in-process cluster loop for measuring the cost of the raft
 * core per replicated entry (e.g. under callgrind).  Messages are stepped into their
 * destination directly from the sender's Ready (no copies, no loss), storage is the
 * in-memory storage, and applying an entry only counts it; so nearly every
 * instruction spent is the core's (plus memory storage and malloc).
 */
#ifndef MULTIRAFT_RAFT_BENCH_H
#define MULTIRAFT_RAFT_BENCH_H

#include <stddef.h>
#include <stdint.h>

struct raft_bench_result {
    uint64_t entries;      /* entries proposed and applied on every node */
    uint64_t readies;      /* Ready cycles, all nodes */
    uint64_t messages;     /* messages delivered */
    uint64_t applied;      /* entries applied, summed over nodes */
    size_t quiesced_bytes; /* raft_memory_usage() per node once idle (max over nodes,
                              after raft_release_memory) */
};

/* Runs a cluster of `nodes` voters: elects node 1, then proposes `total` entries of
 * `size` bytes in batches of `batch` (raft_propose for batch 1, raft_propose_batch
 * otherwise), waiting for each batch to be applied everywhere.  Returns 0 on success. */
int raft_bench_run(int nodes, int batch, int total, size_t size,
                   struct raft_bench_result *out);

#endif /* MULTIRAFT_RAFT_BENCH_H */
