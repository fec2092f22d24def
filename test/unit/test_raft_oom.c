/* test_raft_oom.c — the core out of memory: a call that fails changes nothing it
 * cannot finish.  One allocation fails, the k-th from a chosen point, for every k
 * up to a bound (found by a review: a half-built configuration after a failed
 * snapshot install made a quorum of one, and the replica elected itself alone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "raft.h"
#include "raft_unit.h"
#include "test_cluster.h"

/* left > 0: the left-th allocation from now fails, once. */
struct countdown {
    long left;
    long failures;
};

static bool fail_now(struct countdown *c)
{
    if (c->left <= 0 || --c->left > 0)
        return false;
    c->failures++;
    return true;
}

static void *cd_malloc(void *ctx, size_t n) { return fail_now(ctx) ? NULL : malloc(n); }
static void *cd_realloc(void *ctx, void *p, size_t n)
{
    return fail_now(ctx) ? NULL : realloc(p, n);
}
static void cd_free(void *ctx, void *p) { (void)ctx; free(p); }

/* Three voters running on the failing allocator (restarted to take it up). */
static void three_on(struct test_cluster *tc, struct raft_allocator *a, uint64_t seed)
{
    assert_int_equal(tc_init(tc, 3, NULL, seed), 0);
    tc->alloc = a;
    for (int i = 0; i < 3; i++) {
        tc_crash(tc, i);
        assert_int_equal(tc_restart(tc, i), 0);
    }
}

static uint32_t voters_of(struct raft *r)
{
    struct raft_conf_state cs;
    raft_get_conf_state(r, &cs);
    return cs.n_voters;
}

/* A conf change refused for lack of memory is not in the log; one that is in the
 * log is pending, and a second one is refused until it applies (§4.1). */
static void test_a_failed_conf_change_is_not_in_the_log(void **state)
{
    (void)state;
    for (long k = 1; k <= 12; k++) {
        struct test_cluster tc;
        struct countdown cd = {0, 0};
        struct raft_allocator a = {&cd, cd_malloc, cd_realloc, cd_free};
        struct raft_conf_change cc = {0}, cc2 = {0};
        three_on(&tc, &a, 7);
        assert_int_equal(tc_elect(&tc, 0), 0);
        tc_tick_stabilize(&tc, 3);
        struct raft *l = R(&tc, 0);
        raft_index last0 = raft_get_last_index(l);
        cc.type = RAFT_CC_ADD_LEARNER;
        cc.replica = 4;
        cd.left = k;
        int rc = raft_propose_conf_change(l, &cc, NULL, NULL);
        cd.left = 0;
        if (rc != RAFT_OK) {
            assert_int_equal(rc, RAFT_ENOMEM);
            assert_int_equal(raft_get_last_index(l), last0);
        } else {
            assert_int_equal(raft_get_last_index(l), last0 + 1);
            assert_true(raft_conf_change_pending(l));
            cc2.type = RAFT_CC_REMOVE;
            cc2.replica = 3;
            assert_int_equal(raft_propose_conf_change(l, &cc2, NULL, NULL), RAFT_ECONFPENDING);
        }
        tc.error = 0;
        tc_destroy(&tc);
    }
}

/* The k-th allocation of node 1's install of a snapshot fails. */
struct snap_probe {
    struct test_cluster *tc;
    struct countdown *cd;
    long k;
    bool done;
    int rc;
};

static bool fail_in_install(void *arg, const struct raft_message *m)
{
    struct snap_probe *sp = arg;
    if (m->type != RAFT_MSG_SNAPSHOT || m->to != 1 || sp->done)
        return true;
    sp->done = true;
    sp->cd->left = sp->k;
    sp->rc = raft_step(sp->tc->nodes[0].r, m);
    sp->cd->left = 0;
    return false; /* delivered here */
}

/* Whatever allocation of a snapshot install fails, the replica keeps a whole
 * configuration (the old or the snapshot's, three voters both): cut off, it does not
 * elect itself, and the group stays safe and live once healed. */
static void test_a_failed_snapshot_install_keeps_a_whole_configuration(void **state)
{
    (void)state;
    for (long k = 1; k <= 10; k++) {
        struct test_cluster tc;
        struct countdown cd = {0, 0};
        struct raft_allocator a = {&cd, cd_malloc, cd_realloc, cd_free};
        struct snap_probe sp = {&tc, &cd, k, false, 0};
        char buf[256];
        raft_index idx = 0;
        three_on(&tc, &a, 11);
        tc.snapshot_every = 5;
        tc.compact_keep = 0;
        assert_int_equal(tc_elect(&tc, 1), 0);
        tc_tick_stabilize(&tc, 2);
        tc_isolate(&tc, 0);
        for (int i = 0; i < 20; i++) {
            char cmd[16];
            snprintf(cmd, sizeof cmd, "c%d", i);
            assert_int_equal(tc_propose(&tc, 1, cmd, NULL), RAFT_OK);
            tc_stabilize(&tc, 0);
        }
        tc_heal(&tc);
        tc.filter = fail_in_install;
        tc.filter_arg = &sp;
        for (int t = 0; t < 30 && !sp.done; t++)
            tc_tick_stabilize(&tc, 1);
        assert_true(sp.done);
        tc.filter = NULL;
        assert_int_equal(voters_of(R(&tc, 0)), 3);
        assert_int_equal(raft_progress_count(R(&tc, 0)), 3);
        tc_isolate(&tc, 0);
        tc_tick_stabilize(&tc, 40);
        assert_int_not_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
        tc_heal(&tc);
        tc_tick_stabilize(&tc, 100);
        int l = tc_leader(&tc);
        assert_true(l >= 0);
        assert_int_equal(tc_propose(&tc, l, "after-heal", &idx), RAFT_OK);
        tc_tick_stabilize(&tc, 100);
        for (int i = 0; i < 3; i++)
            assert_true(tc_applied_contains(&tc, i, "after-heal"));
        if (tc_check_safety(&tc, buf, sizeof buf) != 0)
            fail_msg("k=%ld: %s", k, buf);
        assert_int_equal(tc.error, 0);
        tc_destroy(&tc);
    }
}

/* A follower's Ready fails while it applies "add voter 4": once it applies the
 * change after all, its configuration, its progress and what it stores agree. */
static void test_a_failed_conf_apply_changes_nothing(void **state)
{
    (void)state;
    for (long k = 1; k <= 8; k++) {
        struct test_cluster tc;
        struct countdown cd = {0, 0};
        struct raft_allocator a = {&cd, cd_malloc, cd_realloc, cd_free};
        struct raft_conf_change cc = {0};
        struct raft_conf_state core, stored;
        struct raft_hard_state hs;
        struct raft_storage st;
        raft_index idx = 0;
        uint32_t progress_voters = 0;
        bool failed_once = false;
        three_on(&tc, &a, 5);
        assert_int_equal(tc_elect(&tc, 0), 0);
        tc_tick_stabilize(&tc, 2);
        cc.type = RAFT_CC_ADD_VOTER;
        cc.replica = 4;
        assert_int_equal(raft_propose_conf_change(R(&tc, 0), &cc, &idx, NULL), RAFT_OK);
        for (int step = 0; step < 1000; step++) {
            if (raft_get_commit(R(&tc, 1)) >= idx && raft_get_applied(R(&tc, 1)) < idx) {
                cd.left = k;
                failed_once = tc_process(&tc, 1) != RAFT_OK;
                cd.left = 0;
                break;
            }
            if (!tc_deliver_one(&tc))
                tc_tick(&tc);
        }
        tc.error = 0;
        tc_tick_stabilize(&tc, 3);
        assert_true(raft_get_applied(R(&tc, 1)) >= idx);
        raft_get_conf_state(R(&tc, 1), &core);
        raft_memory_storage_interface(tc.nodes[1].ms, &st);
        st.initial_state(st.user, &hs, &stored);
        for (size_t i = 0; i < raft_progress_count(R(&tc, 1)); i++) {
            struct raft_progress_info pi;
            raft_progress_at(R(&tc, 1), i, &pi);
            if (!pi.is_learner)
                progress_voters++;
        }
        if (core.n_voters != 4 || progress_voters != 4 || stored.n_voters != 4 ||
            core.n_learners != 0)
            fail_msg("k=%ld (ready %s): voters %u, learners %u, progress voters %u, stored %u",
                     k, failed_once ? "failed" : "passed", core.n_voters, core.n_learners,
                     progress_voters, stored.n_voters);
        tc_destroy(&tc);
    }
}

/* The first vote granted to node 1 arrives with the k-th allocation failing. */
struct vote_probe {
    struct test_cluster *tc;
    struct countdown *cd;
    long k;
    bool done;
    raft_term term;
    raft_index last;
};

static bool fail_in_win(void *arg, const struct raft_message *m)
{
    struct vote_probe *vp = arg;
    struct raft *r = vp->tc->nodes[0].r;
    if (m->type != RAFT_MSG_VOTE_RESP || m->to != 1 || m->reject || vp->done ||
        raft_get_role(r) != RAFT_CANDIDATE || m->term != raft_get_term(r))
        return true;
    vp->done = true;
    vp->term = raft_get_term(r);
    vp->last = raft_get_last_index(r);
    vp->cd->left = vp->k;
    (void)raft_step(r, m);
    vp->cd->left = 0;
    return false;
}

/* A leader that cannot append its term's no-op steps down in its term (§6.4:
 * without it, reads would wait for a command to commit in the term); whatever
 * allocation fails, a leader holds the no-op, and the group elects again. */
static void test_a_leader_holds_its_noop_or_steps_down(void **state)
{
    (void)state;
    int stepped_down = 0;
    for (long k = 1; k <= 8; k++) {
        struct test_cluster tc;
        struct countdown cd = {0, 0};
        struct raft_allocator a = {&cd, cd_malloc, cd_realloc, cd_free};
        struct vote_probe vp = {&tc, &cd, k, false, 0, 0};
        struct raft *r;
        three_on(&tc, &a, 3);
        tc.filter = fail_in_win;
        tc.filter_arg = &vp;
        assert_int_equal(raft_campaign(R(&tc, 0)), RAFT_OK);
        for (int t = 0; t < 30 && !vp.done; t++)
            tc_tick_stabilize(&tc, 1);
        assert_true(vp.done);
        tc.filter = NULL;
        r = R(&tc, 0);
        if (raft_get_role(r) == RAFT_LEADER) {
            assert_int_equal(raft_get_last_index(r), vp.last + 1);
        } else if (raft_get_term(r) == vp.term && cd.failures > 0) {
            assert_int_equal(raft_get_role(r), RAFT_FOLLOWER);
            assert_int_equal(raft_get_last_index(r), vp.last);
            stepped_down++;
        }
        tc_tick_stabilize(&tc, 60);
        int l = tc_leader(&tc);
        assert_true(l >= 0);
        assert_int_equal(tc_propose(&tc, l, "x", NULL), RAFT_OK);
        tc_tick_stabilize(&tc, 30);
        for (int i = 0; i < 3; i++)
            assert_true(tc_applied_contains(&tc, i, "x"));
        assert_int_equal(tc.error, 0);
        tc_destroy(&tc);
    }
    assert_true(stepped_down > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_failed_conf_change_is_not_in_the_log),
        cmocka_unit_test(test_a_failed_snapshot_install_keeps_a_whole_configuration),
        cmocka_unit_test(test_a_failed_conf_apply_changes_nothing),
        cmocka_unit_test(test_a_leader_holds_its_noop_or_steps_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
