/*
 * canonical_fixture.c — the same measurement as bench_core.c on canonical/raft 0.15
 * (Debian's libraft-dev), for comparison: 3 servers in its in-memory fixture
 * (raft_fixture: stub I/O, simulated disk and network), K entries with 1 entry per
 * raft_apply() and with 64, each time stepping the fixture until every server has
 * applied it.  The measured entry points are bench_sm_apply (raft_apply) and
 * bench_sm_step (raft_fixture_step): callgrind --toggle-collect='bench_sm_*' counts
 * canonical's core together with its fixture I/O stub (in-memory disk + network),
 * which is the "core + storage" column of bench_core.
 *
 * Build: see ./run (only if /usr/include/raft/fixture.h exists).
 * Usage: canonical_fixture single|batch K [payload_bytes]
 */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 3
#define BATCH 64
#define NOINLINE __attribute__((noinline))

NOINLINE int bench_sm_apply(struct raft *r, struct raft_apply *req, struct raft_buffer *b,
                            unsigned n);
NOINLINE void bench_sm_step(struct raft_fixture *f);

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)status;
    (void)result;
    free(req);
}

int bench_sm_apply(struct raft *r, struct raft_apply *req, struct raft_buffer *b, unsigned n)
{
    return raft_apply(r, req, b, n, apply_cb);
}

void bench_sm_step(struct raft_fixture *f)
{
    raft_fixture_step(f);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    (void)fsm;
    (void)buf;
    *result = NULL;
    return 0;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int batch = strcmp(argv[1], "batch") == 0;
    long k = atol(argv[2]);
    size_t payload = argc > 3 ? (size_t)atol(argv[3]) : 32;
    static struct raft_fixture f;
    static struct raft_fsm fsms[N];
    struct raft_configuration conf;
    if (raft_fixture_initialize(&f) != 0)
        return 1;
    for (int i = 0; i < N; i++) {
        memset(&fsms[i], 0, sizeof fsms[i]);
        fsms[i].version = 1;
        fsms[i].apply = fsm_apply;
        if (raft_fixture_grow(&f, &fsms[i]) != 0)
            return 1;
    }
    if (raft_fixture_configuration(&f, N, &conf) != 0 || raft_fixture_bootstrap(&f, &conf) != 0 ||
        raft_fixture_start(&f) != 0)
        return 1;
    raft_configuration_close(&conf);
    for (unsigned i = 0; i < N; i++) {
        /* No snapshots (bench_core does not take any either). */
        raft_set_snapshot_threshold(raft_fixture_get(&f, i), 1u << 30);
        raft_fixture_set_network_latency(&f, i, 1);
        raft_fixture_set_disk_latency(&f, i, 1);
    }
    raft_fixture_elect(&f, 0);
    struct raft *leader = raft_fixture_get(&f, 0);
    long done = 0;
    double t0 = now_ns();
    while (done < k) {
        unsigned n = batch ? (unsigned)(k - done < BATCH ? k - done : BATCH) : 1;
        struct raft_buffer bufs[BATCH];
        for (unsigned i = 0; i < n; i++) {
            bufs[i].len = payload;
            bufs[i].base = raft_malloc(payload);
            memset(bufs[i].base, 0xab, payload);
        }
        struct raft_apply *req = malloc(sizeof *req);
        if (bench_sm_apply(leader, req, bufs, n) != 0) {
            fprintf(stderr, "raft_apply failed\n");
            return 1;
        }
        done += n;
        raft_index target = raft_last_index(leader);
        for (;;) {
            unsigned ok = 0;
            for (unsigned i = 0; i < N; i++)
                ok += raft_last_applied(raft_fixture_get(&f, i)) >= target;
            if (ok == N)
                break;
            bench_sm_step(&f);
        }
    }
    double t1 = now_ns();
    printf("canonical mode=%s entries=%ld payload=%zu wall_ns_per_entry=%.1f\n",
           batch ? "batch64" : "single", k, payload, (t1 - t0) / (double)k);
    raft_fixture_close(&f);
    return 0;
}
