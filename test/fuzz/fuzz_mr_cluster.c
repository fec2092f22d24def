/*
 * fuzz_mr_cluster.c — libFuzzer target for the multi-raft layer (src/multiraft) on
 * the in-process cluster of test/common/mr_cluster.h: 3 or 5 real nodes, each with
 * the model of what its host persisted, and a network between them.
 *
 * The input bytes are decoded into the cluster's options and a sequence of
 * operations: ticks, requests on any node (create, commands with caller-given or
 * generated ids, membership changes, transfers, reads, removals), crashes (also
 * inside a batch) and restarts from the persisted model, partitions, stalls,
 * network faults (drop, duplicate, delay), and — when the first byte allows it —
 * FORGED input: raft messages of any type with any fields, entries whose data are
 * raw bytes or the layer's own encodings with fuzzed fields, snapshots with fuzzed
 * data, and coalesced heartbeats, handed to a node as if a peer had sent them.
 *
 * Checked for every input:
 *  - no crash, no sanitizer report, no leak (ASan's leak check at exit);
 *  - every API call returns a documented result; mr_receive() accepts every
 *    envelope from a real peer;
 * and, when nothing was forged (a forger can legitimately make replicas
 * disagree, or replace a group's state with a snapshot of its own):
 *  - mrc_check(): one leader per group and term, the same entry at each index on
 *    every node, strictly increasing event indexes, no command id applied twice;
 *  - exactly once: no request completes twice on its node, and a command that
 *    completed with MR_OK has exactly one event with its id there (a command's or
 *    a membership change's: they share the ids), or none if a snapshot brought
 *    its first application to that node.
 * A broken property calls abort(), which libFuzzer reports as a crash.
 *
 * Build and run: test/fuzz/run [seconds] (every target of test/fuzz in turn).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mr_cluster.h"
#include "mr_internal.h" /* the layer's entry encodings, to forge well-formed data */
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 400
#define MAX_GROUPS 4
#define MAX_REQS 256

/* FUZZ_MR_TRACE=1 in the environment: each operation and result on stderr, to
 * read what a crashing input did (build/fuzz/fuzz_mr_cluster <input>); with
 * FUZZ_MR_TRACE_MESSAGES=1 as well, every raft message the nodes send. */
static bool tracing, tracing_messages;
#define TRACE(...)                                                           \
    do {                                                                     \
        if (tracing)                                                         \
            fprintf(stderr, __VA_ARGS__);                                    \
    } while (0)

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_mr_cluster: ");                            \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* A request made through the API: its completions are checked at the end. */
struct req {
    mr_node_id node;
    uint64_t token;
    mr_group_id group;
    bool command;
    uint8_t id[9];
    size_t id_len;
};

struct run {
    struct in in;
    struct mrc_cluster *c;
    uint32_t n_nodes;
    bool forging;
    bool forged; /* something forged was handed to a node */
    uint64_t next_token;
    bool created[MAX_GROUPS + 1]; /* create_group is called once per group (SPEC) */
    struct req reqs[MAX_REQS];
    size_t n_reqs;
};

static mr_node_id pick_node(struct run *r)
{
    return (mr_node_id)(u8(&r->in) % r->n_nodes) + 1;
}

static mr_group_id pick_group(struct run *r)
{
    return (mr_group_id)(u8(&r->in) % MAX_GROUPS) + 1;
}

static uint64_t traced_messages; /* sent in batches, for the trace */

/* In trace mode: the messages each batch sends (counted, and listed with
 * FUZZ_MR_TRACE_MESSAGES) and what it persists of tombstones, events and groups. */
static void trace_batch(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct mrc_cluster *c = arg;
    for (size_t i = 0; i < b->n_envelopes; i++) {
        traced_messages += b->envelopes[i].n_messages;
        if (tracing_messages)
            for (size_t k = 0; k < b->envelopes[i].n_messages; k++) {
                const struct mr_message *mm = &b->envelopes[i].messages[k];
                TRACE("t=%llu node %u -> %u: %s group %llu term %llu index %llu logterm %llu "
                      "commit %llu reject %u\n", (unsigned long long)mrc_now(c), node,
                      b->envelopes[i].to_node, raft_msg_type_name(mm->msg.type),
                      (unsigned long long)mm->group, (unsigned long long)mm->msg.term,
                      (unsigned long long)mm->msg.index, (unsigned long long)mm->msg.log_term,
                      (unsigned long long)mm->msg.commit, mm->msg.reject);
            }
    }
    for (size_t i = 0; i < b->n_tombstones; i++)
        TRACE("t=%llu node %u persists tombstone group %llu min_replica %llu applied %llu "
              "incarnation %u\n",
              (unsigned long long)mrc_now(c), node, (unsigned long long)b->tombstones[i].group,
              (unsigned long long)b->tombstones[i].min_replica_id,
              (unsigned long long)b->tombstones[i].applied, b->tombstones[i].incarnation);
    for (size_t i = 0; i < b->n_events; i++)
        TRACE("t=%llu node %u persists event %s group %llu index %llu\n",
              (unsigned long long)mrc_now(c), node, mr_event_type_name(b->events[i].type),
              (unsigned long long)b->events[i].group, (unsigned long long)b->events[i].index);
    for (size_t i = 0; i < b->n_groups; i++)
        if (b->groups[i].meta_changed || b->groups[i].flags)
            TRACE("t=%llu node %u persists group %llu replica %llu flags %#x applied %llu%s\n",
                  (unsigned long long)mrc_now(c), node, (unsigned long long)b->groups[i].group,
                  (unsigned long long)b->groups[i].replica_id, b->groups[i].flags,
                  (unsigned long long)b->groups[i].applied,
                  b->groups[i].has_snapshot ? " (snapshot)" : "");
}

/* The results an API call may give synchronously (anything else is a defect). */
static bool documented(int rc)
{
    switch (rc) {
    case MR_OK:
    case MR_ENOGROUP:
    case MR_EEXIST:
    case MR_ENOTMEMBER:
    case MR_ETOOBIG:
    case MR_EINVAL:
    case MR_ESTOPPED:
    case MR_EBADCONF:
    case MR_EGROUP_DELETED:
        return true;
    default:
        return false;
    }
}

static void note_request(struct run *r, mr_node_id node, uint64_t token, mr_group_id g,
                         bool command, const uint8_t *id, size_t id_len, int rc)
{
    TRACE("t=%llu node %u group %llu: request %llu%s -> %s\n",
          (unsigned long long)mrc_now(r->c), node, (unsigned long long)g,
          (unsigned long long)token, command ? " (command)" : "", mr_strerror(rc));
    CHECK(documented(rc), "node %u: request on group %llu returned %d (%s)", node,
          (unsigned long long)g, rc, mr_strerror(rc));
    if (rc != MR_OK || r->n_reqs == MAX_REQS)
        return;
    struct req *q = &r->reqs[r->n_reqs++];
    memset(q, 0, sizeof *q);
    q->node = node;
    q->token = token;
    q->group = g;
    q->command = command;
    q->id_len = id_len;
    if (id_len > 0)
        memcpy(q->id, id, id_len);
}

/* A caller's command id: 1..8 bytes, often one of a few (duplicates are the point). */
static size_t command_id(struct run *r, uint8_t *id)
{
    uint8_t sel = u8(&r->in);
    size_t len = (size_t)(sel & 7) + 1;
    for (size_t i = 0; i < len; i++)
        id[i] = (sel & 0x80) ? u8(&r->in) : (uint8_t)('a' + ((sel >> 3) & 3));
    return len;
}

static void op_request(struct run *r, uint8_t kind)
{
    mr_node_id node = pick_node(r);
    struct mr_node *n = mrc_node(r->c, node);
    mr_group_id g = pick_group(r);
    uint64_t token = ++r->next_token;
    uint32_t deadline = u8(&r->in) % 64;
    uint8_t id[9], payload[16];
    size_t id_len = 0, payload_len = u8(&r->in) % sizeof payload;
    int rc;

    if (n == NULL)
        return; /* crashed */
    for (size_t i = 0; i < payload_len; i++)
        payload[i] = u8(&r->in);
    TRACE("t=%llu request kind %u on node %u group %llu\n", (unsigned long long)mrc_now(r->c),
          kind % 8, node, (unsigned long long)g);
    switch (kind % 8) {
    case 0: {
        mr_node_id members[5];
        size_t k = (size_t)(u8(&r->in) % r->n_nodes) + 1;
        if (r->created[g])
            return;
        for (size_t i = 0; i < k; i++)
            members[i] = (mr_node_id)((node - 1 + i) % r->n_nodes) + 1;
        rc = mr_create_group(n, g, members, k, token);
        r->created[g] = rc == MR_OK;
        break;
    }
    case 1:
    case 2:
        id_len = command_id(r, id);
        rc = mr_propose(n, g, token, id, id_len, payload, payload_len, deadline);
        note_request(r, node, token, g, true, id, id_len, rc);
        return;
    case 3:
        /* A generated id is unique by construction (multiraft.h): 'g' and the token,
         * longer than any id command_id() makes. */
        id[0] = 'g';
        memcpy(id + 1, &token, sizeof token);
        id_len = 1 + sizeof token;
        rc = mr_propose_generated(n, g, token, id, id_len, payload, payload_len, deadline);
        note_request(r, node, token, g, true, id, id_len, rc);
        return;
    case 4: {
        unsigned char b = u8(&r->in);
        int type = (int)((b & 0x7f) % 3) + 1;
        bool generated = (b & 0x80) != 0;
        /* A generated id ('c' and the token) is unique, as the host's are; a caller's
         * may repeat (command_id()). */
        if (generated) {
            id[0] = 'c';
            memcpy(id + 1, &token, sizeof token);
            id_len = 1 + sizeof token;
        } else {
            id_len = command_id(r, id);
        }
        rc = mr_propose_conf_change(n, g, token, type, pick_node(r), id, id_len, generated,
                                    payload, payload_len, deadline);
        break;
    }
    case 5:
        rc = mr_transfer_leadership(n, g, pick_node(r), token, deadline);
        break;
    case 6:
        rc = mr_read_index(n, g, token, deadline);
        break;
    default:
        /* Removals end a group for good: rarer than the rest. */
        if (u8(&r->in) % 4 != 0)
            return;
        rc = mr_remove_group(n, g, token, deadline);
        break;
    }
    note_request(r, node, token, g, false, NULL, 0, rc);
}

static void op_fault(struct run *r, uint8_t kind)
{
    mr_node_id a = pick_node(r), b = pick_node(r);
    TRACE("t=%llu fault %u nodes %u %u\n", (unsigned long long)mrc_now(r->c), kind % 6, a, b);
    switch (kind % 6) {
    case 0:
        mrc_crash(r->c, a);
        break;
    case 1:
        mrc_crash_in_next_batch(r->c, a);
        break;
    case 2: {
        int rc = mrc_restart(r->c, a);
        CHECK(rc == MR_OK || rc == MR_EINVAL, "restart of node %u: %s", a, mr_strerror(rc));
        break;
    }
    case 3:
        if (a != b)
            mrc_partition(r->c, a, b, (u8(&r->in) & 1) != 0);
        break;
    case 4:
        mrc_stall(r->c, a, (u8(&r->in) & 1) != 0);
        break;
    default: {
        uint8_t f = u8(&r->in);
        if (f & 0x80)
            mrc_heal_all(r->c);
        mrc_set_faults(r->c, f & 7, (f >> 3) & 7, (f >> 6) & 1 ? 3 : 0);
        break;
    }
    }
}

/* Entry data a forger would send: raw bytes, or the layer's encodings with fuzzed
 * fields (so that the decoders' checks, not their framing, are what gets fuzzed). */
static size_t forged_entry_data(struct run *r, uint8_t type, unsigned char *buf, size_t cap)
{
    uint8_t sel = u8(&r->in);
    uint8_t id[8], payload[24];
    size_t id_len = (size_t)(sel & 7), payload_len = u8(&r->in) % sizeof payload;
    for (size_t i = 0; i < id_len; i++)
        id[i] = u8(&r->in);
    for (size_t i = 0; i < payload_len; i++)
        payload[i] = u8(&r->in);
    if (type == RAFT_ENTRY_CONF_CHANGE) {
        struct raft_conf_change cc;
        unsigned char ctx[MR_CONTEXT_HEADER + sizeof id + sizeof payload];
        mr_node_id node = (mr_node_id)(u8(&r->in) % 7);
        size_t ctx_len = mr_context_encode(node, id, (uint16_t)id_len, payload, payload_len,
                                           ctx);
        memset(&cc, 0, sizeof cc);
        cc.type = (uint8_t)(u8(&r->in) % 4);
        cc.replica = u64v(&r->in, 3);
        cc.context = ctx;
        cc.context_len = (sel & 0x40) ? (uint32_t)(ctx_len - (ctx_len > 0)) : (uint32_t)ctx_len;
        if (raft_conf_change_encoded_size(&cc) > cap)
            return 0;
        return raft_conf_change_encode(&cc, buf);
    }
    switch (sel >> 5) {
    case 0:
    case 1: /* a command (kind 1) */
        if (mr_entry_encode(MR_KIND_COMMAND, id, (uint16_t)id_len, payload, payload_len,
                            NULL) > cap)
            return 0;
        return mr_entry_encode(MR_KIND_COMMAND, id, (uint16_t)id_len, payload, payload_len,
                               buf);
    case 2:
    case 3: { /* a generated-id command (kind 4) in some session */
        struct mr_session_ref ref;
        raft_index expires;
        memset(&ref, 0, sizeof ref);
        ref.node = (mr_node_id)(u8(&r->in) % 7);
        ref.epoch = u64v(&r->in, 1);
        ref.seq = u64v(&r->in, 1);
        ref.floor = u64v(&r->in, 0);
        expires = u64v(&r->in, 50);
        if (mr_entry_encode_generated(expires, &ref, id, (uint16_t)id_len, payload,
                                      payload_len, NULL) > cap)
            return 0;
        return mr_entry_encode_generated(expires, &ref, id, (uint16_t)id_len, payload,
                                         payload_len, buf);
    }
    default: { /* raw bytes, the first one often a known kind */
        size_t len = (size_t)(u8(&r->in) % 48);
        if (len > cap)
            len = cap;
        for (size_t i = 0; i < len; i++)
            buf[i] = u8(&r->in);
        if (len > 0 && (sel & 0x10))
            buf[0] = (unsigned char)(sel & 7);
        return len;
    }
    }
}

/* The incarnation of a forged item, from its reject byte (no byte more is read, so
 * the corpus keeps its meaning): 0, unknown and taken by any replica, unless the
 * byte's seven high bits are set — then another group's under the same id, which
 * is refused as a conflict. */
static uint32_t forged_incarnation(uint8_t b)
{
    return (b | 1u) == 0xFFu ? 0x80000000u | b : 0;
}

static void op_forge_message(struct run *r)
{
    mr_node_id to = pick_node(r), from = pick_node(r);
    struct mr_message m;
    struct raft_entry ents[3];
    unsigned char data[3][160];
    struct raft_snapshot snap;
    raft_id voters[3];
    unsigned char snap_data[32];
    uint8_t b;
    int rc;

    if (mrc_node(r->c, to) == NULL)
        return;
    memset(&m, 0, sizeof m);
    m.group = pick_group(r);
    m.msg.type = (uint8_t)(u8(&r->in) % (RAFT_MSG_TYPE_MAX + 2));
    b = u8(&r->in);
    m.msg.reject = b & 1;
    m.incarnation = forged_incarnation(b);
    m.msg.from = u64v(&r->in, 2);
    m.msg.to = u64v(&r->in, 1);
    m.msg.term = termv(&r->in, 2);
    m.msg.log_term = termv(&r->in, 2);
    m.msg.index = idxv(&r->in, 4);
    m.msg.commit = idxv(&r->in, 4);
    m.msg.reject_hint = idxv(&r->in, 2);
    m.msg.context = u64v(&r->in, 0);
    m.msg.n_entries = u8(&r->in) % 4;
    for (uint32_t i = 0; i < m.msg.n_entries; i++) {
        ents[i].term = termv(&r->in, m.msg.term);
        ents[i].index = m.msg.index + 1 + i;
        ents[i].type = (u8(&r->in) % 5 == 0) ? RAFT_ENTRY_CONF_CHANGE : RAFT_ENTRY_NORMAL;
        ents[i].len = (uint32_t)forged_entry_data(r, ents[i].type, data[i], sizeof data[i]);
        ents[i].data = data[i];
    }
    m.msg.entries = m.msg.n_entries > 0 ? ents : NULL;
    if (u8(&r->in) % 3 == 0) {
        memset(&snap, 0, sizeof snap);
        snap.index = idxv(&r->in, 4);
        snap.term = termv(&r->in, 2);
        snap.conf.n_voters = u8(&r->in) % 4;
        for (uint32_t i = 0; i < snap.conf.n_voters; i++)
            voters[i] = u64v(&r->in, 1);
        snap.conf.voters = snap.conf.n_voters > 0 ? voters : NULL;
        snap.len = u8(&r->in) % sizeof snap_data;
        for (size_t i = 0; i < snap.len; i++)
            snap_data[i] = u8(&r->in);
        snap.data = snap.len > 0 ? snap_data : NULL;
        m.msg.snapshot = &snap;
    }
    TRACE("t=%llu forged %s for group %llu from node %u to node %u: term %llu index %llu "
          "commit %llu, %u entries%s\n", (unsigned long long)mrc_now(r->c),
          raft_msg_type_name(m.msg.type), (unsigned long long)m.group, from, to,
          (unsigned long long)m.msg.term, (unsigned long long)m.msg.index,
          (unsigned long long)m.msg.commit, m.msg.n_entries, m.msg.snapshot ? ", snapshot" : "");
    rc = mrc_receive_one(r->c, from, to, &m);
    CHECK(from == to ? rc == MR_EINVAL : rc == MR_OK,
          "mr_receive of a forged message from %u to %u: %s", from, to, mr_strerror(rc));
    r->forged = true;
}

static void op_forge_heartbeats(struct run *r)
{
    mr_node_id to = pick_node(r), from = pick_node(r);
    struct mr_heartbeat hb[3];
    struct mr_envelope env;
    size_t n = (size_t)(u8(&r->in) % 3) + 1;
    int rc;

    if (mrc_node(r->c, to) == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        uint8_t b;
        hb[i].group = pick_group(r);
        hb[i].from = u64v(&r->in, 1);
        hb[i].to = u64v(&r->in, 1);
        hb[i].term = termv(&r->in, 2);
        hb[i].commit = idxv(&r->in, 4);
        hb[i].context = u64v(&r->in, 0);
        hb[i].flags = u8(&r->in) & 3;
        b = u8(&r->in);
        hb[i].reject = b & 1;
        hb[i].incarnation = forged_incarnation(b);
    }
    memset(&env, 0, sizeof env);
    env.from_node = from;
    env.to_node = to;
    if (u8(&r->in) & 1) {
        env.heartbeats = hb;
        env.n_heartbeats = n;
    } else {
        env.heartbeat_resps = hb;
        env.n_heartbeat_resps = n;
    }
    TRACE("t=%llu forged %zu heartbeat(s) from node %u to node %u\n",
          (unsigned long long)mrc_now(r->c), n, from, to);
    rc = mr_receive(mrc_node(r->c, to), &env);
    CHECK(from == to ? rc == MR_EINVAL : rc == MR_OK,
          "mr_receive of forged heartbeats from %u to %u: %s", from, to, mr_strerror(rc));
    r->forged = true;
}

/* Whether the node, up, has applied its log through index again since a crash. */
static bool applied_again(struct run *r, mr_node_id node, mr_group_id group, raft_index index)
{
    struct mr_group_status st;
    return mrc_is_up(r->c, node) &&
           mr_group_status(mrc_node(r->c, node), group, &st) == MR_OK && st.applied >= index;
}

/* Exactly once, for what was not forged: no second completion of a request on its
 * node, and a command that completed with MR_OK left exactly one event with its id. */
static void check_requests(struct run *r)
{
    for (size_t i = 0; i < r->n_reqs; i++) {
        const struct req *q = &r->reqs[i];
        struct mr_completion done;
        size_t times = mrc_completion_count(r->c, q->node, q->token);
        CHECK(times <= 1, "node %u: request %llu completed %zu times", q->node,
              (unsigned long long)q->token, times);
        if (!q->command || !mrc_completion(r->c, q->node, q->token, &done) ||
            done.result != MR_OK)
            continue;
        /* None only if a snapshot brought the first application here, or a crash
         * took the event with a batch committed without a flush and the node has
         * not applied its log again yet (it writes the event again then).
         * Commands and membership changes share a group's command ids (SPEC: a
         * submit with the id of a change returns the change's index). */
        times = mrc_id_events(r->c, q->node, q->group, q->id, q->id_len);
        TRACE("request %llu on node %u: completed at index %llu, %zu events\n",
              (unsigned long long)q->token, q->node, (unsigned long long)done.index, times);
        CHECK(times == 1 || (times == 0 && (mrc_snapshot_installed(r->c, q->node, q->group) ||
                                            (mrc_lost_id_events(r->c, q->node, q->group,
                                                                q->id, q->id_len) > 0 &&
                                             !applied_again(r, q->node, q->group,
                                                            done.index)))),
              "node %u group %llu: command acknowledged at index %llu has %zu events",
              q->node, (unsigned long long)q->group, (unsigned long long)done.index, times);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run *r = calloc(1, sizeof *r);
    struct mrc_options o;
    uint8_t flags;
    char err[256];

    if (r == NULL)
        return 0;
    r->in.p = data;
    r->in.n = size;
    tracing = getenv("FUZZ_MR_TRACE") != NULL;
    tracing_messages = tracing && getenv("FUZZ_MR_TRACE_MESSAGES") != NULL;
    flags = u8(&r->in);
    r->forging = (flags & 1) != 0;
    r->n_nodes = (flags & 2) ? 5 : 3;
    memset(&o, 0, sizeof o);
    o.n_nodes = r->n_nodes;
    o.seed = u64v(&r->in, 1);
    o.base.election_ticks = 10;
    o.base.heartbeat_ticks = 2;
    o.base.disable_pre_vote = (flags & 4) != 0;
    o.base.disable_check_quorum = (flags & 8) != 0;
    o.base.disable_batch_hold = (flags & 16) != 0;
    o.base.compact_threshold = (flags & 32) ? 4 : 0;  /* compactions, snapshots */
    o.base.log_retention = (flags & 32) ? 8 : 0;
    o.base.generated_id_window = (flags & 64) ? 20 : 0; /* expiries */
    /* A forger can make two leaders in one term: only the checks of an honest
     * cluster look for that. */
    o.no_leader_check = r->forging;
    r->c = mrc_new(&o);
    if (r->c == NULL) {
        free(r);
        return 0;
    }
    if (tracing)
        mrc_set_batch_observer(r->c, trace_batch, r->c);
    {
        mr_node_id members[5] = {1, 2, 3, 4, 5};
        int rc = mr_create_group(mrc_node(r->c, 1), 1, members, r->n_nodes, ++r->next_token);
        CHECK(rc == MR_OK, "create_group: %s", mr_strerror(rc));
        r->created[1] = true;
    }
    for (int ops = 0; ops < MAX_OPS && r->in.n > 0; ops++) {
        uint8_t op = u8(&r->in);
        TRACE("t=%llu op %u (%llu messages sent so far)\n", (unsigned long long)mrc_now(r->c),
              op % 8, (unsigned long long)traced_messages);
        switch (op % 8) {
        case 0:
        case 1:
            mrc_run(r->c, (uint32_t)(op >> 3) % 8 + 1);
            break;
        case 2:
        case 3:
            op_request(r, op >> 3);
            break;
        case 4:
            op_fault(r, op >> 3);
            break;
        case 5:
            if (r->forging)
                op_forge_message(r);
            else
                mrc_settle(r->c);
            break;
        case 6:
            if (r->forging)
                op_forge_heartbeats(r);
            else
                mrc_tick(r->c);
            break;
        default:
            mrc_settle(r->c);
            break;
        }
    }
    /* Heal, restart everything, and let the cluster finish what it can. */
    mrc_heal_all(r->c);
    mrc_set_faults(r->c, 0, 0, 0);
    for (mr_node_id k = 1; k <= r->n_nodes; k++) {
        mrc_stall(r->c, k, false);
        if (!mrc_is_up(r->c, k)) {
            int rc = mrc_restart(r->c, k);
            CHECK(rc == MR_OK, "final restart of node %u: %s", k, mr_strerror(rc));
        }
    }
    mrc_run(r->c, 60);
    if (tracing)
        for (mr_node_id k = 1; k <= r->n_nodes; k++)
            for (size_t i = 0; i < mrc_event_count(r->c, k); i++) {
                const struct mrc_event *e = mrc_event_at(r->c, k, i);
                TRACE("node %u event %zu: %s group %llu index %llu term %llu id %.*s\n", k, i,
                      mr_event_type_name(e->type), (unsigned long long)e->group,
                      (unsigned long long)e->index, (unsigned long long)e->term, (int)e->cmd_len,
                      (const char *)e->cmd);
            }
    if (!r->forged) {
        CHECK(mrc_check(r->c, err, sizeof err) == 0, "%s", err);
        check_requests(r);
    }
    mrc_free(r->c);
    free(r);
    return 0;
}
