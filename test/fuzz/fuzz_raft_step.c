/*
 * fuzz_raft_step.c — libFuzzer target for the Raft core (src/raft).
 *
 * The input bytes are decoded into a sequence of operations on a 3-replica cluster
 * (ids 1, 2, 3; memory storage; the caller's side of the Ready/Advance contract done
 * exactly as raft.h says): ticks, deliveries/drops/duplicates of the messages the
 * replicas sent, FORGED messages with arbitrary fields, entries and snapshots,
 * proposals, batches, conf changes, transfers, reads, campaigns, compactions, crashes
 * and restarts, snapshot/unreachable reports.
 *
 * Forged messages may legitimately break cluster-wide safety (a forged leader can
 * make replicas disagree), so only properties that hold for ANY input are checked,
 * per replica:
 *  - no crash, no sanitizer report, no API error other than documented refusals;
 *  - term never decreases; commit never decreases and never exceeds the last index;
 *  - the persisted vote never changes within a term (one vote per term);
 *  - rd.committed continues exactly at applied + 1, never beyond the commit index;
 *  - the core's applied index equals the caller's; nothing stays unstable after a
 *    Ready cycle (core last index == storage last index);
 *  - raft_has_ready() settles (no endless Ready loop);
 *  - all memory is returned after raft_free (counting allocator).
 * A broken invariant calls abort(), which libFuzzer reports as a crash.
 *
 * Build and run: test/fuzz/run [seconds].
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_NODES 3
#define MAX_QUEUE 64
#define MAX_ENTS 4

/* ------------------------------------------------------------------ allocator */

struct counting {
    struct raft_allocator a;
    size_t bytes, blocks;
};

static void *c_malloc(void *ctx, size_t n)
{
    struct counting *c = ctx;
    size_t *p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    c->bytes += n;
    c->blocks++;
    return (char *)p + 16;
}

static void c_free(void *ctx, void *q)
{
    struct counting *c = ctx;
    if (q == NULL)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    c->bytes -= p[0];
    c->blocks--;
    free(p);
}

static void *c_realloc(void *ctx, void *q, size_t n)
{
    struct counting *c = ctx;
    if (q == NULL)
        return c_malloc(ctx, n);
    size_t *p = (size_t *)((char *)q - 16);
    size_t old = p[0];
    size_t *np = realloc(p, n + 16);
    if (np == NULL)
        return NULL;
    np[0] = n;
    c->bytes = c->bytes - old + n;
    return (char *)np + 16;
}

/* ------------------------------------------------------------------ cluster */

struct qmsg {
    struct raft_message m;
    struct raft_entry ents[MAX_ENTS];
    unsigned char *blob;     /* entry data + snapshot data + conf ids */
    struct raft_snapshot snap;
};

struct node {
    raft_id id;
    struct raft *r;
    struct raft_memory_storage *ms;
    struct raft_hard_state hs;     /* persisted */
    raft_index applied;            /* persisted with the conf state */
    raft_id conf[16];
    uint32_t nv, nl;
    /* observations of the current incarnation */
    raft_term term;
    raft_index commit;
};

struct cluster {
    struct counting alloc;
    struct node nodes[N_NODES];
    struct qmsg q[MAX_QUEUE];
    size_t nq;
    uint64_t seed;
    bool debug;   /* FUZZ_DEBUG=1: print each operation (to minimise/understand) */
};

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_raft_step: invariant broken: " __VA_ARGS__);   \
            fprintf(stderr, "\n");                                               \
            abort();                                                             \
        }                                                                        \
    } while (0)

static void q_free(struct qmsg *q)
{
    free(q->blob);
    q->blob = NULL;
}

/* Deep copy of a message into the queue (drops it when the queue is full). */
static void q_push(struct cluster *c, const struct raft_message *m)
{
    if (c->nq == MAX_QUEUE)
        return;
    struct qmsg *q = &c->q[c->nq];
    memset(q, 0, sizeof *q);
    q->m = *m;
    size_t n_ent = m->n_entries < MAX_ENTS ? m->n_entries : MAX_ENTS;
    if (m->entries == NULL)
        n_ent = 0;
    size_t sz = 1;
    for (size_t i = 0; i < n_ent; i++)
        sz += m->entries[i].len;
    if (m->snapshot)
        sz += m->snapshot->len +
              sizeof(raft_id) * (m->snapshot->conf.n_voters + m->snapshot->conf.n_learners);
    q->blob = malloc(sz + sizeof(raft_id));
    if (q->blob == NULL)
        abort();
    unsigned char *b = q->blob;
    if (m->snapshot) {
        /* ids first: keeps them aligned */
        raft_id *ids = (raft_id *)(void *)b;
        uint32_t nv = m->snapshot->conf.n_voters, nl = m->snapshot->conf.n_learners;
        if (nv)
            memcpy(ids, m->snapshot->conf.voters, nv * sizeof(raft_id));
        if (nl)
            memcpy(ids + nv, m->snapshot->conf.learners, nl * sizeof(raft_id));
        q->snap = *m->snapshot;
        q->snap.conf.voters = ids;
        q->snap.conf.learners = ids + nv;
        b += (nv + nl) * sizeof(raft_id);
        if (m->snapshot->len)
            memcpy(b, m->snapshot->data, m->snapshot->len);
        q->snap.data = b;
        b += m->snapshot->len;
        q->m.snapshot = &q->snap;
    }
    for (size_t i = 0; i < n_ent; i++) {
        q->ents[i] = m->entries[i];
        if (m->entries[i].len)
            memcpy(b, m->entries[i].data, m->entries[i].len);
        q->ents[i].data = m->entries[i].len ? b : NULL;
        b += m->entries[i].len;
    }
    q->m.entries = n_ent ? q->ents : NULL;
    q->m.n_entries = (uint32_t)n_ent;
    c->nq++;
}

static void q_remove(struct cluster *c, size_t i)
{
    q_free(&c->q[i]);
    /* keep order (FIFO-ish) so the fuzzer controls reordering explicitly */
    memmove(&c->q[i], &c->q[i + 1], (c->nq - i - 1) * sizeof c->q[0]);
    c->nq--;
    /* entries/snapshot point into the struct itself: re-point the moved ones */
    for (size_t k = i; k < c->nq; k++) {
        if (c->q[k].m.entries != NULL)
            c->q[k].m.entries = c->q[k].ents;
        if (c->q[k].m.snapshot != NULL)
            c->q[k].m.snapshot = &c->q[k].snap;
    }
}

static void observe(struct node *n)
{
    if (n->r == NULL)
        return;
    raft_term t = raft_get_term(n->r);
    raft_index cm = raft_get_commit(n->r);
    raft_index last = raft_get_last_index(n->r);
    CHECK(t >= n->term, "replica %llu term went down %llu -> %llu", (unsigned long long)n->id,
          (unsigned long long)n->term, (unsigned long long)t);
    CHECK(cm >= n->commit, "replica %llu commit went down %llu -> %llu",
          (unsigned long long)n->id, (unsigned long long)n->commit, (unsigned long long)cm);
    CHECK(cm <= last, "replica %llu commit %llu > last index %llu", (unsigned long long)n->id,
          (unsigned long long)cm, (unsigned long long)last);
    n->term = t;
    n->commit = cm;
}

static void process_ready(struct cluster *c, struct node *n)
{
    for (int rounds = 0; n->r != NULL && raft_has_ready(n->r); rounds++) {
        CHECK(rounds < 1000, "raft_has_ready() never settles");
        struct raft_ready rd;
        int rc = raft_ready(n->r, &rd);
        CHECK(rc == RAFT_OK, "raft_ready: %s", raft_strerror(rc));
        if (rd.snapshot) {
            rc = raft_memory_storage_apply_snapshot(n->ms, rd.snapshot);
            CHECK(rc == RAFT_OK, "storage refused rd.snapshot %llu: %s",
                  (unsigned long long)rd.snapshot->index, raft_strerror(rc));
            CHECK(rd.snapshot->index >= n->applied, "snapshot %llu rolls back applied %llu",
                  (unsigned long long)rd.snapshot->index, (unsigned long long)n->applied);
            n->applied = rd.snapshot->index;
        }
        if (rd.n_entries) {
            rc = raft_memory_storage_append(n->ms, rd.entries, rd.n_entries);
            CHECK(rc == RAFT_OK, "storage refused rd.entries: %s", raft_strerror(rc));
        }
        if (rd.has_hard_state) {
            CHECK(rd.hard_state.term >= n->hs.term, "replica %llu persisted term %llu after %llu",
                  (unsigned long long)n->id, (unsigned long long)rd.hard_state.term,
                  (unsigned long long)n->hs.term);
            CHECK(!(rd.hard_state.term == n->hs.term && n->hs.vote != RAFT_NONE &&
                    rd.hard_state.vote != n->hs.vote),
                  "replica %llu changed its vote in term %llu (%llu -> %llu)",
                  (unsigned long long)n->id, (unsigned long long)n->hs.term,
                  (unsigned long long)n->hs.vote, (unsigned long long)rd.hard_state.vote);
            rc = raft_memory_storage_set_hard_state(n->ms, &rd.hard_state);
            CHECK(rc == RAFT_OK, "storage refused hard state");
            n->hs = rd.hard_state;
        }
        for (size_t i = 0; i < rd.n_messages; i++) {
            const struct raft_message *m = &rd.messages[i];
            CHECK(m->from == n->id, "message with from %llu sent by %llu",
                  (unsigned long long)m->from, (unsigned long long)n->id);
            CHECK(m->type >= 1 && m->type <= RAFT_MSG_TYPE_MAX, "bad message type %u", m->type);
            if (m->type == RAFT_MSG_VOTE_RESP && !m->reject)
                CHECK(n->hs.term == m->term && n->hs.vote == m->to,
                      "vote granted before it was persisted");
            q_push(c, m);
        }
        for (size_t i = 0; i < rd.n_committed; i++) {
            const struct raft_entry *e = &rd.committed[i];
            CHECK(e->index == n->applied + 1, "rd.committed hands out %llu after applied %llu",
                  (unsigned long long)e->index, (unsigned long long)n->applied);
            CHECK(e->index <= n->hs.commit, "applying %llu beyond persisted commit %llu",
                  (unsigned long long)e->index, (unsigned long long)n->hs.commit);
            n->applied = e->index;
        }
        if (rd.conf_changed) {
            rc = raft_memory_storage_set_conf_state(n->ms, &rd.conf_state);
            CHECK(rc == RAFT_OK, "storage refused conf state");
        }
        rc = raft_advance(n->r, &rd);
        CHECK(rc == RAFT_OK, "raft_advance: %s", raft_strerror(rc));
    }
    if (n->r != NULL) {
        CHECK(raft_get_applied(n->r) == n->applied, "core applied %llu, caller %llu",
              (unsigned long long)raft_get_applied(n->r), (unsigned long long)n->applied);
        struct raft_storage st;
        raft_memory_storage_interface(n->ms, &st);
        CHECK(raft_get_last_index(n->r) == st.last_index(st.user),
              "core last index %llu, storage %llu after a full Ready cycle",
              (unsigned long long)raft_get_last_index(n->r),
              (unsigned long long)st.last_index(st.user));
    }
    observe(n);
}

static bool start(struct cluster *c, struct node *n, bool pre_vote, bool check_quorum)
{
    struct raft_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = n->id;
    cfg.election_tick = 4;
    cfg.heartbeat_tick = 1;
    raft_memory_storage_interface(n->ms, &cfg.storage);
    cfg.applied = n->applied;
    cfg.max_size_per_msg = 64;
    cfg.max_inflight_msgs = 4;
    cfg.seed = c->seed++;
    cfg.pre_vote = pre_vote;
    cfg.check_quorum = check_quorum;
    int rc = RAFT_OK;
    n->r = raft_new(&cfg, &c->alloc.a, &rc);
    if (n->r == NULL) {
        CHECK(rc == RAFT_ENOMEM || rc == RAFT_ECORRUPT || rc == RAFT_EINVAL,
              "raft_new failed: %s", raft_strerror(rc));
        return false;
    }
    n->term = raft_get_term(n->r);
    n->commit = raft_get_commit(n->r);
    return true;
}

static bool acceptable(int rc)
{
    /* Documented refusals; anything else (ENOMEM, ESTORAGE, EBUSY...) is a bug here. */
    return rc >= 0 || rc == RAFT_EINVAL || rc == RAFT_ENOTLEADER || rc == RAFT_ETRANSFER ||
           rc == RAFT_ECONFPENDING || rc == RAFT_EBADCONF || rc == RAFT_ENOTMEMBER ||
           rc == RAFT_EDROPPED;
}

/* A forged message built from the input. */
static void forge(struct in *in, struct node *dst, unsigned char *buf, size_t bufsz,
                  struct raft_entry *ents, struct raft_snapshot *snap, raft_id *ids,
                  struct raft_message *m)
{
    raft_term t = dst->r ? raft_get_term(dst->r) : 0;
    raft_index last = dst->r ? raft_get_last_index(dst->r) : 0;
    memset(m, 0, sizeof *m);
    m->type = (uint8_t)(u8(in) % (RAFT_MSG_TYPE_MAX + 2));
    m->from = u8(in) % 6;
    m->to = (u8(in) & 7) ? dst->id : u8(in) % 6;
    m->term = termv(in, t);
    m->log_term = termv(in, t);
    m->index = idxv(in, last);
    m->commit = idxv(in, last);
    m->reject = u8(in) & 1;
    m->reject_hint = idxv(in, last);
    m->context = u8(in);
    size_t used = 0;
    uint32_t ne = u8(in) % (MAX_ENTS + 1);
    for (uint32_t i = 0; i < ne; i++) {
        struct raft_entry *e = &ents[i];
        e->term = termv(in, t);
        e->index = (u8(in) & 3) ? m->index + 1 + i : idxv(in, last);
        e->type = (u8(in) & 7) == 0 ? RAFT_ENTRY_CONF_CHANGE : RAFT_ENTRY_NORMAL;
        if (u8(in) & 1)
            e->type = u8(in);
        size_t len = u8(in) % 20;
        if (e->type == RAFT_ENTRY_CONF_CHANGE && (u8(in) & 1)) {
            struct raft_conf_change cc = {.type = (uint8_t)(1 + u8(in) % 3),
                                          .replica = u8(in) % 6};
            size_t need = raft_conf_change_encoded_size(&cc);
            if (used + need <= bufsz) {
                len = raft_conf_change_encode(&cc, buf + used);
            } else {
                len = 0;
            }
        } else {
            if (used + len > bufsz)
                len = 0;
            for (size_t k = 0; k < len; k++)
                buf[used + k] = u8(in);
        }
        e->data = len ? buf + used : NULL;
        e->len = (uint32_t)len;
        used += len;
    }
    m->entries = ne ? ents : NULL;
    m->n_entries = ne;
    if (m->type == RAFT_MSG_SNAPSHOT || (u8(in) & 15) == 0) {
        memset(snap, 0, sizeof *snap);
        snap->index = idxv(in, last);
        snap->term = termv(in, t);
        uint32_t nv = u8(in) % 5, nl = u8(in) % 3;
        for (uint32_t i = 0; i < nv + nl; i++)
            ids[i] = u8(in) % 6;
        snap->conf.voters = ids;
        snap->conf.n_voters = nv;
        snap->conf.learners = ids + nv;
        snap->conf.n_learners = nl;
        size_t len = u8(in) % 16;
        if (used + len > bufsz)
            len = 0;
        for (size_t k = 0; k < len; k++)
            buf[used + k] = u8(in);
        snap->data = len ? buf + used : NULL;
        snap->len = len;
        m->snapshot = (u8(in) & 7) ? snap : NULL;
        if (m->type == RAFT_MSG_SNAPSHOT && (u8(in) & 7))
            m->snapshot = snap;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = {data, size};
    struct cluster *c = calloc(1, sizeof *c);
    if (c == NULL)
        return 0;
    c->alloc.a = (struct raft_allocator){&c->alloc, c_malloc, c_realloc, c_free};
    c->debug = getenv("FUZZ_DEBUG") != NULL;
    uint8_t flags = u8(&in);
    bool pre_vote = flags & 1, check_quorum = flags & 2;
    c->seed = flags;
    raft_id voters[N_NODES] = {1, 2, 3};
    struct raft_conf_state cs = {.voters = voters, .n_voters = N_NODES};
    for (int i = 0; i < N_NODES; i++) {
        struct node *n = &c->nodes[i];
        n->id = (raft_id)(i + 1);
        n->ms = raft_memory_storage_new(&c->alloc.a);
        if (n->ms == NULL)
            abort();
        raft_memory_storage_set_conf_state(n->ms, &cs);
        if (flags & 4) {
            /* Bootstrap from a snapshot at index 1 (see docs/sim-findings.md #1). */
            struct raft_snapshot s = {.index = 1, .term = 1, .conf = cs};
            struct raft_hard_state hs = {.term = 1, .commit = 1};
            raft_memory_storage_apply_snapshot(n->ms, &s);
            raft_memory_storage_set_hard_state(n->ms, &hs);
            n->hs = hs;
            n->applied = 1;
        }
        start(c, n, pre_vote, check_quorum);
    }

    unsigned char buf[256];
    struct raft_entry ents[MAX_ENTS];
    struct raft_snapshot snap;
    raft_id ids[8];
    for (int ops = 0; in.n > 0 && ops < 2000; ops++) {
        uint8_t op = u8(&in);
        struct node *n = &c->nodes[(op >> 4) % N_NODES];
        int rc = RAFT_OK;
        if (c->debug)
            fprintf(stderr, "op %u on n%llu (term %llu, hs %llu/%llu/%llu)\n", op & 15,
                    (unsigned long long)n->id, n->r ? (unsigned long long)raft_get_term(n->r) : 0ull,
                    (unsigned long long)n->hs.term, (unsigned long long)n->hs.vote,
                    (unsigned long long)n->hs.commit);
        switch (op & 15) {
        case 0: /* tick, possibly several times */
        case 1: {
            unsigned k = 1 + (u8(&in) & 15);
            for (unsigned i = 0; i < k && n->r; i++) {
                rc = raft_tick(n->r);
                CHECK(rc == RAFT_OK, "raft_tick: %s", raft_strerror(rc));
                process_ready(c, n);
            }
            break;
        }
        case 2: /* deliver the i-th queued message */
        case 3: {
            if (c->nq == 0)
                break;
            size_t i = u8(&in) % c->nq;
            struct qmsg *q = &c->q[i];
            struct node *d = (q->m.to >= 1 && q->m.to <= N_NODES) ? &c->nodes[q->m.to - 1] : NULL;
            if (d && d->r) {
                rc = raft_step(d->r, &q->m);
                CHECK(acceptable(rc), "raft_step: %s", raft_strerror(rc));
            }
            q_remove(c, i);
            if (d)
                process_ready(c, d);
            break;
        }
        case 4: { /* deliver everything queued (in order), a bounded number of rounds */
            for (int round = 0; round < 8 && c->nq > 0; round++) {
                size_t k = c->nq;
                for (size_t j = 0; j < k && c->nq > 0; j++) {
                    struct qmsg *q = &c->q[0];
                    struct node *d = (q->m.to >= 1 && q->m.to <= N_NODES) ? &c->nodes[q->m.to - 1] : NULL;
                    if (d && d->r) {
                        rc = raft_step(d->r, &q->m);
                        CHECK(acceptable(rc), "raft_step: %s", raft_strerror(rc));
                    }
                    q_remove(c, 0);
                    if (d)
                        process_ready(c, d);
                }
            }
            break;
        }
        case 5: /* drop or duplicate a queued message */
            if (c->nq > 0) {
                size_t i = u8(&in) % c->nq;
                if (u8(&in) & 1) {
                    q_remove(c, i);
                } else {
                    struct raft_message m = c->q[i].m;
                    q_push(c, &m);
                }
            }
            break;
        case 6: { /* forged message */
            struct raft_message m;
            forge(&in, n, buf, sizeof buf, ents, &snap, ids, &m);
            if (c->debug)
                fprintf(stderr, "  forged %s %llu->%llu term %llu log_term %llu index %llu "
                        "commit %llu n=%u snap=%llu/%llu\n", raft_msg_type_name(m.type),
                        (unsigned long long)m.from, (unsigned long long)m.to,
                        (unsigned long long)m.term, (unsigned long long)m.log_term,
                        (unsigned long long)m.index, (unsigned long long)m.commit, m.n_entries,
                        m.snapshot ? (unsigned long long)m.snapshot->index : 0ull,
                        m.snapshot ? (unsigned long long)m.snapshot->term : 0ull);
            if (n->r) {
                rc = raft_step(n->r, &m);
                /* A peer's message, forged or not, never makes raft_step fail with
                 * a storage error (docs/sim-findings.md, findings 6 and 18). */
                CHECK(acceptable(rc), "raft_step(forged): %s", raft_strerror(rc));
                process_ready(c, n);
            }
            break;
        }
        case 7: { /* propose */
            if (!n->r)
                break;
            size_t len = u8(&in) % 24;
            unsigned char d[24];
            for (size_t k = 0; k < len; k++)
                d[k] = u8(&in);
            rc = raft_propose(n->r, d, len, NULL, NULL);
            CHECK(acceptable(rc), "raft_propose: %s", raft_strerror(rc));
            process_ready(c, n);
            break;
        }
        case 8: { /* batch */
            if (!n->r)
                break;
            struct raft_buf b[8];
            unsigned char d[8][4];
            size_t k = u8(&in) % 9;
            for (size_t i = 0; i < k; i++) {
                d[i][0] = u8(&in);
                b[i].data = d[i];
                b[i].len = (u8(&in) & 3) ? 4 : 0;
            }
            rc = raft_propose_batch(n->r, b, k, NULL, NULL);
            CHECK(acceptable(rc), "raft_propose_batch: %s", raft_strerror(rc));
            process_ready(c, n);
            break;
        }
        case 9: { /* conf change */
            if (!n->r)
                break;
            struct raft_conf_change cc = {.type = u8(&in) % 5, .replica = u8(&in) % 7};
            rc = raft_propose_conf_change(n->r, &cc, NULL, NULL);
            CHECK(acceptable(rc), "raft_propose_conf_change: %s", raft_strerror(rc));
            process_ready(c, n);
            break;
        }
        case 10: /* transfer / read / campaign */
            if (!n->r)
                break;
            switch (u8(&in) % 3) {
            case 0:
                rc = raft_transfer_leadership(n->r, u8(&in) % 6);
                break;
            case 1:
                rc = raft_read_index(n->r, u8(&in));
                break;
            default:
                rc = raft_campaign(n->r);
                break;
            }
            CHECK(acceptable(rc), "transfer/read/campaign: %s", raft_strerror(rc));
            process_ready(c, n);
            break;
        case 11: { /* compaction: snapshot at applied, compact some */
            if (n->applied == 0)
                break;
            {
                struct raft_conf_state now;
                if (n->r)
                    raft_get_conf_state(n->r, &now);
                else
                    now = cs;
                unsigned char img[4] = {1, 2, 3, 4};
                rc = raft_memory_storage_create_snapshot(n->ms, n->applied, &now, img, 4);
                if (rc == RAFT_OK) {
                    raft_index keep = u8(&in) % 4;
                    if (n->applied > keep)
                        raft_memory_storage_compact(n->ms, n->applied - keep);
                }
            }
            break;
        }
        case 12: /* crash / restart */
            if (n->r) {
                raft_free(n->r);
                n->r = NULL;
                n->term = n->commit = 0;
            } else {
                start(c, n, pre_vote, check_quorum);
                process_ready(c, n);
            }
            break;
        case 13: /* transport reports */
            if (n->r) {
                raft_id peer = u8(&in) % 5;
                if (u8(&in) & 1)
                    raft_report_unreachable(n->r, peer);
                else
                    raft_report_snapshot(n->r, peer, u8(&in) & 1);
                process_ready(c, n);
            }
            break;
        case 14: /* read-only API must be harmless */
            if (n->r) {
                struct raft_status st;
                raft_get_status(n->r, &st);
                for (size_t i = 0; i < raft_progress_count(n->r); i++) {
                    struct raft_progress_info pi;
                    (void)raft_progress_at(n->r, i, &pi);
                }
                (void)raft_is_fully_replicated(n->r);
                (void)raft_memory_usage(n->r);
                raft_release_memory(n->r);
            }
            break;
        default: /* everyone ticks once */
            for (int i = 0; i < N_NODES; i++)
                if (c->nodes[i].r) {
                    rc = raft_tick(c->nodes[i].r);
                    CHECK(rc == RAFT_OK, "raft_tick: %s", raft_strerror(rc));
                    process_ready(c, &c->nodes[i]);
                }
            break;
        }
    }

    for (size_t i = 0; i < c->nq; i++)
        q_free(&c->q[i]);
    for (int i = 0; i < N_NODES; i++) {
        if (c->nodes[i].r)
            raft_free(c->nodes[i].r);
        raft_memory_storage_free(c->nodes[i].ms);
    }
    CHECK(c->alloc.bytes == 0 && c->alloc.blocks == 0, "leak: %zu bytes in %zu blocks",
          c->alloc.bytes, c->alloc.blocks);
    free(c);
    return 0;
}
