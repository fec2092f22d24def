/*
 * fuzz_wire.c — libFuzzer target for the receiving side of the node-to-node wire
 * format (src/pg/wire.c: protobuf-c Batch frames -> struct mr_envelope), without a
 * server: test/fuzz/wire_stubs.c stands in for palloc & co.
 *
 * Input: the first byte chooses the decoder (bit 0 clear: wire_decode_frame, as
 * every received frame; set: wire_decode_batch, as a batch reassembled from
 * chunks, which must come from node PEER); the rest is the frame.  This node is
 * node ME of cluster CLUSTER.  Checked for any input:
 *  - no crash, no sanitizer report, nothing that would raise an ERROR in the
 *    server (wire.h: "No function here throws on bad input"; the stubs abort);
 *  - a rejection has a known reason and a message;
 *  - an accepted frame is addressed to ME from another, valid node (PEER for a
 *    batch), and an accepted chunk is in range (its bytes are read whole);
 *  - an accepted envelope has only what wire.h promises: message types in range,
 *    replica ids and group ids valid, entries only on APPEND/PROPOSE (APPEND's
 *    consecutive after msg.index, none from a later term), a snapshot exactly on
 *    SNAPSHOT, data pointers NULL exactly when empty (all bytes read);
 *  - round trip: wire_encode() of the decoded envelope, decoded again the same
 *    way (through its chunks if it no longer fits one frame), gives the same
 *    envelope, field by field and byte by byte, and the same wire_describe();
 *  - everything is palloc'd: the stubs' "context" is emptied after each input.
 * A broken invariant calls abort(), which libFuzzer reports as a crash.
 *
 * Before the first input (LLVMFuzzerInitialize), a self-check: the envelopes
 * that make the seed corpus round-trip, a Batch cut in chunks reassembles, a
 * frame of 50,000 small legitimate messages (~500 kB) decodes within the decode
 * budget, and the hostile body ("2a 00" repeated: an empty Message per 2 bytes)
 * is refused by the budget (WIRE_TOO_LARGE) by both decoders.
 *
 * FUZZ_WIRE_SEEDS=DIR: instead of fuzzing, write the seed corpus (those
 * envelopes, wire_encode() output behind the first byte) into DIR and exit.
 *
 * FUZZ_DEBUG=1: print each input's verdict and description.
 * Build and run: test/fuzz/run [seconds].
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "wire.h"
#include "wire_stubs.h"

/* port.h sends these to libpgport, which the fuzz target does not link. */
#undef fprintf
#undef snprintf
#undef vfprintf

#define CLUSTER 7
#define ME 2
#define PEER 1

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_wire: %s:%d: check failed: %s: ", __FILE__,    \
                    __LINE__, #cond);                                            \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

static bool debug;

/* ------------------------------------------------------------------ checks */

/* Reads every byte (for the sanitizers) and returns a checksum. */
static uint64_t read_all(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static void check_bytes(const void *p, size_t n, const char *what)
{
    CHECK((p == NULL) == (n == 0), "%s: data %p with %zu bytes", what, p, n);
    (void)read_all(p, n);
}

static void check_envelope(const struct mr_envelope *env, bool batch)
{
    CHECK(env->to_node == ME, "to_node %u", env->to_node);
    CHECK(env->from_node != 0 && env->from_node != ME && env->from_node <= INT32_MAX,
          "from_node %u", env->from_node);
    CHECK(!batch || env->from_node == PEER, "batch from_node %u", env->from_node);
    CHECK(env->n_early_messages == 0, "n_early_messages %zu", env->n_early_messages);
    CHECK(env->n_messages <= MR_WIRE_MAX_ITEMS && env->n_heartbeats <= MR_WIRE_MAX_ITEMS &&
          env->n_heartbeat_resps <= MR_WIRE_MAX_ITEMS, "%zu/%zu/%zu items",
          env->n_messages, env->n_heartbeats, env->n_heartbeat_resps);
    CHECK((env->messages == NULL) == (env->n_messages == 0), "messages array");
    CHECK((env->heartbeats == NULL) == (env->n_heartbeats == 0), "heartbeats array");
    CHECK((env->heartbeat_resps == NULL) == (env->n_heartbeat_resps == 0), "responses array");
    for (size_t i = 0; i < env->n_messages; i++) {
        const struct mr_message *mm = &env->messages[i];
        const struct raft_message *m = &mm->msg;
        bool carries = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_PROPOSE;
        CHECK(m->type >= 1 && m->type <= RAFT_MSG_TYPE_MAX, "type %u", m->type);
        CHECK(m->from != RAFT_NONE && m->to != RAFT_NONE, "replica ids");
        CHECK(mm->group >= 1 && mm->group <= (uint64_t)INT64_MAX, "group %llu",
              (unsigned long long)mm->group);
        CHECK(m->reject <= 1, "reject %u", m->reject);
        CHECK(carries || m->n_entries == 0, "%s with %u entries",
              raft_msg_type_name(m->type), m->n_entries);
        CHECK((m->entries == NULL) == (m->n_entries == 0), "entries array");
        CHECK(m->n_entries <= MR_WIRE_MAX_ENTRIES, "%u entries", m->n_entries);
        for (uint32_t e = 0; e < m->n_entries; e++) {
            const struct raft_entry *ent = &m->entries[e];
            CHECK(ent->type <= RAFT_ENTRY_CONF_CHANGE, "entry type %u", ent->type);
            CHECK(m->type != RAFT_MSG_APPEND ||
                  (ent->index == m->index + 1 + e && ent->term <= m->term),
                  "APPEND entry %u at %llu@%llu after %llu in term %llu", e,
                  (unsigned long long)ent->index, (unsigned long long)ent->term,
                  (unsigned long long)m->index, (unsigned long long)m->term);
            check_bytes(ent->data, ent->len, "entry");
        }
        CHECK((m->snapshot != NULL) == (m->type == RAFT_MSG_SNAPSHOT), "snapshot on %s",
              raft_msg_type_name(m->type));
        if (m->snapshot != NULL) {
            const struct raft_snapshot *s = m->snapshot;
            CHECK(s->index != 0, "snapshot at index 0");
            CHECK(s->conf.n_voters <= MR_WIRE_MAX_CONF && s->conf.n_learners <= MR_WIRE_MAX_CONF,
                  "conf %u/%u", s->conf.n_voters, s->conf.n_learners);
            for (uint32_t v = 0; v < s->conf.n_voters; v++)
                CHECK(s->conf.voters[v] != RAFT_NONE, "voter 0");
            for (uint32_t v = 0; v < s->conf.n_learners; v++)
                CHECK(s->conf.learners[v] != RAFT_NONE, "learner 0");
            check_bytes(s->data, s->len, "snapshot");
        }
    }
    for (int r = 0; r < 2; r++) {
        const struct mr_heartbeat *hb = r ? env->heartbeat_resps : env->heartbeats;
        size_t n = r ? env->n_heartbeat_resps : env->n_heartbeats;
        for (size_t i = 0; i < n; i++) {
            CHECK(hb[i].from != RAFT_NONE && hb[i].to != RAFT_NONE, "heartbeat replica ids");
            CHECK(hb[i].group >= 1 && hb[i].group <= (uint64_t)INT64_MAX, "heartbeat group");
            CHECK(hb[i].reject <= 1, "heartbeat reject %u", hb[i].reject);
        }
    }
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool same_ids(const raft_id *a, uint32_t na, const raft_id *b, uint32_t nb)
{
    return same_bytes(a, na * sizeof(raft_id), b, nb * sizeof(raft_id));
}

static bool same_heartbeats(const struct mr_heartbeat *a, const struct mr_heartbeat *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].group != b[i].group || a[i].from != b[i].from || a[i].to != b[i].to ||
            a[i].term != b[i].term || a[i].commit != b[i].commit ||
            a[i].context != b[i].context || a[i].flags != b[i].flags ||
            a[i].reject != b[i].reject || a[i].incarnation != b[i].incarnation)
            return false;
    return true;
}

/* Field by field: wire_describe() leaves some out (incarnations, data bytes). */
static bool same_envelope(const struct mr_envelope *a, const struct mr_envelope *b)
{
    if (a->from_node != b->from_node || a->to_node != b->to_node ||
        a->n_messages != b->n_messages || a->n_early_messages != b->n_early_messages ||
        a->n_heartbeats != b->n_heartbeats || a->n_heartbeat_resps != b->n_heartbeat_resps)
        return false;
    for (size_t i = 0; i < a->n_messages; i++) {
        const struct mr_message *x = &a->messages[i], *y = &b->messages[i];
        const struct raft_message *p = &x->msg, *q = &y->msg;
        if (x->group != y->group || x->incarnation != y->incarnation ||
            p->type != q->type || p->reject != q->reject || p->n_entries != q->n_entries ||
            p->from != q->from || p->to != q->to || p->term != q->term ||
            p->log_term != q->log_term || p->index != q->index || p->commit != q->commit ||
            p->reject_hint != q->reject_hint || p->context != q->context ||
            (p->snapshot == NULL) != (q->snapshot == NULL))
            return false;
        for (uint32_t e = 0; e < p->n_entries; e++) {
            const struct raft_entry *u = &p->entries[e], *v = &q->entries[e];
            if (u->term != v->term || u->index != v->index || u->type != v->type ||
                !same_bytes(u->data, u->len, v->data, v->len))
                return false;
        }
        if (p->snapshot != NULL) {
            const struct raft_snapshot *s = p->snapshot, *t = q->snapshot;
            if (s->index != t->index || s->term != t->term ||
                !same_ids(s->conf.voters, s->conf.n_voters, t->conf.voters, t->conf.n_voters) ||
                !same_ids(s->conf.learners, s->conf.n_learners, t->conf.learners,
                          t->conf.n_learners) ||
                !same_bytes(s->data, s->len, t->data, t->len))
                return false;
        }
    }
    return same_heartbeats(a->heartbeats, b->heartbeats, a->n_heartbeats) &&
           same_heartbeats(a->heartbeat_resps, b->heartbeat_resps, a->n_heartbeat_resps);
}

/*
 * Decodes frames (as wire_encode() made them) the way the transport does: one
 * frame through wire_decode_frame (or, batch, wire_decode_batch), chunk frames
 * through wire_decode_frame each, then their reassembly through
 * wire_decode_batch.  Returns the result; *env the envelope.
 */
static WireResult decode_frames(const WireFrames *wf, bool batch, struct mr_envelope *env,
                                char **err)
{
    WireFrame f;
    WireResult r;
    char *whole;
    size_t off = 0;

    if (wf->n == 1 && batch)
        return wire_decode_batch(wf->data[0], wf->len[0], CLUSTER, ME, PEER, env, err);
    if (wf->n == 1) {
        r = wire_decode_frame(wf->data[0], wf->len[0], CLUSTER, ME, &f, err);
        CHECK(r != WIRE_OK || !f.is_chunk, "a whole Batch decoded as a chunk");
        *env = f.env;
        return r;
    }
    whole = palloc(wf->batch_len);
    for (int i = 0; i < wf->n; i++) {
        r = wire_decode_frame(wf->data[i], wf->len[i], CLUSTER, ME, &f, err);
        if (r != WIRE_OK)
            return r;
        CHECK(f.is_chunk && f.chunk_index == (uint32_t)i && f.chunk_count == (uint32_t)wf->n &&
              f.total_len == wf->batch_len && off + f.chunk_len <= wf->batch_len,
              "chunk %d of %d: %u of %u, %zu bytes of %llu", i, wf->n, f.chunk_index,
              f.chunk_count, f.chunk_len, (unsigned long long)f.total_len);
        memcpy(whole + off, f.chunk_data, f.chunk_len);
        off += f.chunk_len;
    }
    CHECK(off == wf->batch_len, "chunks hold %zu of %zu bytes", off, wf->batch_len);
    return wire_decode_batch(whole, off, CLUSTER, ME, PEER, env, err);
}

/* wire_encode(env), decoded again: the same envelope, the same description. */
static void check_round_trip(const struct mr_envelope *env, bool batch, size_t len)
{
    WireFrames wf;
    struct mr_envelope again;
    char *err = NULL;
    WireResult r;

    if (!wire_encode(env, CLUSTER, 42, &wf, &err)) {
        /* Re-encoding may grow a little (canonical form: packed ids, a snapshot's
         * empty conf), so only an input near the limit may not fit again. */
        CHECK(len + 1024 * 1024 > wire_max_batch(), "re-encoding %zu bytes refused: %s", len,
              err);
        return;
    }
    r = decode_frames(&wf, batch, &again, &err);
    CHECK(r == WIRE_OK, "re-encoded envelope (%d frames, %zu bytes) refused (%d): %s", wf.n,
          wf.batch_len, (int)r, err);
    check_envelope(&again, batch);
    CHECK(same_envelope(env, &again), "round trip changed the envelope:\n  %s\n  %s",
          wire_describe(env), wire_describe(&again));
    CHECK(strcmp(wire_describe(env), wire_describe(&again)) == 0,
          "round trip changed the description:\n  %s\n  %s", wire_describe(env),
          wire_describe(&again));
}

static const char *result_name(WireResult r)
{
    switch (r) {
    case WIRE_OK: return "OK";
    case WIRE_TOO_LARGE: return "TOO_LARGE";
    case WIRE_UNDECODABLE: return "UNDECODABLE";
    case WIRE_BAD_VERSION: return "BAD_VERSION";
    case WIRE_BAD_CLUSTER: return "BAD_CLUSTER";
    case WIRE_BAD_NODE: return "BAD_NODE";
    case WIRE_BAD_FIELD: return "BAD_FIELD";
    }
    return NULL;
}

/* Decodes one input; returns the result (the caller resets the stubs' context). */
static WireResult run_one(const uint8_t *data, size_t size)
{
    bool batch = data[0] & 1;
    const uint8_t *frame = data + 1;
    size_t len = size - 1;
    struct mr_envelope env;
    WireFrame f;
    char *err = NULL;
    WireResult r;

    if (batch) {
        r = wire_decode_batch(frame, len, CLUSTER, ME, PEER, &env, &err);
    } else {
        r = wire_decode_frame(frame, len, CLUSTER, ME, &f, &err);
        env = f.env;
    }
    CHECK(result_name(r) != NULL, "unknown result %d", (int)r);
    if (r != WIRE_OK) {
        CHECK(err != NULL && err[0] != '\0', "%s without a message", result_name(r));
        if (debug)
            fprintf(stderr, "fuzz_wire: %s %zu bytes: %s: %s\n", batch ? "batch" : "frame",
                    len, result_name(r), err);
        return r;
    }
    if (!batch && f.is_chunk) {
        CHECK(f.to_node == ME && f.from_node != 0 && f.from_node != ME &&
              f.from_node <= INT32_MAX, "chunk from %u to %u", f.from_node, f.to_node);
        CHECK(f.chunk_count >= 2 && f.chunk_index < f.chunk_count && f.total_len > 0 &&
              f.total_len <= wire_max_batch() && f.chunk_len > 0 &&
              f.chunk_len <= f.total_len && f.chunk_data != NULL,
              "chunk %u of %u, %zu of %llu bytes", f.chunk_index, f.chunk_count, f.chunk_len,
              (unsigned long long)f.total_len);
        (void)read_all(f.chunk_data, f.chunk_len);
        if (debug)
            fprintf(stderr, "fuzz_wire: frame %zu bytes: chunk %u of %u, %zu of %llu bytes\n",
                    len, f.chunk_index, f.chunk_count, f.chunk_len,
                    (unsigned long long)f.total_len);
        return r;
    }
    if (!batch)
        CHECK(f.from_node == env.from_node && f.to_node == env.to_node, "frame header");
    check_envelope(&env, batch);
    if (debug)
        fprintf(stderr, "fuzz_wire: %s %zu bytes: OK: %s\n", batch ? "batch" : "frame", len,
                wire_describe(&env));
    check_round_trip(&env, batch, len);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    run_one(data, size);
    wire_stubs_reset();
    return 0;
}

/* ------------------------------------------------- samples: seeds, self-check */

static const raft_id ids[] = {1, 2, 3, 4};
static const struct raft_entry entries[] = {
    {.term = 3, .index = 5, .data = "abc", .len = 3, .type = RAFT_ENTRY_NORMAL},
    {.term = 3, .index = 6, .data = NULL, .len = 0, .type = RAFT_ENTRY_NORMAL},
    {.term = 3, .index = 7, .data = "\001\002\000\000\000\000\000\000\000\004", .len = 10,
     .type = RAFT_ENTRY_CONF_CHANGE},
};
static const struct raft_snapshot snapshot = {
    .index = 9, .term = 2, .data = "snapshot", .len = 8,
    .conf = {.voters = ids, .n_voters = 3, .learners = ids + 3, .n_learners = 1},
};
static const struct mr_message messages[] = {
    {.group = 5, .incarnation = 1,
     .msg = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3, .log_term = 2,
             .index = 4, .commit = 4, .entries = entries, .n_entries = 3}},
    {.group = 6, .msg = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 3,
                         .snapshot = &snapshot}},
    {.group = 7, .incarnation = 77,
     .msg = {.type = RAFT_MSG_APPEND_RESP, .from = 1, .to = 2, .term = 3, .index = 8,
             .reject = 1, .reject_hint = 6, .context = 12}},
    {.group = 8, .msg = {.type = RAFT_MSG_VOTE, .from = 3, .to = 2, .term = 4, .log_term = 3,
                         .index = 9}},
    {.group = (uint64_t)INT64_MAX, .msg = {.type = RAFT_MSG_PROPOSE, .from = 1, .to = 2,
                                           .entries = entries, .n_entries = 1}},
    {.group = 9, .msg = {.type = RAFT_MSG_DURABLE, .from = 1, .to = 2, .term = 3, .index = 9}},
};
static const struct mr_heartbeat heartbeats[] = {
    {.group = 5, .from = 1, .to = 2, .term = 3, .commit = 7, .context = 1, .incarnation = 1},
    {.group = 6, .from = 1, .to = 2, .term = 3, .commit = 9, .flags = MR_HB_QUIESCE},
};
static const struct mr_heartbeat heartbeat_resps[] = {
    {.group = 7, .from = 2, .to = 1, .term = 3, .context = 1, .reject = 1,
     .flags = MR_HB_REMOVED | MR_HB_REPLICA_REMOVED},
};

/* Encodes env from PEER to ME; a Batch larger than a chunk gives several frames. */
static WireFrames encode(const struct mr_message *m, size_t n_m, const struct mr_heartbeat *hb,
                         size_t n_hb, const struct mr_heartbeat *resp, size_t n_resp)
{
    struct mr_envelope env = {
        .from_node = PEER, .to_node = ME, .messages = m, .n_messages = n_m,
        .heartbeats = hb, .n_heartbeats = n_hb, .heartbeat_resps = resp,
        .n_heartbeat_resps = n_resp,
    };
    WireFrames wf;
    char *err = NULL;

    CHECK(wire_encode(&env, CLUSTER, 1, &wf, &err), "wire_encode: %s", err);
    return wf;
}

/* A Batch just over one chunk: one large entry. */
static WireFrames encode_chunked(void)
{
    static struct raft_entry big;
    static struct mr_message m;
    size_t len = MR_WIRE_CHUNK_SIZE;
    char *data = palloc(len);

    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 7);
    big = (struct raft_entry){.term = 3, .index = 5, .data = data, .len = (uint32_t)len};
    m = (struct mr_message){.group = 5, .msg = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2,
                                               .term = 3, .index = 4, .entries = &big,
                                               .n_entries = 1}};
    return encode(&m, 1, NULL, 0, NULL, 0);
}

/* The header of a Batch from PEER to ME, then n "2a 00" (an empty Message each). */
static uint8_t *hostile(size_t n, size_t *len)
{
    WireFrames hdr = encode(NULL, 0, NULL, 0, NULL, 0);
    uint8_t *buf = palloc(hdr.len[0] + 2 * n);

    memcpy(buf, hdr.data[0], hdr.len[0]);
    for (size_t i = 0; i < n; i++) {
        buf[hdr.len[0] + 2 * i] = 0x2a;
        buf[hdr.len[0] + 2 * i + 1] = 0x00;
    }
    *len = hdr.len[0] + 2 * n;
    return buf;
}

/* 240,000 of them: 480 kB, a frame wire_decode_frame takes, the budget refuses. */
#define HOSTILE_MESSAGES 240000

static void write_seed(const char *seed_dir, const char *name, bool batch, const void *frame,
                       size_t len)
{
    char path[4096];
    FILE *f;
    uint8_t first = batch ? 1 : 0;

    snprintf(path, sizeof path, "%s/%s", seed_dir, name);
    f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    CHECK(fwrite(&first, 1, 1, f) == 1 && fwrite(frame, 1, len, f) == len && fclose(f) == 0,
          "cannot write %s", path);
}

/* The seed corpus, into directory dir (test/fuzz/run: FUZZ_WIRE_SEEDS=dir). */
static void write_seeds(const char *dir)
{
    WireFrames wf;
    uint8_t *h;
    size_t len;

    wf = encode(messages, 6, heartbeats, 2, heartbeat_resps, 1);
    write_seed(dir, "seed-frame-all", false, wf.data[0], wf.len[0]);
    write_seed(dir, "seed-batch-all", true, wf.data[0], wf.len[0]);
    wf = encode(messages, 1, NULL, 0, NULL, 0);
    write_seed(dir, "seed-frame-append", false, wf.data[0], wf.len[0]);
    wf = encode(messages + 1, 1, NULL, 0, NULL, 0);
    write_seed(dir, "seed-batch-snapshot", true, wf.data[0], wf.len[0]);
    wf = encode(NULL, 0, heartbeats, 2, heartbeat_resps, 1);
    write_seed(dir, "seed-frame-heartbeats", false, wf.data[0], wf.len[0]);
    wf = encode(NULL, 0, NULL, 0, NULL, 0);
    write_seed(dir, "seed-frame-empty", false, wf.data[0], wf.len[0]);
    /* the last chunk of two (the first is 512 kB: the fuzzer would cut it) */
    wf = encode_chunked();
    CHECK(wf.n == 2, "%d chunks", wf.n);
    write_seed(dir, "seed-frame-chunk", false, wf.data[1], wf.len[1]);
    /* refused by the decode budget (the fuzzer cuts it to -max_len; the
     * MemorySanitizer replay and LLVMFuzzerInitialize see it whole) */
    h = hostile(HOSTILE_MESSAGES, &len);
    write_seed(dir, "seed-frame-hostile", false, h, len);
    wire_stubs_reset();
}

static void self_check_round_trip(const WireFrames *wf, bool batch)
{
    struct mr_envelope env;
    char *err = NULL;
    WireResult r = decode_frames(wf, batch, &env, &err);

    CHECK(r == WIRE_OK, "self-check: a frame of wire_encode refused (%s): %s", result_name(r),
          err);
    check_envelope(&env, batch);
    check_round_trip(&env, batch, wf->batch_len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    WireFrames wf;
    struct mr_envelope env;
    WireFrame f;
    char *err = NULL;
    uint8_t *h;
    size_t len, n;
    WireResult r;
    struct mr_message *many;

    (void)argc;
    (void)argv;
    debug = getenv("FUZZ_DEBUG") != NULL;
    if (getenv("FUZZ_WIRE_SEEDS") != NULL) {
        write_seeds(getenv("FUZZ_WIRE_SEEDS"));
        exit(0);
    }

    /* the seeds' envelopes, whole and in chunks */
    for (int batch = 0; batch < 2; batch++) {
        wf = encode(messages, 6, heartbeats, 2, heartbeat_resps, 1);
        self_check_round_trip(&wf, batch);
        wf = encode(NULL, 0, heartbeats, 2, heartbeat_resps, 1);
        self_check_round_trip(&wf, batch);
    }
    wf = encode_chunked();
    CHECK(wf.n == 2, "self-check: %d chunks", wf.n);
    self_check_round_trip(&wf, false);
    wire_stubs_reset();

    /* small legitimate messages, nearly a chunk's worth in one frame: within budget */
    n = 50000;
    many = palloc(sizeof(*many) * n);
    for (size_t i = 0; i < n; i++)
        many[i] = (struct mr_message){
            .group = 1 + i % 100, .msg = {.type = RAFT_MSG_VOTE_RESP, .from = 1, .to = 2}};
    wf = encode(many, n, NULL, 0, NULL, 0);
    CHECK(wf.n == 1, "self-check: %zu small messages make %d frames", n, wf.n);
    r = wire_decode_frame(wf.data[0], wf.len[0], CLUSTER, ME, &f, &err);
    if (debug)
        fprintf(stderr, "fuzz_wire: self-check: %zu small messages in %zu bytes\n", n, wf.len[0]);
    CHECK(r == WIRE_OK && f.env.n_messages == n,
          "self-check: %zu small messages (%zu bytes) refused (%s): %s", n, wf.len[0],
          result_name(r), err);
    wire_stubs_reset();

    /* the hostile body: refused by the decode budget, by both decoders */
    h = hostile(HOSTILE_MESSAGES, &len);
    CHECK(len <= MR_WIRE_MAX_FRAME, "self-check: hostile frame of %zu bytes", len);
    r = wire_decode_frame(h, len, CLUSTER, ME, &f, &err);
    CHECK(r == WIRE_TOO_LARGE, "self-check: hostile frame of %zu bytes: %s: %s", len,
          result_name(r), r == WIRE_OK ? "accepted" : err);
    r = wire_decode_batch(h, len, CLUSTER, ME, PEER, &env, &err);
    CHECK(r == WIRE_TOO_LARGE, "self-check: hostile batch of %zu bytes: %s: %s", len,
          result_name(r), r == WIRE_OK ? "accepted" : err);
    wire_stubs_reset();
    return 0;
}
