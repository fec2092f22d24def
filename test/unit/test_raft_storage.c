/*
 * test_raft_storage.c — the storage conformance suite (test/common) against the
 * in-memory storage, plus a check that the suite itself detects a broken storage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "raft.h"
#include "storage_conformance.h"

static void print_failure(void *arg, const char *check, const char *message)
{
    (void)arg;
    print_error("storage check %s: %s\n", check, message);
}

static void test_memory_storage_conforms(void **state)
{
    struct storage_factory f;
    int checks = 0;
    (void)state;
    storage_conformance_memory_factory(&f);
    assert_int_equal(storage_conformance_run(&f, print_failure, NULL, &checks), 0);
    assert_true(checks >= 9);
}

/* A storage whose term() lies about the compacted boundary must be caught. */
static int (*real_term)(void *user, raft_index i, raft_term *out);
static int broken_term(void *user, raft_index i, raft_term *out)
{
    int rc = real_term(user, i, out);
    if (rc == RAFT_OK && i > 0)
        *out += 1;
    return rc;
}
static int broken_create(void *ctx, void **handle, struct raft_storage *st)
{
    struct raft_memory_storage *ms = raft_memory_storage_new(NULL);
    (void)ctx;
    raft_memory_storage_interface(ms, st);
    real_term = st->term;
    st->term = broken_term;
    *handle = ms;
    return RAFT_OK;
}

static void count_failure(void *arg, const char *check, const char *message)
{
    (void)check;
    (void)message;
    (*(int *)arg)++;
}

static void test_suite_detects_broken_storage(void **state)
{
    struct storage_factory f;
    int reported = 0;
    int failures;
    (void)state;
    storage_conformance_memory_factory(&f);
    f.create = broken_create;
    failures = storage_conformance_run(&f, count_failure, &reported, NULL);
    assert_true(failures > 0);
    assert_true(reported >= failures);
}

/* raft_memory_storage_size: the bytes of the entries held in a range, clipped to
 * what is held. */
static void test_memory_storage_size(void **state)
{
    struct raft_memory_storage *ms = raft_memory_storage_new(NULL);
    struct raft_entry e[5];
    static const char data[] = "0123456789";
    struct raft_conf_state cs;
    raft_id voter = 1;
    (void)state;
    memset(&cs, 0, sizeof cs);
    cs.voters = &voter;
    cs.n_voters = 1;
    assert_int_equal(raft_memory_storage_bootstrap(ms, &cs), RAFT_OK);
    memset(e, 0, sizeof e);
    for (int i = 0; i < 5; i++) { /* indexes 2..6 of 1..5 bytes */
        e[i].index = 2 + (raft_index)i;
        e[i].term = 1;
        e[i].data = (void *)data;
        e[i].len = (uint32_t)(i + 1);
    }
    assert_int_equal(raft_memory_storage_append(ms, e, 5), RAFT_OK);
    assert_int_equal(raft_memory_storage_size(ms, 2, 7), 15);
    assert_int_equal(raft_memory_storage_size(ms, 4, 6), 3 + 4);
    assert_int_equal(raft_memory_storage_size(ms, 0, 100), 15); /* clipped */
    assert_int_equal(raft_memory_storage_size(ms, 6, 6), 0);
    /* A conflicting suffix replaced: index 5 on, 10 bytes each. */
    for (int i = 0; i < 2; i++) {
        e[i].index = 5 + (raft_index)i;
        e[i].term = 2;
        e[i].len = 10;
    }
    assert_int_equal(raft_memory_storage_append(ms, e, 2), RAFT_OK);
    assert_int_equal(raft_memory_storage_size(ms, 2, 7), 1 + 2 + 3 + 10 + 10);
    assert_int_equal(raft_memory_storage_size(ms, 5, 6), 10);
    raft_memory_storage_free(ms);
}

/* Entries kept for a lagging member while many more are appended and compacted a
 * few at a time (as mr_group_compact does while that member catches up slowly):
 * the window moves through the array (compactions move its start, appends move
 * it back to the array's start) without losing an entry or a byte. */
static void test_memory_storage_window_moves(void **state)
{
    struct raft_memory_storage *ms = raft_memory_storage_new(NULL);
    struct raft_storage st;
    struct raft_conf_state cs;
    raft_id voter = 1;
    unsigned char data[64];
    raft_index last = 1, first = 2;
    (void)state;
    memset(&cs, 0, sizeof cs);
    cs.voters = &voter;
    cs.n_voters = 1;
    assert_int_equal(raft_memory_storage_bootstrap(ms, &cs), RAFT_OK);
    raft_memory_storage_interface(ms, &st);
    memset(data, 7, sizeof data);
    for (int round = 0; round < 3000; round++) {
        struct raft_entry e[8];
        uint64_t want = 0;
        memset(e, 0, sizeof e);
        for (int i = 0; i < 8; i++) {
            e[i].index = ++last;
            e[i].term = 1;
            e[i].data = data;
            e[i].len = (uint32_t)(e[i].index % 64);
        }
        assert_int_equal(raft_memory_storage_append(ms, e, 8), RAFT_OK);
        /* The member lags 2,000 entries behind, and from then on catches up by as
         * many as are appended. */
        if (last - first > 2000) {
            raft_index to = first + 7;
            assert_int_equal(raft_memory_storage_create_snapshot(ms, to, &cs, NULL, 0),
                             RAFT_OK);
            assert_int_equal(raft_memory_storage_compact(ms, to), RAFT_OK);
            first = to + 1;
        }
        assert_int_equal(st.first_index(st.user), first);
        assert_int_equal(st.last_index(st.user), last);
        for (raft_index i = first; i < last + 1; i++)
            want += i % 64;
        assert_int_equal(raft_memory_storage_size(ms, first, last + 1), want);
        assert_int_equal(raft_memory_storage_size(ms, last - 9, last + 1),
                         want - raft_memory_storage_size(ms, first, last - 9));
    }
    {
        raft_term t;
        assert_int_equal(st.term(st.user, first, &t), RAFT_OK);
        assert_int_equal(t, 1);
    }
    raft_memory_storage_free(ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_storage_size),
        cmocka_unit_test(test_memory_storage_window_moves),
        cmocka_unit_test(test_memory_storage_conforms),
        cmocka_unit_test(test_suite_detects_broken_storage),
    };
    return cmocka_run_group_tests_name("raft_storage", tests, NULL, NULL);
}
