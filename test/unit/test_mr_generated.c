/*
 * test_mr_generated.c — commands with a generated id (mr_propose_generated): the
 * bound each copy carries, expiry decided by the log position on every replica,
 * the dedup record's expires_after, and the outcome a proposer reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

#define WINDOW 5

static struct mrc_cluster *cluster(uint64_t seed)
{
    struct mrc_options o;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = seed;
    o.base.generated_id_window = WINDOW;
    return mrc_new(&o);
}

struct dedup_watch {
    raft_index index, expires_after;
    size_t seen;
};

static void watch_dedup(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct dedup_watch *w = arg;
    for (size_t i = 0; node == 2 && i < b->n_dedup; i++)
        if (b->dedup[i].command_id_len == 2 && memcmp(b->dedup[i].command_id, "g1", 2) == 0) {
            w->seen++;
            w->index = b->dedup[i].index;
            w->expires_after = b->dedup[i].expires_after;
        }
}

static void test_generated_command_carries_its_bound(void **state)
{
    struct mrc_cluster *c = cluster(61);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_group_status st;
    struct mr_completion comp;
    struct dedup_watch w;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 1, &st), MR_OK);
    memset(&w, 0, sizeof w);
    mrc_set_batch_observer(c, watch_dedup, &w);
    assert_int_equal(mr_propose_generated(mrc_node(c, 2), 1, 7, "g1", 2, "x", 1, 0), MR_OK);
    mrc_run(c, 5);
    assert_true(mrc_completion(c, 2, 7, &comp));
    assert_int_equal(comp.result, MR_OK);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_command_events(c, n, 1, "g1", 2), 1);
    assert_int_equal(w.seen, 1);
    assert_int_equal(w.index, comp.index);
    assert_int_equal(w.expires_after, st.commit + WINDOW);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Node 3 proposes while cut off from the leader; more than WINDOW entries commit
 * without it; when it is back its copy lands past the bound: no node applies it,
 * and node 3 reports that it expired (it applied the whole window itself: the
 * outcome is known). */
static void test_copy_past_its_bound_expires_everywhere(void **state)
{
    struct mrc_cluster *c = cluster(62);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion comp;
    struct mr_counters before, after;
    char id[8];
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    mrc_partition(c, 3, 1, true);
    assert_int_equal(mr_propose_generated(mrc_node(c, 3), 1, 9, "late", 4, "x", 1, 0), MR_OK);
    mrc_run(c, 2);
    for (int i = 0; i < WINDOW + 3; i++) {
        id[0] = 'k';
        id[1] = (char)('a' + i);
        assert_int_equal(mr_propose(mrc_node(c, 1), 1, 100 + (uint64_t)i, id, 2, "v", 1, 0),
                         MR_OK);
        mrc_run(c, 1);
    }
    /* Healed, node 3 catches up from the leader and resubmits its command after
     * proposal_retry_ticks: that copy lands past the bound. */
    mr_get_counters(mrc_node(c, 3), &before);
    mrc_heal_all(c);
    mrc_run(c, 60);
    assert_true(mrc_completion(c, 3, 9, &comp));
    assert_int_equal(comp.result, MR_EEXPIRED);
    mr_get_counters(mrc_node(c, 3), &after);
    assert_true(after.expired > before.expired);
    for (mr_node_id n = 1; n <= 3; n++) {
        assert_int_equal(mrc_command_events(c, n, 1, "late", 4), 0);
        assert_false(mrc_has_dedup(c, n, 1, "late", 4));
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_command_carries_its_bound),
        cmocka_unit_test(test_copy_past_its_bound_expires_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
