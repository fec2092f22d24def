/*
 * test_mr_session.c — the sessions of generated-id commands (mr_session.c) on
 * their own: the dedup decision, the floor, the bound on recorded seqs, sessions
 * dropped past their bound, and their encoding (round trip, malformed input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_internal.h"

struct fixture {
    struct mr_node *n;
    struct mr_group *g;
};

static int setup(void **state)
{
    static struct fixture f;
    struct mr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = 1;
    f.n = mr_node_new(&cfg, NULL);
    assert_non_null(f.n);
    f.g = mr_group_alloc(f.n, 1, 1);
    assert_non_null(f.g);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mr_node_free(f->n);
    return 0;
}

static bool apply(struct fixture *f, mr_node_id node, uint64_t seq, uint64_t floor,
                  raft_index expires, raft_index index)
{
    struct mr_session_ref ref = {node, 77, seq, floor};
    return mr_session_apply(f->n, f->g, &ref, expires, index);
}

static void test_decisions_and_floor(void **state)
{
    struct fixture *f = *state;
    assert_true(apply(f, 2, 1, 1, 100, 1));
    assert_false(apply(f, 2, 1, 1, 100, 2));  /* the same seq again */
    assert_true(apply(f, 2, 3, 2, 100, 3));   /* 2 still in flight */
    assert_int_equal(f->g->sessions[0].floor, 2);
    assert_int_equal(f->g->sessions[0].n_seqs, 1);
    assert_true(apply(f, 2, 2, 2, 100, 4));   /* fills the gap: a floor again */
    assert_int_equal(f->g->sessions[0].floor, 4);
    assert_int_equal(f->g->sessions[0].n_seqs, 0);
    assert_true(apply(f, 2, 9, 7, 100, 5));   /* 4..6 decided by their proposer */
    assert_false(apply(f, 2, 5, 4, 100, 6));  /* a late copy of a given-up one */
    assert_true(apply(f, 2, 7, 7, 100, 7));
    assert_true(apply(f, 3, 1, 1, 100, 8));   /* another session */
    assert_int_equal(f->g->n_sessions, 2);
}

static void test_a_stuck_gap_is_given_up(void **state)
{
    struct fixture *f = *state;
    /* seq 1 never arrives; its proposer keeps reporting it as in flight. */
    for (uint64_t s = 2; s <= MR_SESSION_MAX_SEQS + 10; s++)
        assert_true(apply(f, 2, s, 1, 1000000, s));
    assert_true(f->g->sessions[0].n_seqs <= MR_SESSION_MAX_SEQS);
    assert_false(apply(f, 2, 1, 1, 1000000, MR_SESSION_MAX_SEQS + 20));
}

static void test_sessions_go_past_their_bound(void **state)
{
    struct fixture *f = *state;
    assert_true(apply(f, 2, 1, 1, 10, 5));
    assert_true(apply(f, 3, 1, 1, 50, 6));
    assert_true(apply(f, 3, 2, 2, 50, 10));
    assert_int_equal(f->g->n_sessions, 2);
    assert_true(apply(f, 3, 3, 3, 50, 11));   /* node 2's bound (10) is passed */
    assert_int_equal(f->g->n_sessions, 1);
    assert_int_equal(f->g->sessions[0].node, 3);
}

static void test_encoding_round_trip_and_malformed(void **state)
{
    struct fixture *f = *state;
    struct mr_group *h = mr_group_alloc(f->n, 2, 1);
    unsigned char buf[256];
    size_t len, used = 0;
    assert_non_null(h);
    assert_true(apply(f, 2, 1, 1, 100, 1));
    assert_true(apply(f, 2, 4, 2, 100, 2));
    assert_true(apply(f, 2, 6, 2, 100, 3));
    assert_true(apply(f, 5, 1, 1, 90, 4));
    len = mr_sessions_encode(f->g, NULL);
    assert_true(len <= sizeof buf);
    assert_int_equal(mr_sessions_encode(f->g, buf), len);
    assert_true(mr_sessions_decode(f->n, h, buf, len, &used));
    assert_int_equal(used, len);
    assert_int_equal(h->n_sessions, 2);
    assert_int_equal(h->sessions[0].floor, 2);
    assert_int_equal(h->sessions[0].n_seqs, 2);
    assert_int_equal(h->sessions[0].seqs[1], 6);
    assert_int_equal(h->sessions[1].expires, 90);
    /* Truncations fail and leave h as it was. */
    for (size_t k = 0; k < len; k++)
        assert_false(mr_sessions_decode(f->n, h, buf, k, &used) && used == len);
    assert_int_equal(h->n_sessions, 2);
    /* Seqs out of order (the second one rewritten below the first). */
    mr_put_u64(buf + 4 + 32 + 8, 3);
    assert_false(mr_sessions_decode(f->n, h, buf, len, &used));
    /* A count the bytes cannot hold. */
    mr_put_u32(buf, 0xffffffffu);
    assert_false(mr_sessions_decode(f->n, h, buf, len, &used));
    assert_int_equal(h->n_sessions, 2);
    assert_int_equal(h->sessions[0].seqs[1], 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decisions_and_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_stuck_gap_is_given_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_go_past_their_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoding_round_trip_and_malformed, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
