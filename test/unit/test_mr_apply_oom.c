/*
 * test_mr_apply_oom.c — memory running out while a node applies committed
 * entries.  An applied entry must not be persisted without its event or its
 * dedup record: the batch fails (MR_ENOMEM), the host (here the harness) restores
 * the node from its store, and the node applies the entries again.  Before, the
 * batch went through without them: an event was never recorded, or a command id
 * lost its record and a retry of it applied a second time on that node alone.
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

/* The next growth of this vector fails, once (the allocator's context). */
struct fail_once {
    struct mr_vec *vec;
    int failures;
};

static void *a_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
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
    return realloc(p, size);
}

static void cmd_id(int i, char *buf, size_t size)
{
    snprintf(buf, size, "k%d", i);
}

/* Group 1 on nodes 1..3 led by node 1; N_CMDS commands proposed at once, with the
 * next growth of node 2's vector chosen by pick() failing while it applies them. */
static struct mrc_cluster *apply_with_failure(struct fail_once *f, struct raft_allocator *a,
                                              struct mr_vec *(*pick)(struct mr_node *))
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
    f->vec = pick(mrc_node(c, 2));
    mrc_run(c, 60);
    assert_int_equal(f->failures, 1);
    assert_true(mrc_restores(c) >= 1);
    return c;
}

static struct mr_vec *events_of(struct mr_node *n)
{
    return &n->events;
}

static struct mr_vec *dedup_of(struct mr_node *n)
{
    return &n->dedup;
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
    struct fail_once f = {NULL, 0};
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
    struct fail_once f = {NULL, 0};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_lost_to_oom_restores),
        cmocka_unit_test(test_dedup_record_lost_to_oom_restores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
