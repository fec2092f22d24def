/*
 * test_mr_batch.c — one batch for all groups (one write per group, one envelope per
 * destination), completions travel with the writes that make them true, restart
 * from the persisted model without duplicates, malformed input, shutdown, durable
 * notices in the late part of envelopes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_internal.h" /* mr_entry_encode: a hand-made PROPOSE */
#include "mr_cluster.h"

struct observed {
    size_t max_writes, max_envelopes_to_one, batches, bad_completions, completions;
    bool dup_dest;
};

static void observe(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct observed *o = arg;
    if (node != 1)
        return;
    o->batches++;
    if (b->n_groups > o->max_writes)
        o->max_writes = b->n_groups;
    for (size_t i = 0; i < b->n_envelopes; i++)
        for (size_t k = 0; k < i; k++)
            if (b->envelopes[i].to_node == b->envelopes[k].to_node)
                o->dup_dest = true;
    /* A command completion comes with the dedup record of its first application
     * (the fact a restart re-applies against; the meta row's applied index may
     * lag, MR_META_LAG). */
    for (size_t i = 0; i < b->n_completions; i++) {
        const struct mr_completion *c = &b->completions[i];
        bool covered = false;
        if (c->kind != MR_REQ_COMMAND || c->result != MR_OK)
            continue;
        o->completions++;
        for (size_t k = 0; k < b->n_dedup; k++)
            if (b->dedup[k].group == c->group && b->dedup[k].index == c->index)
                covered = true;
        if (!covered)
            o->bad_completions++;
    }
}

static void test_one_batch_for_all_groups(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 41);
    mr_node_id members[3] = {1, 2, 3};
    struct observed o;
    char cmd[16];
    (void)state;
    for (mr_group_id g = 1; g <= 50; g++)
        assert_int_equal(mr_create_group(mrc_node(c, 1), g, members, 3, g), MR_OK);
    mrc_run(c, 40);
    memset(&o, 0, sizeof o);
    mrc_set_batch_observer(c, observe, &o);
    for (mr_group_id g = 1; g <= 50; g++) {
        snprintf(cmd, sizeof cmd, "c%llu", (unsigned long long)g);
        assert_int_equal(mr_propose(mrc_node(c, 1), g, 100 + g, cmd, strlen(cmd), "p", 1, 100),
                         MR_OK);
    }
    mrc_settle(c);
    assert_int_equal(o.max_writes, 50);
    assert_false(o.dup_dest);
    assert_int_equal(o.completions, 50);
    assert_int_equal(o.bad_completions, 0);
    /* Commit needs one round trip: a handful of batches, not one per group. */
    assert_true(o.batches <= 6);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_restart_without_duplicates(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 42);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion comp, again;
    char cmd[16];
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    bool skipped[100] = {false};
    for (int i = 0; i < 100; i++) {
        mr_node_id on = (mr_node_id)(1 + i % 3);
        snprintf(cmd, sizeof cmd, "k%d", i);
        if (i == 40)
            mrc_crash(c, 2);
        if (i == 70)
            assert_int_equal(mrc_restart(c, 2), MR_OK);
        if (!mrc_is_up(c, on)) {
            skipped[i] = true;
            continue;
        }
        assert_int_equal(mr_propose(mrc_node(c, on), 1, 10 + i, cmd, strlen(cmd), "v", 1, 200),
                         MR_OK);
        if (i % 7 == 0)
            mrc_tick(c);
    }
    mrc_run(c, 60);
    {
        size_t acked = 0;
        for (int i = 0; i < 100; i++)
            acked += mrc_completion(c, (mr_node_id)(1 + i % 3), 10 + i, NULL);
        assert_true(acked >= 80);
    }
    for (mr_node_id n = 1; n <= 3; n++)
        for (int i = 0; i < 100; i++) {
            snprintf(cmd, sizeof cmd, "k%d", i);
            struct mr_completion ack;
            /* Only acknowledged commands must be there (a crash loses the requests
             * that were still in memory, with their completions). */
            if (skipped[i] || !mrc_completion(c, (mr_node_id)(1 + i % 3), 10 + i, &ack) ||
                ack.result != MR_OK)
                continue;
            assert_true(mrc_command_events(c, n, 1, cmd, strlen(cmd)) == 1 ||
                        (mrc_snapshot_installed(c, n, 1) &&
                         mrc_has_dedup(c, n, 1, cmd, strlen(cmd))));
        }
    /* The same id again after the restart: the first index, no new event. */
    assert_true(mrc_completion(c, 1, 10, &comp));
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 999, "k0", 2, "v", 1, 100), MR_OK);
    mrc_run(c, 10);
    assert_true(mrc_completion(c, 2, 999, &again));
    assert_int_equal(again.result, MR_OK);
    assert_int_equal(again.index, comp.index);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_true(mrc_command_events(c, n, 1, "k0", 2) <= 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_malformed_entries_are_skipped(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 43);
    struct raft_entry es[6];
    unsigned char bad_cc[5] = {1, 2, 3, 4, 5};
    /* refusals (kind 5): a reason that is none, and no command id */
    unsigned char bad_reason[5] = {5, 1, 0, 'r', 7};
    unsigned char refusal_without_id[4] = {5, 0, 0, 1};
    unsigned char bad_normal[4] = {9, 0, 0, 0};
    unsigned char short_cmd[5] = {1, 200, 0, 'x', 'y'};
    unsigned char good[5] = {1, 1, 0, 'g', 'p'};
    struct mr_message m;
    struct mr_counters before, after;
    (void)state;
    memset(es, 0, sizeof es);
    es[0] = (struct raft_entry){1, 1, bad_normal, sizeof bad_normal, RAFT_ENTRY_NORMAL};
    es[1] = (struct raft_entry){1, 2, bad_cc, sizeof bad_cc, RAFT_ENTRY_CONF_CHANGE};
    es[2] = (struct raft_entry){1, 3, short_cmd, sizeof short_cmd, RAFT_ENTRY_NORMAL};
    es[3] = (struct raft_entry){1, 4, bad_reason, sizeof bad_reason, RAFT_ENTRY_NORMAL};
    es[4] = (struct raft_entry){1, 5, refusal_without_id, sizeof refusal_without_id,
                                RAFT_ENTRY_NORMAL};
    es[5] = (struct raft_entry){1, 6, good, sizeof good, RAFT_ENTRY_NORMAL};
    memset(&m, 0, sizeof m);
    m.group = 500;
    m.msg.type = RAFT_MSG_APPEND;
    m.msg.from = 1;
    m.msg.to = 2;
    m.msg.term = 1;
    m.msg.commit = 6;
    m.msg.entries = es;
    m.msg.n_entries = 6;
    mr_get_counters(mrc_node(c, 2), &before);
    assert_int_equal(mrc_receive_one(c, 1, 2, &m), MR_OK);
    mrc_settle(c);
    mr_get_counters(mrc_node(c, 2), &after);
    assert_int_equal(after.malformed - before.malformed, 5);
    assert_int_equal(mrc_command_events(c, 2, 500, "g", 1), 1);
    mrc_free(c);
}

static void test_shutdown_completes_everything(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 44);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion comp;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    mrc_partition(c, 2, 1, true);
    mrc_partition(c, 2, 3, true);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 5, "s", 1, "v", 1, 0), MR_OK);
    assert_int_equal(mr_read_index(mrc_node(c, 2), 1, 6, 0), MR_OK);
    mrc_run(c, 3);
    assert_int_equal(mr_shutdown(mrc_node(c, 2)), MR_OK);
    mrc_settle(c);
    assert_true(mrc_completion(c, 2, 5, &comp));
    assert_int_equal(comp.result, MR_ESTOPPED);
    assert_true(mrc_completion(c, 2, 6, &comp));
    assert_int_equal(comp.result, MR_ESTOPPED);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 7, "t", 1, "v", 1, 0), MR_ESTOPPED);
    /* Deadlines: a request that cannot finish times out exactly once. */
    assert_int_equal(mr_propose(mrc_node(c, 3), 1, 8, "u", 1, "v", 1, 0), MR_OK);
    mrc_crash(c, 1);
    assert_int_equal(mr_propose(mrc_node(c, 3), 1, 9, "w", 1, "v", 1, 5), MR_OK);
    mrc_run(c, 8);
    assert_true(mrc_completion(c, 3, 9, &comp));
    assert_int_equal(comp.result, MR_ETIMEOUT);
    assert_int_equal(mrc_completion_count(c, 3, 9), 1);
    mrc_free(c);
}


/* Durable notices (raft.h) claim that the leader's write is done: they must be in
 * the late part of an envelope, which the host sends only after persisting the
 * batch, never among the early APPENDs.  With them a follower commits its own
 * command without a commit-only APPEND from the leader. */
struct notices {
    size_t early, late, commit_only;
};

static void observe_notices(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct notices *o = arg;
    if (node != 1)
        return;
    for (size_t i = 0; i < b->n_envelopes; i++) {
        const struct mr_envelope *e = &b->envelopes[i];
        for (size_t k = 0; k < e->n_messages; k++) {
            const struct raft_message *m = &e->messages[k].msg;
            if (m->type == RAFT_MSG_DURABLE && k < e->n_early_messages)
                o->early++;
            else if (m->type == RAFT_MSG_DURABLE)
                o->late++;
            if (m->type == RAFT_MSG_APPEND && m->n_entries == 0 &&
                m->context == RAFT_APPEND_COMMIT_ONLY)
                o->commit_only++;
        }
    }
}

static void test_durable_notices_leave_after_the_write(void **state)
{
    struct mrc_cluster *c;
    struct notices o;
    (void)state;
    c = mrc_new_one_group(53);
    assert_non_null(c);
    memset(&o, 0, sizeof o);
    mrc_set_batch_observer(c, observe_notices, &o);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 1, "F", 1, "f", 1, 0), MR_OK);
    mrc_settle(c);
    assert_true(mrc_completion(c, 2, 1, NULL));
    assert_int_equal(o.early, 0);
    assert_true(o.late >= 2); /* one per follower */
    assert_int_equal(o.commit_only, 0);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_command_events(c, n, 1, "F", 1), 1);
    mrc_set_batch_observer(c, NULL, NULL);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_batch_for_all_groups),
        cmocka_unit_test(test_restart_without_duplicates),
        cmocka_unit_test(test_malformed_entries_are_skipped),
        cmocka_unit_test(test_shutdown_completes_everything),
        cmocka_unit_test(test_durable_notices_leave_after_the_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
