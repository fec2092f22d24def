/*
 * test_mr_oom.c — memory running out while a node builds a batch.  Nothing the
 * batch hands the host may be missing from the node's own state, nor the reverse:
 * an applied entry without its event or its dedup record, an entry the host
 * stores but the group's in-memory log lacks.  The batch fails (MR_ENOMEM), the
 * host (here the harness) restores the node from its store, and the node takes
 * it up again.  Before, such batches went through: an event was never recorded, a
 * command id lost its record and a retry applied a second time on that node
 * alone, or a woken leader's log got shorter than its commit index and it wrote
 * another entry over a committed one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mr_internal.h"
#include "mr_cluster.h"

#define GROUP 1
#define N_CMDS 64

/* The allocator's context: the next growth of vec fails, once; or, while
 * countdown > 0, the allocation that brings it to 0. */
struct fail_once {
    struct mr_vec *vec;
    int failures;
    uint64_t countdown;
};

static bool fail_now(struct fail_once *f)
{
    if (f->countdown == 0 || --f->countdown > 0)
        return false;
    f->failures++;
    return true;
}

static void *a_malloc(void *ctx, size_t size)
{
    return fail_now(ctx) ? NULL : malloc(size);
}

static void a_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void *a_realloc(void *ctx, void *p, size_t size)
{
    struct fail_once *f = ctx;
    if (f->vec != NULL && p != NULL && p == f->vec->data) {
        f->vec = NULL;
        f->failures++;
        return NULL;
    }
    return fail_now(f) ? NULL : realloc(p, size);
}

static void cmd_id(int i, char *buf, size_t size)
{
    snprintf(buf, size, "k%d", i);
}

/* Group 1 on nodes 1..3 led by node 1; N_CMDS commands proposed at once, with the
 * next growth of the vector pick() chooses on `node` (node 2 for
 * apply_with_failure) failing while it applies them. */
static struct mrc_cluster *apply_with_failure_on(struct fail_once *f, struct raft_allocator *a,
                                                 struct mr_vec *(*pick)(struct mr_node *),
                                                 mr_node_id node)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    char id[16];
    a->ctx = f;
    a->malloc = a_malloc;
    a->realloc = a_realloc;
    a->free = a_free;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = 41;
    o.base.allocator = a;
    c = mrc_new(&o);
    assert_non_null(c);
    assert_int_equal(mr_create_group(mrc_node(c, 1), GROUP, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mr_propose(mrc_node(c, 1), GROUP, 2, "warm", 4, "x", 1, 1000), MR_OK);
    mrc_run(c, 10);
    for (int i = 0; i < N_CMDS; i++) {
        cmd_id(i, id, sizeof id);
        assert_int_equal(mr_propose(mrc_node(c, 1), GROUP, 100 + (uint64_t)i, id, strlen(id),
                                    "x", 1, 1000),
                         MR_OK);
    }
    f->vec = pick(mrc_node(c, node));
    mrc_run(c, 60);
    assert_int_equal(f->failures, 1);
    assert_true(mrc_restores(c) >= 1);
    return c;
}

static struct mrc_cluster *apply_with_failure(struct fail_once *f, struct raft_allocator *a,
                                              struct mr_vec *(*pick)(struct mr_node *))
{
    return apply_with_failure_on(f, a, pick, 2);
}

static struct mr_vec *events_of(struct mr_node *n)
{
    return &n->events;
}

static struct mr_vec *dedup_of(struct mr_node *n)
{
    return &n->dedup;
}

static struct mr_vec *completions_of(struct mr_node *n)
{
    return &n->completions;
}

/* Every command has its event on node 2 as on node 1, and the replicas agree. */
static void assert_events_whole(struct mrc_cluster *c)
{
    char id[16], err[256] = "";
    for (int i = 0; i < N_CMDS; i++) {
        cmd_id(i, id, sizeof id);
        assert_int_equal(mrc_command_events(c, 1, GROUP, id, strlen(id)), 1);
        assert_int_equal(mrc_command_events(c, 2, GROUP, id, strlen(id)), 1);
    }
    assert_int_equal(mrc_check(c, err, sizeof err), 0);
}

static void test_event_lost_to_oom_restores(void **state)
{
    struct fail_once f = {NULL, 0, 0};
    struct raft_allocator a;
    struct mrc_cluster *c = apply_with_failure(&f, &a, events_of);
    (void)state;
    assert_events_whole(c);
    mrc_free(c);
}

/* And the records: a retry of every id is answered with its first index on every
 * node, none applied again on node 2. */
static void test_dedup_record_lost_to_oom_restores(void **state)
{
    struct fail_once f = {NULL, 0, 0};
    struct raft_allocator a;
    struct mrc_cluster *c = apply_with_failure(&f, &a, dedup_of);
    char id[16];
    (void)state;
    assert_events_whole(c);
    for (int i = 0; i < N_CMDS; i++) {
        cmd_id(i, id, sizeof id);
        assert_true(mrc_has_dedup(c, 2, GROUP, id, strlen(id)));
        assert_int_equal(mr_propose(mrc_node(c, 1), GROUP, 500 + (uint64_t)i, id, strlen(id),
                                    "x", 1, 1000),
                         MR_OK);
    }
    mrc_run(c, 60);
    for (int i = 0; i < N_CMDS; i++) {
        struct mr_completion done;
        cmd_id(i, id, sizeof id);
        assert_true(mrc_completion(c, 1, 500 + (uint64_t)i, &done));
        assert_int_equal(done.result, MR_OK);
        assert_int_equal(mrc_command_events(c, 2, GROUP, id, strlen(id)), 1);
    }
    assert_events_whole(c);
    mrc_free(c);
}

/* A completion that cannot be kept fails the batch too (found by a review): it was
 * dropped, and its caller never answered.  The host answers every request in
 * flight when it restores the node (worker_node_stop). */
static void test_completion_lost_to_oom_restores(void **state)
{
    struct fail_once f = {NULL, 0, 0};
    struct raft_allocator a;
    struct mrc_cluster *c = apply_with_failure_on(&f, &a, completions_of, 1);
    (void)state;
    assert_events_whole(c);
    mrc_free(c);
}

/* One allocation fails, the k-th after a quiesced group is woken by proposals,
 * for every k up to a bound: whatever fails, every command that completed has one
 * event on every node, also after each node restarted from its store, and the
 * replicas agree.  (The group's in-memory storage, released while it was quiet,
 * is made again at the wake-up: failing it, or an append into it, once left the
 * leader's log shorter than its commit index.) */
static void test_one_failure_anywhere_in_a_wake_up(void **state)
{
    (void)state;
    for (uint64_t k = 1; k <= 400; k++) {
        struct fail_once f = {NULL, 0, 0};
        struct raft_allocator a = {&f, a_malloc, a_realloc, a_free};
        struct mrc_options o;
        struct mrc_cluster *c;
        struct mr_group_status st;
        mr_node_id members[3] = {1, 2, 3};
        mr_node_id leader;
        bool proposed[8];
        char id[16], err[256] = "";
        memset(&o, 0, sizeof o);
        o.n_nodes = 3;
        o.seed = 12;
        o.base.allocator = &a;
        c = mrc_new(&o);
        assert_non_null(c);
        assert_int_equal(mr_create_group(mrc_node(c, 1), GROUP, members, 3, 1), MR_OK);
        mrc_run(c, 60);
        leader = mrc_leader(c, GROUP, NULL);
        assert_true(leader != 0);
        assert_int_equal(mr_group_status(mrc_node(c, leader), GROUP, &st), MR_OK);
        assert_true(st.quiesced);
        f.countdown = k;
        for (int i = 0; i < 8; i++) {
            cmd_id(i, id, sizeof id);
            proposed[i] = mr_propose(mrc_node(c, leader), GROUP, 100 + (uint64_t)i, id,
                                     strlen(id), "x", 1, 200) == MR_OK;
            mrc_run(c, 1);
        }
        mrc_run(c, 100);
        f.countdown = 0; /* the restarts below succeed */
        for (mr_node_id n = 1; n <= 3; n++) {
            mrc_crash(c, n);
            assert_int_equal(mrc_restart(c, n), MR_OK);
            mrc_run(c, 60);
        }
        for (int i = 0; i < 8; i++) {
            struct mr_completion done;
            cmd_id(i, id, sizeof id);
            if (!proposed[i] || !mrc_completion(c, leader, 100 + (uint64_t)i, &done) ||
                done.result != MR_OK)
                continue;
            for (mr_node_id n = 1; n <= 3; n++)
                if (mrc_command_events(c, n, GROUP, id, strlen(id)) != 1)
                    fail_msg("k=%llu: %s has %zu events on node %u",
                             (unsigned long long)k, id,
                             mrc_command_events(c, n, GROUP, id, strlen(id)), n);
        }
        if (mrc_check(c, err, sizeof err) != 0)
            fail_msg("k=%llu: %s", (unsigned long long)k, err);
        mrc_free(c);
    }
}

/* ---- a snapshot's sessions lost to memory running out ---- */

#define N_EPOCHS 23 /* sessions in the snapshot: an allocation size nothing else has */
static size_t snap_fail_size;
static int snap_armed, snap_failures;

static void *snap_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (snap_armed && size % sizeof(struct mr_session) == 0 &&
        size >= snap_fail_size - 4 * sizeof(struct mr_session) && size <= snap_fail_size) {
        snap_armed = 0;
        snap_failures++;
        return NULL;
    }
    return malloc(size);
}

static void *snap_realloc(void *ctx, void *p, size_t size)
{
    (void)ctx;
    return realloc(p, size);
}

/* A generated-id command of session (node 2, epoch), seq 1, as node 2 forwards
 * it to the leader. */
static void forward(struct mrc_cluster *c, uint64_t epoch, const char *id)
{
    mrc_forward_generated(c, 1, 2, epoch, 1, 1, 100000, id);
}

/* Node 3, cut off, catches up by a snapshot whose sessions cannot be decoded for
 * want of memory.  It used to install the snapshot with its own old sessions (the
 * failure counted as malformed), and a late copy of a generated-id command the
 * others had applied applied on node 3 alone.  The batch fails now, and the node,
 * restored, takes the snapshot whole. */
static void test_snapshot_sessions_lost_to_oom(void **state)
{
    struct raft_allocator a = {NULL, snap_malloc, snap_realloc, a_free};
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    char id[16];
    (void)state;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = 64;
    o.base.allocator = &a;
    o.base.compact_threshold = 4;
    o.base.log_retention = 2;
    c = mrc_new(&o);
    assert_non_null(c);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    mrc_partition(c, 3, 1, true);
    mrc_partition(c, 3, 2, true);
    forward(c, 5000, "dup");
    for (int i = 0; i < N_EPOCHS - 1; i++) {
        snprintf(id, sizeof id, "e%d", i);
        forward(c, 6000 + (uint64_t)i, id);
    }
    for (mr_node_id n = 1; n <= 2; n++)
        assert_int_equal(mrc_command_events(c, n, 1, "dup", 3), 1);
    snap_fail_size = N_EPOCHS * sizeof(struct mr_session);
    snap_armed = 1;
    mrc_heal_all(c);
    mrc_run(c, 40);
    snap_armed = 0;
    assert_int_equal(snap_failures, 1);
    assert_true(mrc_snapshot_installed(c, 3, 1));
    assert_true(mrc_restores(c) >= 1);
    forward(c, 5000, "dup"); /* a late copy, within its bound */
    mrc_run(c, 20);
    assert_int_equal(mrc_command_events(c, 3, 1, "dup", 3), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* One allocation fails, the k-th after node 3, cut off while its group compacted,
 * is healed and catches up by a snapshot, for every k up to a bound.  The core
 * once left a replica whose install failed half-way with part of its
 * configuration and no voters counted — a quorum of one — and the layer carried
 * on with it; now a step that runs out of memory fails the batch, and the node,
 * restored, takes the snapshot again.  Whatever fails, the replicas agree and a
 * later command commits everywhere. */
static void test_one_failure_anywhere_in_a_snapshot_catch_up(void **state)
{
    (void)state;
    for (uint64_t k = 1; k <= 300; k++) {
        struct fail_once f = {NULL, 0, 0};
        struct raft_allocator a = {&f, a_malloc, a_realloc, a_free};
        struct mrc_options o;
        struct mrc_cluster *c;
        struct mr_completion done;
        mr_node_id members[3] = {1, 2, 3};
        mr_node_id leader;
        char id[16], err[256] = "";
        memset(&o, 0, sizeof o);
        o.n_nodes = 3;
        o.seed = 31;
        o.base.allocator = &a;
        o.base.compact_threshold = 4;
        o.base.log_retention = 2;
        c = mrc_new(&o);
        assert_non_null(c);
        assert_int_equal(mr_create_group(mrc_node(c, 1), GROUP, members, 3, 1), MR_OK);
        mrc_run(c, 40);
        leader = mrc_leader(c, GROUP, NULL);
        assert_int_equal(leader, 1);
        mrc_partition(c, 3, 1, true);
        mrc_partition(c, 3, 2, true);
        for (int i = 0; i < 12; i++) {
            cmd_id(i, id, sizeof id);
            assert_int_equal(mr_propose(mrc_node(c, 1), GROUP, 100 + (uint64_t)i, id,
                                        strlen(id), "x", 1, 200), MR_OK);
            mrc_run(c, 3);
        }
        f.countdown = k;
        mrc_heal_all(c);
        mrc_run(c, 60);
        f.countdown = 0;
        assert_true(mrc_snapshot_installed(c, 3, GROUP));
        /* Node 3 alone: a replica with a whole configuration does not elect itself. */
        mrc_partition(c, 3, 1, true);
        mrc_partition(c, 3, 2, true);
        mrc_run(c, 100);
        mrc_heal_all(c);
        mrc_run(c, 100);
        leader = mrc_leader(c, GROUP, NULL);
        assert_true(leader != 0);
        assert_int_equal(mr_propose(mrc_node(c, leader), GROUP, 900, "after", 5, "y", 1, 200),
                         MR_OK);
        mrc_run(c, 60);
        if (!mrc_completion(c, leader, 900, &done) || done.result != MR_OK)
            fail_msg("k=%llu: the command after the catch-up did not complete",
                     (unsigned long long)k);
        for (mr_node_id n = 1; n <= 3; n++)
            if (mrc_command_events(c, n, GROUP, "after", 5) != 1)
                fail_msg("k=%llu: node %u has %zu events of the later command",
                         (unsigned long long)k, n, mrc_command_events(c, n, GROUP, "after", 5));
        if (mrc_check(c, err, sizeof err) != 0)
            fail_msg("k=%llu: %s", (unsigned long long)k, err);
        mrc_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_lost_to_oom_restores),
        cmocka_unit_test(test_dedup_record_lost_to_oom_restores),
        cmocka_unit_test(test_completion_lost_to_oom_restores),
        cmocka_unit_test(test_one_failure_anywhere_in_a_wake_up),
        cmocka_unit_test(test_snapshot_sessions_lost_to_oom),
        cmocka_unit_test(test_one_failure_anywhere_in_a_snapshot_catch_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
