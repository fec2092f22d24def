/*
 * test_mr_codec.c — the layer's byte layouts: round trips, and random or truncated
 * bytes never crash a decoder (ASan/UBSan watch) nor restore a group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mr_internal.h"
#include "mr_cluster.h"

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void test_entry_and_context_round_trip(void **state)
{
    unsigned char buf[64];
    struct mr_entry_view v;
    struct mr_context_view cv;
    struct mr_conf_request_view cr;
    size_t len;
    (void)state;
    len = mr_entry_encode(MR_KIND_COMMAND, "id-1", 4, "payload", 7, buf);
    assert_int_equal(len, 3 + 4 + 7);
    assert_true(mr_entry_decode(buf, len, &v));
    assert_int_equal(v.kind, MR_KIND_COMMAND);
    assert_int_equal(v.cmd_len, 4);
    assert_memory_equal(v.cmd, "id-1", 4);
    assert_int_equal(v.payload_len, 7);
    assert_memory_equal(v.payload, "payload", 7);
    /* Every truncation fails cleanly below the header + id. */
    for (size_t k = 0; k < 3 + 4; k++)
        assert_false(mr_entry_decode(buf, k, &v));
    buf[0] = 9;
    assert_false(mr_entry_decode(buf, len, &v));
    /* Kind 5: a leader's refusal, the command id and a one-byte reason. */
    {
        unsigned char reason = MR_REFUSED_NOTMEMBER;
        len = mr_entry_encode(MR_KIND_CONF_REFUSED, "c-7", 3, &reason, 1, buf);
        assert_true(mr_entry_decode(buf, len, &v));
        assert_int_equal(v.kind, MR_KIND_CONF_REFUSED);
        assert_memory_equal(v.cmd, "c-7", 3);
        assert_int_equal(v.payload_len, 1);
        assert_int_equal(v.payload[0], MR_REFUSED_NOTMEMBER);
    }
    /* Kind 4: the bound and the session travel with every copy. */
    {
        struct mr_session_ref ref = {7, 0x1122334455667788ULL, 40, 38};
        len = mr_entry_encode_generated(12345, &ref, "g-1", 3, "pl", 2, buf);
        assert_int_equal(len, 39 + 3 + 2);
        assert_true(mr_entry_decode(buf, len, &v));
        assert_int_equal(v.kind, MR_KIND_GENERATED);
        assert_int_equal(v.expires, 12345);
        assert_int_equal(v.session.node, 7);
        assert_true(v.session.epoch == 0x1122334455667788ULL);
        assert_int_equal(v.session.seq, 40);
        assert_int_equal(v.session.floor, 38);
        assert_memory_equal(v.cmd, "g-1", 3);
        assert_memory_equal(v.payload, "pl", 2);
        for (size_t k = 0; k < 39 + 3; k++)
            assert_false(mr_entry_decode(buf, k, &v));
        /* A floor above the seq, seq 0, node 0: not a session's command. */
        ref.floor = 41;
        len = mr_entry_encode_generated(12345, &ref, "g-1", 3, "pl", 2, buf);
        assert_false(mr_entry_decode(buf, len, &v));
        ref.floor = 0;
        ref.seq = 0;
        len = mr_entry_encode_generated(12345, &ref, "g-1", 3, "pl", 2, buf);
        assert_false(mr_entry_decode(buf, len, &v));
        ref.seq = 1;
        ref.node = 0;
        len = mr_entry_encode_generated(12345, &ref, "g-1", 3, "pl", 2, buf);
        assert_false(mr_entry_decode(buf, len, &v));
    }
    len = mr_context_encode(42, "c", 1, "xy", 2, buf);
    assert_true(mr_context_decode(buf, len, &cv));
    assert_int_equal(cv.node, 42);
    assert_int_equal(cv.payload_len, 2);
    assert_false(mr_context_decode(buf, 6, &cv));
    len = mr_conf_request_encode(MR_CHANGE_ADD_LEARNER, 7, "p", 1, buf);
    assert_true(mr_conf_request_decode(buf, len, &cr));
    assert_int_equal(cr.change_type, MR_CHANGE_ADD_LEARNER);
    assert_int_equal(cr.node, 7);
    buf[0] = 0;
    assert_false(mr_conf_request_decode(buf, len, &cr));
}

static void test_random_bytes_never_decode_badly(void **state)
{
    uint64_t s = 99;
    unsigned char buf[96];
    (void)state;
    for (int i = 0; i < 20000; i++) {
        size_t len = next(&s) % sizeof buf;
        struct mr_entry_view v;
        struct mr_context_view cv;
        struct mr_conf_request_view cr;
        const void *st, *bl;
        size_t sl, bll;
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)next(&s);
        if (mr_entry_decode(buf, len, &v))
            assert_true((v.kind == MR_KIND_GENERATED ? MR_ENTRY_GEN_HEADER : MR_ENTRY_HEADER) +
                            v.cmd_len + v.payload_len == len);
        if (mr_context_decode(buf, len, &cv))
            assert_true(MR_CONTEXT_HEADER + cv.cmd_len + cv.payload_len == len);
        (void)mr_conf_request_decode(buf, len, &cr);
        if (mr_snapshot_split(buf, len, &st, &sl, &bl, &bll))
            assert_true(4 + sl + bll == len);
    }
}

static void test_restore_refuses_corrupt_state(void **state)
{
    struct mr_config cfg;
    struct mr_node *n;
    struct mr_group_restore r;
    raft_id voters[1] = {1};
    unsigned char junk[40];
    uint64_t s = 5;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = 1;
    n = mr_node_new(&cfg, NULL);
    assert_non_null(n);
    memset(&r, 0, sizeof r);
    r.group = 1;
    r.replica_id = 1;
    r.conf_state.voters = voters;
    r.conf_state.n_voters = 1;
    for (int i = 0; i < 200; i++) {
        for (size_t k = 0; k < sizeof junk; k++)
            junk[k] = (unsigned char)next(&s);
        junk[0] = (unsigned char)(1 + i % 3); /* a right version: the lengths are wrong */
        r.state = junk;
        r.state_len = next(&s) % sizeof junk;
        int rc = mr_restore_group(n, &r);
        assert_true(rc == MR_OK || rc == MR_ECORRUPT);
        if (rc == MR_OK) {
            assert_true(mr_group_exists(n, 1));
            mr_node_free(n);
            n = mr_node_new(&cfg, NULL);
        }
    }
    /* applied beyond the entries given */
    r.state = NULL;
    r.state_len = 0;
    r.applied = 5;
    assert_int_equal(mr_restore_group(n, &r), MR_ECORRUPT);
    assert_false(mr_group_exists(n, 1));
    mr_node_free(n);
}

/* The group's state round trip: the map, the id counter, the members still to add
 * and (from the node's own row only) conf_seen; a version-2 state,
 * without conf_seen, still reads, and knows no change. */
static void test_group_state_round_trip(void **state)
{
    struct mr_config cfg;
    struct mr_node *n;
    struct mr_group *g, *own, *snap, *v3;
    unsigned char buf[256], v2[256];
    size_t len;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = 1;
    n = mr_node_new(&cfg, NULL);
    assert_non_null(n);
    g = mr_group_alloc(n, 1, 2);
    own = mr_group_alloc(n, 2, 2);
    snap = mr_group_alloc(n, 3, 2);
    assert_non_null(g);
    assert_non_null(own);
    assert_non_null(snap);
    assert_int_equal(mr_map_set(n, g, 2, 1), MR_OK);
    assert_int_equal(mr_map_set(n, g, 7, 3), MR_OK); /* proposed, not applied */
    g->next_replica_id = 8;
    g->conf_seen = 5;
    g->boot = mr_alloc(n, sizeof *g->boot);
    assert_non_null(g->boot);
    g->boot[0] = 4;
    g->n_boot = 1;
    g->incarnation = 0xA5C3E1F7u;
    len = mr_state_encode(g, NULL);
    assert_true(len <= sizeof buf);
    assert_int_equal(mr_state_encode(g, buf), len);
    assert_int_equal(buf[0], 5);

    assert_true(mr_state_decode(n, own, buf, len, true, NULL));
    assert_int_equal(own->next_replica_id, 8);
    assert_int_equal(own->conf_seen, 5);
    assert_int_equal(mr_map_node(own, 7), 3);
    assert_int_equal(own->n_boot, 1);
    assert_int_equal(own->boot[0], 4);
    assert_int_equal(own->incarnation, 0xA5C3E1F7u);
    assert_true(mr_state_decode(n, snap, buf, len, false, NULL));
    assert_int_equal(snap->incarnation, 0xA5C3E1F7u);
    assert_int_equal(snap->next_replica_id, 8);
    assert_int_equal(snap->conf_seen, 0); /* the sender's, not as of the snapshot */
    assert_int_equal(snap->n_boot, 1); /* the sender's members still to add */
    assert_int_equal(snap->boot[0], 4);
    for (size_t cut = 0; cut < len - 4; cut++) /* sessions follow: 4 bytes at least */
        assert_false(mr_state_decode(n, snap, buf, cut, true, NULL));

    /* Version 4: the same without the leader (none known). */
    v2[0] = 4;
    memcpy(v2 + 1, buf + 1, 20);
    memcpy(v2 + 21, buf + 37, len - 37);
    v3 = mr_group_alloc(n, 5, 2);
    assert_non_null(v3);
    assert_true(mr_state_decode(n, v3, v2, len - 16, true, NULL));
    assert_int_equal(v3->incarnation, 0xA5C3E1F7u);
    assert_int_equal(v3->conf_seen, 5);
    assert_int_equal(mr_map_node(v3, 7), 3);
    assert_null(v3->x); /* no lease to hold */

    /* Version 3: the same without the incarnation (unknown: 0). */
    v2[0] = 3;
    memcpy(v2 + 1, buf + 1, 16);
    memcpy(v2 + 17, buf + 37, len - 37);
    v3 = mr_group_alloc(n, 4, 2);
    assert_non_null(v3);
    assert_true(mr_state_decode(n, v3, v2, len - 20, true, NULL));
    assert_int_equal(v3->incarnation, 0);
    assert_int_equal(v3->conf_seen, 5);
    assert_int_equal(mr_map_node(v3, 7), 3);

    /* Version 2: the same without conf_seen. */
    v2[0] = 2;
    memcpy(v2 + 1, buf + 1, 8);
    memcpy(v2 + 9, buf + 37, len - 37);
    own->conf_seen = 0;
    assert_true(mr_state_decode(n, own, v2, len - 28, true, NULL));
    assert_int_equal(own->conf_seen, 0);
    assert_int_equal(own->next_replica_id, 8);
    assert_int_equal(mr_map_node(own, 2), 1);
    assert_int_equal(own->n_boot, 1);
    mr_node_free(n);
}

/* Node 2 receives a SNAPSHOT of group 8 (unknown there) from replica 1 on node 1
 * whose data is `data`; returns whether node 2 then has the group, and counts the
 * malformed messages it saw in *malformed. */
static bool receive_snapshot(const void *data, size_t len, uint64_t *malformed)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    struct raft_snapshot snap;
    struct mr_message m;
    struct mr_counters before, after;
    raft_id voters[3] = {1, 2, 3};
    bool exists;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    c = mrc_new(&o);
    memset(&snap, 0, sizeof snap);
    snap.index = 10;
    snap.term = 2;
    snap.conf.voters = voters;
    snap.conf.n_voters = 3;
    snap.data = data;
    snap.len = len;
    memset(&m, 0, sizeof m);
    m.group = 8;
    m.msg.type = RAFT_MSG_SNAPSHOT;
    m.msg.from = 1;
    m.msg.to = 2;
    m.msg.term = 2;
    m.msg.snapshot = &snap;
    mr_get_counters(mrc_node(c, 2), &before);
    assert_int_equal(mrc_receive_one(c, 1, 2, &m), MR_OK);
    mrc_settle(c);
    mr_get_counters(mrc_node(c, 2), &after);
    *malformed = after.malformed - before.malformed;
    exists = mr_group_exists(mrc_node(c, 2), 8);
    mrc_free(c);
    return exists;
}

/* Snapshot data: u32 state length | the state of a group mapping replicas 1..3 to
 * nodes 1..3, with `sessions` as its sessions | blob.  Returns the length. */
static size_t snapshot_bytes(unsigned char *buf, const unsigned char *sessions,
                             size_t sessions_len, const unsigned char *blob, size_t blob_len)
{
    struct mr_config cfg;
    struct mr_node *n;
    struct mr_group *g;
    size_t sl;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = 1;
    n = mr_node_new(&cfg, NULL);
    assert_non_null(n);
    g = mr_group_alloc(n, 8, 1);
    assert_non_null(g);
    for (mr_node_id k = 1; k <= 3; k++)
        assert_int_equal(mr_map_set(n, g, k, k), MR_OK);
    g->next_replica_id = 4;
    sl = mr_state_encode_with(g, sessions, sessions_len, buf + 4);
    buf[0] = (unsigned char)sl;
    buf[1] = (unsigned char)(sl >> 8);
    buf[2] = buf[3] = 0;
    memcpy(buf + 4 + sl, blob, blob_len);
    mr_node_free(n);
    return 4 + sl + blob_len;
}

/* A snapshot is checked whole before the core sees it: once installed, the log it
 * replaces is gone, so a snapshot whose sessions or dedup records could not be
 * restored would let the replica apply commands again.  Garbage, malformed
 * sessions and a blob the host refuses (the harness's store checks its format,
 * mrcs_blob_ok) are dropped and counted, and create no replica; the same snapshot
 * made whole installs. */
static void test_snapshot_checked_before_install(void **state)
{
    unsigned char junk[32], buf[512];
    /* one session of node 2: epoch 1, floor 5, expires 100, seqs 6 and 9 */
    unsigned char sessions[4 + 32 + 16];
    /* one record: id "ab" first applied at index 7 */
    const unsigned char blob[] = {2, 0, 'a', 'b', 7, 0, 0, 0, 0, 0, 0, 0};
    uint64_t malformed;
    size_t len;
    (void)state;
    memset(junk, 0xff, sizeof junk);
    assert_false(receive_snapshot(junk, sizeof junk, &malformed));
    assert_int_equal(malformed, 1);

    memset(sessions, 0, sizeof sessions);
    sessions[0] = 1;
    sessions[4] = 2;        /* node */
    sessions[8] = 1;        /* epoch */
    sessions[16] = 5;       /* floor */
    sessions[24] = 100;     /* expires */
    sessions[32] = 2;       /* n_seqs */
    sessions[36] = 6;
    sessions[44] = 9;

    /* whole: installed */
    len = snapshot_bytes(buf, sessions, sizeof sessions, blob, sizeof blob);
    assert_true(receive_snapshot(buf, len, &malformed));
    assert_int_equal(malformed, 0);
    /* no blob at all (the sender had no records): installed */
    len = snapshot_bytes(buf, sessions, sizeof sessions, blob, 0);
    assert_true(receive_snapshot(buf, len, &malformed));

    /* the blob cut short, or with an empty id: dropped */
    len = snapshot_bytes(buf, sessions, sizeof sessions, blob, sizeof blob - 1);
    assert_false(receive_snapshot(buf, len, &malformed));
    assert_int_equal(malformed, 1);
    {
        unsigned char empty_id[] = {0, 0, 7, 0, 0, 0, 0, 0, 0, 0};
        len = snapshot_bytes(buf, sessions, sizeof sessions, empty_id, sizeof empty_id);
        assert_false(receive_snapshot(buf, len, &malformed));
    }

    /* sessions out of order (seq 9 then 6): dropped */
    sessions[36] = 9;
    sessions[44] = 6;
    len = snapshot_bytes(buf, sessions, sizeof sessions, blob, sizeof blob);
    assert_false(receive_snapshot(buf, len, &malformed));
    assert_int_equal(malformed, 1);
    /* a session of node 0: dropped */
    sessions[36] = 6;
    sessions[44] = 9;
    sessions[4] = 0;
    len = snapshot_bytes(buf, sessions, sizeof sessions, blob, sizeof blob);
    assert_false(receive_snapshot(buf, len, &malformed));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_and_context_round_trip),
        cmocka_unit_test(test_random_bytes_never_decode_badly),
        cmocka_unit_test(test_restore_refuses_corrupt_state),
        cmocka_unit_test(test_group_state_round_trip),
        cmocka_unit_test(test_snapshot_checked_before_install),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
