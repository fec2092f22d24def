/*
 * bench_core.c — cost of replicating entries through the Raft core (src/raft).
 *
 * An in-process 3-replica cluster: memory storage, messages handed directly from the
 * sender's Ready to the receiver's raft_step() (zero copy, no faults, no ticks).
 * After an election, the leader replicates K entries:
 *   mode "single": 1 entry per raft_propose(), then the cluster runs until every
 *                  replica has applied it (a full round trip per entry);
 *   mode "batch":  64 entries per raft_propose_batch(), same.
 *
 * Every call into the library during the measured phase goes through a noinline
 * wrapper: bench_sm_* (the Raft state machine: propose/step/has_ready/ready/advance)
 * or bench_st_* (memory-storage writes done by the caller from the Ready: append,
 * hard state, conf state).  `valgrind --tool=callgrind --toggle-collect='bench_sm_*'`
 * therefore counts the core's instructions only (harness excluded); adding
 * --toggle-collect='bench_st_*' includes the storage writes.  See ./run.
 *
 * Usage: bench_core single|batch K [payload_bytes]
 * Prints: mode, entries, wall ns per entry (whole harness, -O2).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft.h"

#define N 3
#define BATCH 64

struct node {
    struct raft *r;
    struct raft_memory_storage *ms;
    raft_index applied;
};

struct cluster {
    struct node n[N];
    uint64_t messages;
};

/* ---- the measured entry points (never inlined: callgrind toggles on them) ---- */
#define NOINLINE __attribute__((noinline))
NOINLINE int bench_sm_propose(struct raft *r, const void *d, size_t len);
NOINLINE int bench_sm_propose_batch(struct raft *r, const struct raft_buf *b, size_t n);
NOINLINE int bench_sm_step(struct raft *r, const struct raft_message *m);
NOINLINE bool bench_sm_has_ready(struct raft *r);
NOINLINE int bench_sm_ready(struct raft *r, struct raft_ready *rd);
NOINLINE int bench_sm_advance(struct raft *r, const struct raft_ready *rd);
NOINLINE int bench_st_append(struct raft_memory_storage *ms, const struct raft_entry *e, size_t n);
NOINLINE int bench_st_hard_state(struct raft_memory_storage *ms, const struct raft_hard_state *hs);
NOINLINE int bench_st_conf_state(struct raft_memory_storage *ms, const struct raft_conf_state *cs);

int bench_sm_propose(struct raft *r, const void *d, size_t len) { return raft_propose(r, d, len, NULL, NULL); }
int bench_sm_propose_batch(struct raft *r, const struct raft_buf *b, size_t n) { return raft_propose_batch(r, b, n, NULL, NULL); }
int bench_sm_step(struct raft *r, const struct raft_message *m) { return raft_step(r, m); }
bool bench_sm_has_ready(struct raft *r) { return raft_has_ready(r); }
int bench_sm_ready(struct raft *r, struct raft_ready *rd) { return raft_ready(r, rd); }
int bench_sm_advance(struct raft *r, const struct raft_ready *rd) { return raft_advance(r, rd); }
int bench_st_append(struct raft_memory_storage *ms, const struct raft_entry *e, size_t n) { return raft_memory_storage_append(ms, e, n); }
int bench_st_hard_state(struct raft_memory_storage *ms, const struct raft_hard_state *hs) { return raft_memory_storage_set_hard_state(ms, hs); }
int bench_st_conf_state(struct raft_memory_storage *ms, const struct raft_conf_state *cs) { return raft_memory_storage_set_conf_state(ms, cs); }

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_core: %s: %s\n", what, raft_strerror(rc));
    exit(1);
}

/* Runs Ready cycles on every replica until the cluster is quiet.  Messages go
 * straight from the sender's Ready (valid until its advance) into raft_step of the
 * receiver, which is never inside a Ready at that moment. */
static void pump(struct cluster *c)
{
    for (;;) {
        int busy = 0;
        for (int i = 0; i < N; i++) {
            struct node *nd = &c->n[i];
            while (bench_sm_has_ready(nd->r)) {
                struct raft_ready rd;
                int rc;
                busy = 1;
                if ((rc = bench_sm_ready(nd->r, &rd)) != RAFT_OK)
                    die("raft_ready", rc);
                if (rd.snapshot != NULL)
                    die("unexpected snapshot", RAFT_EINVAL);
                if (rd.n_entries && (rc = bench_st_append(nd->ms, rd.entries, rd.n_entries)) != RAFT_OK)
                    die("append", rc);
                if (rd.has_hard_state && (rc = bench_st_hard_state(nd->ms, &rd.hard_state)) != RAFT_OK)
                    die("hard state", rc);
                for (size_t k = 0; k < rd.n_messages; k++) {
                    const struct raft_message *m = &rd.messages[k];
                    c->messages++;
                    if (m->to >= 1 && m->to <= N)
                        bench_sm_step(c->n[m->to - 1].r, m);
                }
                if (rd.n_committed)
                    nd->applied = rd.committed[rd.n_committed - 1].index;
                if (rd.conf_changed && (rc = bench_st_conf_state(nd->ms, &rd.conf_state)) != RAFT_OK)
                    die("conf state", rc);
                if ((rc = bench_sm_advance(nd->r, &rd)) != RAFT_OK)
                    die("raft_advance", rc);
            }
        }
        if (!busy)
            return;
    }
}

static void setup(struct cluster *c)
{
    raft_id voters[N] = {1, 2, 3};
    struct raft_conf_state cs = {.voters = voters, .n_voters = N};
    for (int i = 0; i < N; i++) {
        struct node *nd = &c->n[i];
        nd->ms = raft_memory_storage_new(NULL);
        if (nd->ms == NULL || raft_memory_storage_set_conf_state(nd->ms, &cs) != RAFT_OK)
            die("memory storage", RAFT_ENOMEM);
        struct raft_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.id = (raft_id)(i + 1);
        cfg.election_tick = 10;
        cfg.heartbeat_tick = 1;
        cfg.seed = (uint64_t)i + 1;
        raft_memory_storage_interface(nd->ms, &cfg.storage);
        int rc;
        nd->r = raft_new(&cfg, NULL, &rc);
        if (nd->r == NULL)
            die("raft_new", rc);
    }
    int rc = raft_campaign(c->n[0].r);
    if (rc != RAFT_OK)
        die("raft_campaign", rc);
    pump(c);
    if (raft_get_role(c->n[0].r) != RAFT_LEADER)
        die("replica 1 did not become leader", RAFT_EINVAL);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_core single|batch K [payload_bytes]\n");
        return 2;
    }
    int batch = strcmp(argv[1], "batch") == 0;
    long k = atol(argv[2]);
    size_t payload = argc > 3 ? (size_t)atol(argv[3]) : 32;
    if (k <= 0 || payload == 0 || payload > 4096) {
        fprintf(stderr, "bench_core: bad arguments\n");
        return 2;
    }
    struct cluster c;
    memset(&c, 0, sizeof c);
    setup(&c);
    unsigned char *data = malloc(payload * BATCH);
    struct raft_buf bufs[BATCH];
    memset(data, 0xab, payload * BATCH);
    for (int i = 0; i < BATCH; i++) {
        bufs[i].data = data + (size_t)i * payload;
        bufs[i].len = payload;
    }
    raft_index start = c.n[0].applied;
    long done = 0;
    uint64_t msgs0 = c.messages;
    double t0 = now_ns();
    while (done < k) {
        int rc;
        if (batch) {
            long b = k - done < BATCH ? k - done : BATCH;
            rc = bench_sm_propose_batch(c.n[0].r, bufs, (size_t)b);
            done += b;
        } else {
            rc = bench_sm_propose(c.n[0].r, data, payload);
            done++;
        }
        if (rc != RAFT_OK)
            die("propose", rc);
        pump(&c);
    }
    double t1 = now_ns();
    for (int i = 0; i < N; i++)
        if (c.n[i].applied != start + (raft_index)k) {
            fprintf(stderr, "bench_core: replica %d applied %llu, expected %llu\n", i + 1,
                    (unsigned long long)c.n[i].applied, (unsigned long long)(start + (raft_index)k));
            return 1;
        }
    printf("mode=%s entries=%ld payload=%zu messages=%llu wall_ns_per_entry=%.1f\n",
           batch ? "batch64" : "single", k, payload,
           (unsigned long long)(c.messages - msgs0), (t1 - t0) / (double)k);
    for (int i = 0; i < N; i++) {
        raft_free(c.n[i].r);
        raft_memory_storage_free(c.n[i].ms);
    }
    free(data);
    return 0;
}
