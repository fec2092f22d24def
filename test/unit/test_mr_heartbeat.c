/*
 * test_mr_heartbeat.c — coalesced heartbeats: at most one heartbeat-carrying
 * envelope per ordered node pair per heartbeat interval whatever the number of
 * groups; every entry carries its group's term and commit; a heartbeat with a higher
 * term for one group never disturbs another group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

static struct mrc_cluster *cluster(uint64_t seed, uint32_t quiesce_ticks)
{
    struct mrc_options o;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = seed;
    o.base.election_ticks = 10;
    o.base.heartbeat_ticks = 2;
    o.base.quiesce_ticks = quiesce_ticks;
    return mrc_new(&o);
}

static void test_envelopes_per_interval_bounded(void **state)
{
    struct mrc_cluster *c = cluster(21, UINT32_MAX); /* never quiesce */
    mr_node_id members[3] = {1, 2, 3};
    uint64_t before[4][4];
    struct mr_counters ca, cb;
    (void)state;
    for (mr_group_id g = 1; g <= 200; g++)
        assert_int_equal(mr_create_group(mrc_node(c, (mr_node_id)(1 + g % 3)), g, members, 3, g),
                         MR_OK);
    mrc_run(c, 40);
    for (mr_node_id a = 1; a <= 3; a++)
        for (mr_node_id b = 1; b <= 3; b++)
            before[a][b] = mrc_envelopes(c, a, b);
    mr_get_counters(mrc_node(c, 1), &ca);
    mrc_run(c, 40); /* 20 intervals */
    mr_get_counters(mrc_node(c, 1), &cb);
    for (mr_node_id a = 1; a <= 3; a++)
        for (mr_node_id b = 1; b <= 3; b++)
            if (a != b)
                assert_true(mrc_envelopes(c, a, b) - before[a][b] <= 2 * 20);
    /* ... while carrying one entry per group and follower each interval. */
    assert_true(cb.heartbeats_sent - ca.heartbeats_sent >= 20 * 2 * 60);
    assert_int_equal(mr_active_group_count(mrc_node(c, 1)), 200);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_higher_term_in_one_group_only(void **state)
{
    struct mrc_cluster *c = cluster(22, 0);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_group_status a0, b0, a1, b1;
    struct mr_heartbeat hb;
    struct mr_envelope env;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 2, members, 3, 2), MR_OK);
    mrc_run(c, 30);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 1, &a0), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 2, &b0), MR_OK);
    /* Node 3 claims leadership of group 1 in a much higher term (coalesced entry). */
    memset(&hb, 0, sizeof hb);
    hb.group = 1;
    hb.from = 3;
    hb.to = a0.replica_id;
    hb.term = a0.term + 5;
    hb.commit = a0.commit;
    memset(&env, 0, sizeof env);
    env.from_node = 3;
    env.to_node = 2;
    env.heartbeats = &hb;
    env.n_heartbeats = 1;
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 1, &a1), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 2, &b1), MR_OK);
    assert_int_equal(a1.term, a0.term + 5);
    assert_int_equal(b1.term, b0.term);
    assert_int_equal(b1.leader_node, b0.leader_node);
    assert_int_equal(b1.quiesced, b0.quiesced);
    /* An entry whose sender contradicts the replica map is refused. */
    hb.group = 2;
    hb.from = 1; /* replica 1 of group 2 lives on node 1, not 3 */
    hb.to = b0.replica_id;
    hb.term = b0.term + 9;
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 2, &b1), MR_OK);
    assert_int_equal(b1.term, b0.term);
    mrc_free(c);
}

static void test_read_index_not_delayed_by_coalescing(void **state)
{
    struct mrc_cluster *c = cluster(23, UINT32_MAX);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion r;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    assert_int_equal(mr_read_index(mrc_node(c, 1), 1, 5, 100), MR_OK);
    mrc_settle(c); /* no tick: the read round leaves at once */
    assert_true(mrc_completion(c, 1, 5, &r));
    assert_int_equal(r.result, MR_OK);
    mrc_free(c);
}

/* Heartbeats configured farther apart than the election timeout are brought within
 * half of it: otherwise followers time out between two of them, peers look down,
 * and the groups elect again and again. */
static void test_heartbeats_within_half_an_election_timeout(void **state)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    raft_term term, later;
    (void)state;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = 5;
    o.base.election_ticks = 10;
    o.base.heartbeat_ticks = 25;
    c = mrc_new(&o);
    assert_non_null(c);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 100);
    assert_int_not_equal(mrc_leader(c, 1, &term), 0);
    for (int i = 0; i < 20; i++) { /* an active group: a command now and then */
        assert_int_equal(mr_propose(mrc_node(c, mrc_leader(c, 1, NULL)), 1, 100 + (uint64_t)i,
                                    &i, sizeof i, "v", 1, 0),
                         MR_OK);
        mrc_run(c, 25);
    }
    assert_int_not_equal(mrc_leader(c, 1, &later), 0);
    assert_int_equal(later, term);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeats_within_half_an_election_timeout),
        cmocka_unit_test(test_envelopes_per_interval_bounded),
        cmocka_unit_test(test_higher_term_in_one_group_only),
        cmocka_unit_test(test_read_index_not_delayed_by_coalescing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
