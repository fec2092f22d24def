/*
 * raft_unit.h — small helpers shared by the cmocka tests of the Raft core
 * (test/unit/test_raft_*.c).  Include after <cmocka.h> and "test_cluster.h".
 * Header-only and cmocka-dependent, so it lives here rather than in test/common
 * (which the simulator and fuzzers link without cmocka).
 */
#ifndef MULTIRAFT_RAFT_UNIT_H
#define MULTIRAFT_RAFT_UNIT_H

#include <stdio.h>
#include <string.h>

#include "raft.h"
#include "test_cluster.h"

/* Fails the test if any safety property of the cluster is violated. */
static inline void check_safe(struct test_cluster *tc)
{
    char buf[256];
    if (tc_check_safety(tc, buf, sizeof buf) != 0)
        fail_msg("safety: %s", buf);
    assert_int_equal(tc->error, 0);
}

/* Replica i of the test cluster. */
static inline struct raft *R(struct test_cluster *tc, int i)
{
    return tc->nodes[i].r;
}

/* A zeroed message with its header fields set. */
static inline void msg_init(struct raft_message *m, int type, raft_id from, raft_id to,
                            raft_term term)
{
    memset(m, 0, sizeof *m);
    m->type = (uint8_t)type;
    m->from = from;
    m->to = to;
    m->term = term;
}

/* Restarts node i with its storage holding entries of the given terms (indexes
 * 1..n) and hard state {current_term, no vote, commit 0}. */
static inline void preload(struct test_cluster *tc, int i, const raft_term *terms, size_t n,
                           raft_term current_term)
{
    struct raft_hard_state hs = {current_term, 0, 0};
    tc_crash(tc, i);
    for (size_t k = 0; k < n; k++) {
        struct raft_entry e;
        char buf[32];
        memset(&e, 0, sizeof e);
        snprintf(buf, sizeof buf, "pre%zu-t%llu", k + 1, (unsigned long long)terms[k]);
        e.index = k + 1;
        e.term = terms[k];
        e.data = buf;
        e.len = (uint32_t)strlen(buf);
        assert_int_equal(raft_memory_storage_append(tc->nodes[i].ms, &e, 1), RAFT_OK);
    }
    raft_memory_storage_set_hard_state(tc->nodes[i].ms, &hs);
    assert_int_equal(tc_restart(tc, i), 0);
}

#endif
