/*
 * test_mr_duplicate_create.c — one group id created on two nodes before either
 * learned of the other: the misuse the SPEC rules out ("called once"), which no
 * node can refuse alone.  Each call starts a group of its own, with replica 1 on its
 * creator, so each group's messages name replica ids that the other one binds to
 * other nodes.  A message for a higher replica id of this node otherwise means that
 * ours was removed and this node added again, and replaces ours: the two creators
 * destroyed each other's replica, and every command committed in either.  Such a
 * message is now refused, counted as a conflict, and the replica it would have
 * replaced is kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

/* Events of type `type` node `node` recorded for group g. */
static size_t events_of(struct mrc_cluster *c, mr_node_id node, mr_group_id g, int type)
{
    size_t k = 0;
    for (size_t i = 0; i < mrc_event_count(c, node); i++) {
        const struct mrc_event *e = mrc_event_at(c, node, i);
        k += e->group == g && e->type == type;
    }
    return k;
}

static uint64_t conflicts(struct mrc_cluster *c, mr_node_id node)
{
    struct mr_counters k;
    mr_get_counters(mrc_node(c, node), &k);
    return k.conflicts;
}

/* Nodes 1 and 2 cannot reach each other while both create group 5 with members 1,
 * 2 and 3; each adds the other as replica 2.  Once they meet, each keeps its own
 * replica 1: neither group is dropped, and each counts the other's messages. */
static void test_two_creators_keep_their_replicas(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 77);
    mr_node_id members[3] = {1, 2, 3};
    (void)state;
    mrc_partition(c, 1, 2, true);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, members, 3, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 2), 5, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    mrc_heal_all(c);
    mrc_run(c, 400);
    for (mr_node_id n = 1; n <= 2; n++) {
        struct mr_group_status st;
        assert_int_equal(events_of(c, n, 5, MR_EVENT_GROUP_REMOVED), 0);
        assert_int_equal(events_of(c, n, 5, MR_EVENT_GROUP_CREATED), 1);
        assert_int_equal(mr_group_status(mrc_node(c, n), 5, &st), MR_OK);
        assert_int_equal(st.replica_id, 1);
    }
    for (mr_node_id n = 1; n <= 2; n++) {
        assert_true(conflicts(c, n) > 0);
        assert_int_equal(mr_last_conflict(mrc_node(c, n)), 5);
    }
    assert_int_equal(conflicts(c, 3), 0);
    assert_int_equal(mr_last_conflict(mrc_node(c, 3)), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_creators_keep_their_replicas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
