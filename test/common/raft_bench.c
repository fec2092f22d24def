/*
 * raft_bench.c — see raft_bench.h.
 */
#include "raft_bench.h"

#include "raft.h"

#include <stdlib.h>
#include <string.h>

#define BENCH_MAX_NODES 7

struct bench {
    int n;
    struct raft_memory_storage *ms[BENCH_MAX_NODES];
    struct raft *r[BENCH_MAX_NODES];
    raft_index applied[BENCH_MAX_NODES];
    struct raft_bench_result res;
};

static int pump(struct bench *b)
{
    bool again = true;
    int guard = 0;
    while (again && guard++ < 100000) {
        again = false;
        for (int i = 0; i < b->n; i++) {
            struct raft_ready rd;
            if (!raft_has_ready(b->r[i]))
                continue;
            again = true;
            if (raft_ready(b->r[i], &rd) != 0)
                return -1;
            b->res.readies++;
            if (rd.snapshot != NULL)
                raft_memory_storage_apply_snapshot(b->ms[i], rd.snapshot);
            if (rd.n_entries > 0 &&
                raft_memory_storage_append(b->ms[i], rd.entries, rd.n_entries) != 0)
                return -1;
            if (rd.has_hard_state)
                raft_memory_storage_set_hard_state(b->ms[i], &rd.hard_state);
            for (size_t k = 0; k < rd.n_messages; k++) {
                raft_id to = rd.messages[k].to;
                if (to >= 1 && to <= (raft_id)b->n) {
                    raft_step(b->r[to - 1], &rd.messages[k]);
                    b->res.messages++;
                }
            }
            if (rd.n_committed > 0) {
                b->res.applied += rd.n_committed;
                b->applied[i] = rd.committed[rd.n_committed - 1].index;
            }
            if (rd.conf_changed)
                raft_memory_storage_set_conf_state(b->ms[i], &rd.conf_state);
            if (raft_advance(b->r[i], &rd) != 0)
                return -1;
        }
    }
    return 0;
}

int raft_bench_run(int nodes, int batch, int total, size_t size,
                   struct raft_bench_result *out)
{
    struct bench b;
    raft_id ids[BENCH_MAX_NODES];
    struct raft_conf_state cs;
    struct raft_buf *bufs;
    char *data;
    int rc = -1;
    if (nodes < 1 || nodes > BENCH_MAX_NODES || batch < 1 || size == 0)
        return -1;
    memset(&b, 0, sizeof b);
    b.n = nodes;
    for (int i = 0; i < nodes; i++)
        ids[i] = (raft_id)(i + 1);
    cs.voters = ids;
    cs.n_voters = (uint32_t)nodes;
    cs.learners = NULL;
    cs.n_learners = 0;
    for (int i = 0; i < nodes; i++) {
        struct raft_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.id = ids[i];
        cfg.election_tick = 10;
        cfg.heartbeat_tick = 1;
        cfg.seed = (uint64_t)i + 1;
        b.ms[i] = raft_memory_storage_new(NULL);
        raft_memory_storage_bootstrap(b.ms[i], &cs);
        raft_memory_storage_interface(b.ms[i], &cfg.storage);
        cfg.applied = 1;
        b.r[i] = raft_new(&cfg, NULL, NULL);
        if (b.r[i] == NULL)
            goto out;
    }
    bufs = malloc(sizeof *bufs * (size_t)batch);
    data = malloc(size * (size_t)batch);
    if (bufs == NULL || data == NULL) {
        free(bufs);
        free(data);
        goto out;
    }
    memset(data, 'x', size * (size_t)batch);
    for (int k = 0; k < batch; k++) {
        bufs[k].data = data + size * (size_t)k;
        bufs[k].len = size;
    }
    raft_campaign(b.r[0]);
    if (pump(&b) != 0 || raft_get_role(b.r[0]) != RAFT_LEADER)
        goto out_free;
    for (int done = 0; done < total; done += batch) {
        raft_index last;
        int n = total - done < batch ? total - done : batch;
        int prc = n == 1 ? raft_propose(b.r[0], data, size, &last, NULL)
                         : raft_propose_batch(b.r[0], bufs, (size_t)n, &last, NULL);
        if (prc != 0)
            goto out_free;
        last += (raft_index)n - 1;
        if (pump(&b) != 0)
            goto out_free;
        for (int i = 0; i < nodes; i++)
            if (b.applied[i] < last)
                goto out_free;
        b.res.entries += (uint64_t)n;
    }
    /* one heartbeat round so followers learn the final commit, then idle */
    raft_tick(b.r[0]);
    pump(&b);
    for (int i = 0; i < nodes; i++) {
        size_t m;
        raft_release_memory(b.r[i]);
        m = raft_memory_usage(b.r[i]);
        if (m > b.res.quiesced_bytes)
            b.res.quiesced_bytes = m;
    }
    rc = 0;
out_free:
    free(bufs);
    free(data);
out:
    for (int i = 0; i < nodes; i++) {
        raft_free(b.r[i]);
        raft_memory_storage_free(b.ms[i]);
    }
    if (out != NULL)
        *out = b.res;
    return rc;
}
