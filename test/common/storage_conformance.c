/*
 * storage_conformance.c — see storage_conformance.h.
 */
#include "storage_conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    const struct storage_factory *f;
    storage_report_fn report;
    void *arg;
    int failures;
    int checks;
    const char *name;   /* current check */
    bool failed;        /* current check failed */
    void *h;
    struct raft_storage st;
};

static void fail(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void fail(struct ctx *c, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!c->failed) {
        c->failed = true;
        c->failures++;
    }
    if (c->report != NULL)
        c->report(c->arg, c->name, buf);
}

#define EXPECT(c, cond, ...)         \
    do {                             \
        if (!(cond))                 \
            fail((c), __VA_ARGS__);  \
    } while (0)

static bool begin(struct ctx *c, const char *name)
{
    c->name = name;
    c->failed = false;
    c->checks++;
    c->h = NULL;
    memset(&c->st, 0, sizeof c->st);
    if (c->f->create(c->f->ctx, &c->h, &c->st) != RAFT_OK) {
        fail(c, "create failed");
        return false;
    }
    return true;
}

static void end(struct ctx *c)
{
    if (c->h != NULL)
        c->f->destroy(c->f->ctx, c->h);
    c->h = NULL;
}

/* Entry i gets term terms[i-1] and data "e<i>-<term>" padded to `pad` bytes. */
static void make_entry(struct raft_entry *e, char *buf, size_t cap, raft_index i,
                       raft_term t, size_t pad)
{
    int n = snprintf(buf, cap, "e%llu-%llu", (unsigned long long)i, (unsigned long long)t);
    size_t len = (size_t)n;
    while (len < pad && len < cap - 1)
        buf[len++] = '.';
    buf[len] = '\0';
    memset(e, 0, sizeof *e);
    e->index = i;
    e->term = t;
    e->type = (uint8_t)(i % 2 ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_CONF_CHANGE);
    e->data = buf;
    e->len = (uint32_t)len;
}

static int append_range(struct ctx *c, raft_index lo, raft_index hi, raft_term t, size_t pad)
{
    struct raft_entry e[64];
    char bufs[64][128];
    size_t n = 0;
    int rc = RAFT_OK;
    for (raft_index i = lo; i <= hi; i++) {
        make_entry(&e[n], bufs[n], sizeof bufs[n], i, t, pad);
        if (++n == 64 || i == hi) {
            rc = c->f->append(c->f->ctx, c->h, e, n);
            if (rc != RAFT_OK)
                return rc;
            n = 0;
        }
    }
    return rc;
}

/* Reads [lo, hi) and checks every entry against (index, expected term, data). */
static size_t read_check(struct ctx *c, raft_index lo, raft_index hi, uint64_t max_bytes,
                         const raft_term *terms_by_index, size_t pad, int *rc_out)
{
    struct raft_entry_sink *s = raft_entry_sink_new(NULL, lo);
    size_t n;
    int rc;
    if (s == NULL) {
        fail(c, "out of memory");
        return 0;
    }
    rc = c->st.entries(c->st.user, lo, hi, max_bytes, s);
    *rc_out = rc;
    n = raft_entry_sink_count(s);
    if (rc == RAFT_OK && terms_by_index != NULL) {
        const struct raft_entry *e = raft_entry_sink_entries(s);
        for (size_t k = 0; k < n; k++) {
            char buf[128];
            struct raft_entry want;
            raft_index i = lo + k;
            make_entry(&want, buf, sizeof buf, i, terms_by_index[i], pad);
            EXPECT(c, e[k].index == i, "entries(%llu,%llu): entry %zu has index %llu",
                   (unsigned long long)lo, (unsigned long long)hi, k,
                   (unsigned long long)e[k].index);
            EXPECT(c, e[k].term == want.term, "entry %llu: term %llu, want %llu",
                   (unsigned long long)i, (unsigned long long)e[k].term,
                   (unsigned long long)want.term);
            EXPECT(c, e[k].type == want.type, "entry %llu: type %d, want %d",
                   (unsigned long long)i, e[k].type, want.type);
            EXPECT(c, e[k].len == want.len && memcmp(e[k].data, want.data, want.len) == 0,
                   "entry %llu: data differs", (unsigned long long)i);
        }
    }
    raft_entry_sink_free(s);
    return n;
}

static void expect_term(struct ctx *c, raft_index i, int want_rc, raft_term want)
{
    raft_term t = 0;
    int rc = c->st.term(c->st.user, i, &t);
    EXPECT(c, rc == want_rc, "term(%llu) returned %d, want %d", (unsigned long long)i, rc,
           want_rc);
    if (rc == RAFT_OK && want_rc == RAFT_OK)
        EXPECT(c, t == want, "term(%llu) = %llu, want %llu", (unsigned long long)i,
               (unsigned long long)t, (unsigned long long)want);
}

static void expect_bounds(struct ctx *c, raft_index first, raft_index last)
{
    raft_index f = c->st.first_index(c->st.user), l = c->st.last_index(c->st.user);
    EXPECT(c, f == first, "first_index = %llu, want %llu", (unsigned long long)f,
           (unsigned long long)first);
    EXPECT(c, l == last, "last_index = %llu, want %llu", (unsigned long long)l,
           (unsigned long long)last);
}

/* A snapshot at index snap (image data, NUL-terminated), then compaction up to upto. */
static void snapshot_then_compact(struct ctx *c, raft_index snap, raft_index upto,
                                  const struct raft_conf_state *cs, const char *data)
{
    EXPECT(c, c->f->create_snapshot(c->f->ctx, c->h, snap, cs, data, strlen(data)) == RAFT_OK,
           "create_snapshot(%llu) failed", (unsigned long long)snap);
    EXPECT(c, c->f->compact(c->f->ctx, c->h, upto) == RAFT_OK, "compact(%llu) failed",
           (unsigned long long)upto);
}

/* ------------------------------------------------------------------ checks */

static void check_empty(struct ctx *c)
{
    struct raft_hard_state hs;
    struct raft_conf_state cs;
    struct raft_snapshot snap;
    int rc;
    if (!begin(c, "empty"))
        return;
    expect_bounds(c, 1, 0);
    expect_term(c, 0, RAFT_OK, 0);
    expect_term(c, 1, RAFT_EUNAVAILABLE, 0);
    memset(&hs, 0xff, sizeof hs);
    EXPECT(c, c->st.initial_state(c->st.user, &hs, &cs) == RAFT_OK, "initial_state failed");
    EXPECT(c, hs.term == 0 && hs.vote == 0 && hs.commit == 0, "hard state not zero");
    EXPECT(c, cs.n_voters == 0 && cs.n_learners == 0, "configuration not empty");
    EXPECT(c, c->st.snapshot(c->st.user, &snap) == RAFT_OK, "snapshot() failed");
    EXPECT(c, snap.index == 0, "snapshot index %llu, want 0", (unsigned long long)snap.index);
    EXPECT(c, read_check(c, 1, 1, UINT64_MAX, NULL, 0, &rc) == 0 && rc == RAFT_OK,
           "entries(1,1) should be empty");
    read_check(c, 1, 2, UINT64_MAX, NULL, 0, &rc);
    EXPECT(c, rc == RAFT_EUNAVAILABLE, "entries(1,2) on empty log returned %d", rc);
    end(c);
}

static void check_append_read(struct ctx *c)
{
    raft_term terms[8] = {0, 1, 1, 2, 2, 3};
    int rc;
    size_t n;
    if (!begin(c, "append_read"))
        return;
    EXPECT(c, append_range(c, 1, 2, 1, 0) == RAFT_OK, "append 1..2 failed");
    EXPECT(c, append_range(c, 3, 4, 2, 0) == RAFT_OK, "append 3..4 failed");
    EXPECT(c, append_range(c, 5, 5, 3, 0) == RAFT_OK, "append 5 failed");
    expect_bounds(c, 1, 5);
    for (raft_index i = 1; i <= 5; i++)
        expect_term(c, i, RAFT_OK, terms[i]);
    expect_term(c, 0, RAFT_OK, 0);
    expect_term(c, 6, RAFT_EUNAVAILABLE, 0);
    n = read_check(c, 1, 6, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 5, "entries(1,6): rc %d n %zu", rc, n);
    n = read_check(c, 2, 4, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 2, "entries(2,4): rc %d n %zu", rc, n);
    read_check(c, 4, 7, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_EUNAVAILABLE, "entries(4,7) returned %d, want EUNAVAILABLE", rc);
    end(c);
}

static void check_max_bytes(struct ctx *c)
{
    raft_term terms[8] = {0, 1, 1, 1, 1, 1};
    int rc;
    size_t n;
    if (!begin(c, "max_bytes"))
        return;
    EXPECT(c, append_range(c, 1, 5, 1, 10) == RAFT_OK, "append failed");
    n = read_check(c, 1, 6, 25, terms, 10, &rc);
    EXPECT(c, rc == RAFT_OK && n == 2, "max 25 bytes of 10-byte entries: %zu entries", n);
    n = read_check(c, 1, 6, 20, terms, 10, &rc);
    EXPECT(c, rc == RAFT_OK && n == 2, "max 20 bytes (exact fit): %zu entries", n);
    n = read_check(c, 1, 6, 0, terms, 10, &rc);
    EXPECT(c, rc == RAFT_OK && n == 1, "max 0 bytes must still return one entry: %zu", n);
    n = read_check(c, 2, 6, 9, terms, 10, &rc);
    EXPECT(c, rc == RAFT_OK && n == 1, "max 9 bytes: %zu entries", n);
    n = read_check(c, 1, 6, UINT64_MAX, terms, 10, &rc);
    EXPECT(c, rc == RAFT_OK && n == 5, "no limit: %zu entries", n);
    end(c);
}

static void check_truncate(struct ctx *c)
{
    raft_term terms[8] = {0, 1, 1, 4, 4};
    int rc;
    size_t n;
    if (!begin(c, "truncate_suffix"))
        return;
    EXPECT(c, append_range(c, 1, 6, 1, 0) == RAFT_OK, "append failed");
    /* entries 3..4 of term 4 replace 3..6 */
    EXPECT(c, append_range(c, 3, 4, 4, 0) == RAFT_OK, "overwriting append failed");
    expect_bounds(c, 1, 4);
    expect_term(c, 3, RAFT_OK, 4);
    expect_term(c, 5, RAFT_EUNAVAILABLE, 0);
    n = read_check(c, 1, 5, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 4, "read after truncation: rc %d n %zu", rc, n);
    /* appending again after the new end works */
    EXPECT(c, append_range(c, 5, 5, 5, 0) == RAFT_OK, "append after truncation failed");
    expect_term(c, 5, RAFT_OK, 5);
    end(c);
}

/* A suffix replaced right after the log start, in entries appended together
 * (a storage that keeps such entries together must not keep the compacted
 * ones again when it cuts them). */
static void check_truncate_at_log_start(struct ctx *c)
{
    raft_term terms[8] = {0, 1, 1, 1, 2, 2};
    raft_id voters[1] = {1};
    struct raft_conf_state cs = {voters, 1, NULL, 0};
    int rc;
    size_t n;
    if (!begin(c, "truncate_at_log_start"))
        return;
    EXPECT(c, append_range(c, 1, 6, 1, 0) == RAFT_OK, "append failed");
    snapshot_then_compact(c, 3, 3, &cs, "img3");
    /* entries 4..5 of term 2 replace 4..6 */
    EXPECT(c, append_range(c, 4, 5, 2, 0) == RAFT_OK, "overwriting append failed");
    expect_bounds(c, 4, 5);
    expect_term(c, 3, RAFT_OK, 1);
    expect_term(c, 4, RAFT_OK, 2);
    n = read_check(c, 4, 6, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 2, "read after truncation: rc %d n %zu", rc, n);
    end(c);
}

static void check_data_copied(struct ctx *c)
{
    struct raft_entry e;
    char buf[16] = "original";
    struct raft_entry_sink *s;
    if (!begin(c, "data_copied"))
        return;
    memset(&e, 0, sizeof e);
    e.index = 1;
    e.term = 1;
    e.data = buf;
    e.len = 8;
    EXPECT(c, c->f->append(c->f->ctx, c->h, &e, 1) == RAFT_OK, "append failed");
    memcpy(buf, "XXXXXXXX", 8);
    s = raft_entry_sink_new(NULL, 1);
    EXPECT(c, c->st.entries(c->st.user, 1, 2, UINT64_MAX, s) == RAFT_OK, "entries failed");
    EXPECT(c, raft_entry_sink_count(s) == 1 &&
                  memcmp(raft_entry_sink_entries(s)[0].data, "original", 8) == 0,
           "storage kept a reference to the caller's buffer");
    raft_entry_sink_free(s);
    /* empty entries (leader no-ops) round-trip */
    memset(&e, 0, sizeof e);
    e.index = 2;
    e.term = 1;
    EXPECT(c, c->f->append(c->f->ctx, c->h, &e, 1) == RAFT_OK, "append empty failed");
    s = raft_entry_sink_new(NULL, 2);
    EXPECT(c, c->st.entries(c->st.user, 2, 3, UINT64_MAX, s) == RAFT_OK, "entries failed");
    EXPECT(c, raft_entry_sink_count(s) == 1 && raft_entry_sink_entries(s)[0].len == 0,
           "empty entry not returned as empty");
    raft_entry_sink_free(s);
    end(c);
}

static void check_hard_and_conf_state(struct ctx *c)
{
    struct raft_hard_state hs = {7, 3, 5}, got;
    raft_id voters[3] = {1, 2, 30};
    raft_id learners[2] = {40, 41};
    struct raft_conf_state cs = {voters, 3, learners, 2}, gcs;
    if (!begin(c, "hard_and_conf_state"))
        return;
    EXPECT(c, append_range(c, 1, 5, 2, 0) == RAFT_OK, "append failed");
    EXPECT(c, c->f->set_hard_state(c->f->ctx, c->h, &hs) == RAFT_OK, "set_hard_state failed");
    EXPECT(c, c->f->set_conf_state(c->f->ctx, c->h, &cs) == RAFT_OK, "set_conf_state failed");
    EXPECT(c, c->st.initial_state(c->st.user, &got, &gcs) == RAFT_OK, "initial_state failed");
    EXPECT(c, got.term == 7 && got.vote == 3 && got.commit == 5, "hard state not returned");
    EXPECT(c, gcs.n_voters == 3 && gcs.n_learners == 2, "conf sizes %u/%u", gcs.n_voters,
           gcs.n_learners);
    if (gcs.n_voters == 3 && gcs.n_learners == 2) {
        bool ok = true;
        for (int i = 0; i < 3; i++) {
            bool found = false;
            for (int j = 0; j < 3; j++)
                found |= gcs.voters[j] == voters[i];
            ok &= found;
        }
        for (int i = 0; i < 2; i++) {
            bool found = false;
            for (int j = 0; j < 2; j++)
                found |= gcs.learners[j] == learners[i];
            ok &= found;
        }
        EXPECT(c, ok, "configuration members differ");
    }
    /* overwrite */
    hs.term = 8;
    hs.vote = 0;
    EXPECT(c, c->f->set_hard_state(c->f->ctx, c->h, &hs) == RAFT_OK, "set_hard_state failed");
    c->st.initial_state(c->st.user, &got, &gcs);
    EXPECT(c, got.term == 8 && got.vote == 0, "hard state not overwritten");
    end(c);
}

static void check_snapshot_and_compact(struct ctx *c)
{
    raft_term terms[12] = {0, 1, 1, 2, 2, 2, 3, 3, 3, 3};
    raft_id voters[2] = {1, 2};
    struct raft_conf_state cs = {voters, 2, NULL, 0};
    struct raft_snapshot snap;
    int rc;
    size_t n;
    if (!begin(c, "snapshot_and_compact"))
        return;
    EXPECT(c, append_range(c, 1, 2, 1, 0) == RAFT_OK, "append failed");
    EXPECT(c, append_range(c, 3, 5, 2, 0) == RAFT_OK, "append failed");
    EXPECT(c, append_range(c, 6, 9, 3, 0) == RAFT_OK, "append failed");
    /* compacting beyond the snapshot is refused */
    rc = c->f->compact(c->f->ctx, c->h, 4);
    EXPECT(c, rc != RAFT_OK, "compact without a snapshot covering it succeeded");
    expect_bounds(c, 1, 9);
    EXPECT(c, c->f->create_snapshot(c->f->ctx, c->h, 5, &cs, "img5", 4) == RAFT_OK,
           "create_snapshot failed");
    EXPECT(c, c->st.snapshot(c->st.user, &snap) == RAFT_OK, "snapshot() failed");
    EXPECT(c, snap.index == 5 && snap.term == 2, "snapshot meta %llu/%llu, want 5/2",
           (unsigned long long)snap.index, (unsigned long long)snap.term);
    EXPECT(c, snap.len == 4 && memcmp(snap.data, "img5", 4) == 0, "snapshot data differs");
    EXPECT(c, snap.conf.n_voters == 2, "snapshot conf has %u voters", snap.conf.n_voters);
    expect_bounds(c, 1, 9); /* creating a snapshot does not discard entries */
    rc = c->f->create_snapshot(c->f->ctx, c->h, 4, &cs, "old", 3);
    EXPECT(c, rc == RAFT_ESNAPOUTOFDATE, "older create_snapshot returned %d", rc);
    EXPECT(c, c->f->compact(c->f->ctx, c->h, 4) == RAFT_OK, "compact(4) failed");
    expect_bounds(c, 5, 9);
    expect_term(c, 4, RAFT_OK, 2); /* the term just before first_index stays known */
    expect_term(c, 3, RAFT_ECOMPACTED, 0);
    read_check(c, 4, 6, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_ECOMPACTED, "entries(4,6) after compact(4) returned %d", rc);
    n = read_check(c, 5, 10, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 5, "entries(5,10): rc %d n %zu", rc, n);
    rc = c->f->compact(c->f->ctx, c->h, 4);
    EXPECT(c, rc == RAFT_ECOMPACTED, "compacting again returned %d", rc);
    EXPECT(c, c->f->compact(c->f->ctx, c->h, 5) == RAFT_OK, "compact(5) failed");
    expect_bounds(c, 6, 9);
    expect_term(c, 5, RAFT_OK, 2);
    /* appending after compaction; truncation above the compacted prefix */
    EXPECT(c, append_range(c, 8, 8, 4, 0) == RAFT_OK, "overwrite after compaction failed");
    expect_bounds(c, 6, 8);
    expect_term(c, 8, RAFT_OK, 4);
    end(c);
}

static void check_apply_snapshot(struct ctx *c)
{
    raft_id voters[3] = {4, 5, 6};
    raft_id learners[1] = {7};
    struct raft_snapshot in, got;
    struct raft_hard_state hs;
    struct raft_conf_state cs;
    raft_term terms[16] = {0};
    int rc;
    size_t n;
    if (!begin(c, "apply_snapshot"))
        return;
    EXPECT(c, append_range(c, 1, 5, 1, 0) == RAFT_OK, "append failed");
    memset(&in, 0, sizeof in);
    in.index = 10;
    in.term = 5;
    in.conf.voters = voters;
    in.conf.n_voters = 3;
    in.conf.learners = learners;
    in.conf.n_learners = 1;
    in.data = "remote-image";
    in.len = 12;
    EXPECT(c, c->f->apply_snapshot(c->f->ctx, c->h, &in) == RAFT_OK, "apply_snapshot failed");
    expect_bounds(c, 11, 10);
    expect_term(c, 10, RAFT_OK, 5);
    expect_term(c, 5, RAFT_ECOMPACTED, 0);
    EXPECT(c, c->st.snapshot(c->st.user, &got) == RAFT_OK, "snapshot() failed");
    EXPECT(c, got.index == 10 && got.term == 5 && got.len == 12 &&
                  memcmp(got.data, "remote-image", 12) == 0, "snapshot() differs from applied");
    EXPECT(c, got.conf.n_voters == 3 && got.conf.n_learners == 1, "snapshot conf differs");
    c->st.initial_state(c->st.user, &hs, &cs);
    EXPECT(c, cs.n_voters == 3 && cs.n_learners == 1 && cs.learners[0] == 7,
           "configuration not taken from the snapshot");
    for (int i = 11; i < 16; i++)
        terms[i] = 6;
    EXPECT(c, append_range(c, 11, 13, 6, 0) == RAFT_OK, "append after snapshot failed");
    n = read_check(c, 11, 14, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 3, "entries after snapshot: rc %d n %zu", rc, n);
    in.index = 9;
    rc = c->f->apply_snapshot(c->f->ctx, c->h, &in);
    EXPECT(c, rc == RAFT_ESNAPOUTOFDATE, "older snapshot returned %d", rc);
    expect_bounds(c, 11, 13);
    end(c);
}

static void check_many_and_large(struct ctx *c)
{
    static raft_term terms[1201];
    int rc;
    size_t n;
    struct raft_entry e;
    char *big;
    struct raft_entry_sink *s;
    if (!begin(c, "many_and_large"))
        return;
    for (int i = 1; i <= 1200; i++)
        terms[i] = (raft_term)(1 + (i - 1) / 100);
    for (raft_index lo = 1; lo <= 1200; lo += 100)
        EXPECT(c, append_range(c, lo, lo + 99, terms[lo], 0) == RAFT_OK, "append failed");
    expect_bounds(c, 1, 1200);
    n = read_check(c, 1, 1201, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 1200, "read all: rc %d n %zu", rc, n);
    n = read_check(c, 577, 901, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 324, "read middle: rc %d n %zu", rc, n);
    big = malloc(256 * 1024);
    if (big != NULL) {
        for (size_t i = 0; i < 256 * 1024; i++)
            big[i] = (char)(i * 7);
        memset(&e, 0, sizeof e);
        e.index = 1201;
        e.term = 20;
        e.data = big;
        e.len = 256 * 1024;
        EXPECT(c, c->f->append(c->f->ctx, c->h, &e, 1) == RAFT_OK, "large append failed");
        s = raft_entry_sink_new(NULL, 1201);
        EXPECT(c, c->st.entries(c->st.user, 1201, 1202, 0, s) == RAFT_OK, "large read failed");
        EXPECT(c, raft_entry_sink_count(s) == 1 &&
                      raft_entry_sink_entries(s)[0].len == 256 * 1024 &&
                      memcmp(raft_entry_sink_entries(s)[0].data, big, 256 * 1024) == 0,
               "large entry differs");
        raft_entry_sink_free(s);
        free(big);
    }
    end(c);
}

/* Reopens the storage (as after a restart); false, with the check failed and
 * ended, if that failed. */
static bool reopen_or_end(struct ctx *c, const char *what)
{
    if (c->f->reopen(c->f->ctx, &c->h, &c->st) == RAFT_OK)
        return true;
    fail(c, "%s failed", what);
    end(c);
    return false;
}

static void check_reopen(struct ctx *c)
{
    raft_term terms[8] = {0, 1, 1, 2, 2, 2, 2};
    raft_id voters[1] = {9};
    struct raft_conf_state cs = {voters, 1, NULL, 0}, gcs;
    struct raft_hard_state hs = {2, 9, 4}, ghs;
    struct raft_snapshot snap;
    int rc;
    size_t n;
    if (c->f->reopen == NULL)
        return;
    if (!begin(c, "reopen"))
        return;
    EXPECT(c, append_range(c, 1, 2, 1, 0) == RAFT_OK, "append failed");
    EXPECT(c, append_range(c, 3, 6, 2, 0) == RAFT_OK, "append failed");
    c->f->set_hard_state(c->f->ctx, c->h, &hs);
    c->f->set_conf_state(c->f->ctx, c->h, &cs);
    snapshot_then_compact(c, 3, 2, &cs, "s3");
    if (!reopen_or_end(c, "reopen"))
        return;
    expect_bounds(c, 3, 6);
    expect_term(c, 2, RAFT_OK, 1);
    n = read_check(c, 3, 7, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 4, "entries after reopen: rc %d n %zu", rc, n);
    c->st.initial_state(c->st.user, &ghs, &gcs);
    EXPECT(c, ghs.term == 2 && ghs.vote == 9 && ghs.commit == 4, "hard state lost");
    EXPECT(c, gcs.n_voters == 1 && gcs.voters[0] == 9, "conf state lost");
    c->st.snapshot(c->st.user, &snap);
    EXPECT(c, snap.index == 3 && snap.len == 2 && memcmp(snap.data, "s3", 2) == 0,
           "snapshot lost");
    end(c);
}

/* Writes after a reopen: a storage that learns where its entries are when it opens
 * (the PostgreSQL host keeps each group's rows by address) must cut, keep the head
 * of, and compact what it learned, and read it all back after another reopen. */
static void check_write_after_reopen(struct ctx *c)
{
    raft_term terms[8] = {0, 1, 1, 1, 1, 3, 3, 3};
    raft_id voters[1] = {1};
    struct raft_conf_state cs = {voters, 1, NULL, 0};
    int rc;
    size_t n;
    if (c->f->reopen == NULL)
        return;
    if (!begin(c, "write_after_reopen"))
        return;
    EXPECT(c, append_range(c, 1, 2, 1, 0) == RAFT_OK, "append failed");
    EXPECT(c, append_range(c, 3, 6, 1, 0) == RAFT_OK, "append failed");
    if (!reopen_or_end(c, "reopen"))
        return;
    /* entries 5..7 of term 3 replace 5..6, inside the entries appended together */
    EXPECT(c, append_range(c, 5, 7, 3, 0) == RAFT_OK, "overwriting append failed");
    expect_bounds(c, 1, 7);
    snapshot_then_compact(c, 3, 3, &cs, "w3");
    if (!reopen_or_end(c, "second reopen"))
        return;
    expect_bounds(c, 4, 7);
    expect_term(c, 3, RAFT_OK, 1);
    n = read_check(c, 4, 8, UINT64_MAX, terms, 0, &rc);
    EXPECT(c, rc == RAFT_OK && n == 4, "entries after the second reopen: rc %d n %zu", rc, n);
    end(c);
}

int storage_conformance_run(const struct storage_factory *f, storage_report_fn report,
                            void *arg, int *n_checks)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.f = f;
    c.report = report;
    c.arg = arg;
    check_empty(&c);
    check_append_read(&c);
    check_max_bytes(&c);
    check_truncate(&c);
    check_truncate_at_log_start(&c);
    check_data_copied(&c);
    check_hard_and_conf_state(&c);
    check_snapshot_and_compact(&c);
    check_apply_snapshot(&c);
    check_many_and_large(&c);
    check_reopen(&c);
    check_write_after_reopen(&c);
    if (n_checks != NULL)
        *n_checks = c.checks;
    return c.failures;
}

/* ------------------------------------------------------------------ memory factory */

static int mem_create(void *ctx, void **handle, struct raft_storage *st)
{
    struct raft_memory_storage *ms = raft_memory_storage_new(NULL);
    (void)ctx;
    if (ms == NULL)
        return RAFT_ENOMEM;
    raft_memory_storage_interface(ms, st);
    *handle = ms;
    return RAFT_OK;
}
static void mem_destroy(void *ctx, void *h)
{
    (void)ctx;
    raft_memory_storage_free(h);
}
static int mem_append(void *ctx, void *h, const struct raft_entry *e, size_t n)
{
    (void)ctx;
    return raft_memory_storage_append(h, e, n);
}
static int mem_set_hard_state(void *ctx, void *h, const struct raft_hard_state *hs)
{
    (void)ctx;
    return raft_memory_storage_set_hard_state(h, hs);
}
static int mem_set_conf_state(void *ctx, void *h, const struct raft_conf_state *cs)
{
    (void)ctx;
    return raft_memory_storage_set_conf_state(h, cs);
}
static int mem_apply_snapshot(void *ctx, void *h, const struct raft_snapshot *s)
{
    (void)ctx;
    return raft_memory_storage_apply_snapshot(h, s);
}
static int mem_create_snapshot(void *ctx, void *h, raft_index i,
                               const struct raft_conf_state *cs, const void *d, size_t len)
{
    (void)ctx;
    return raft_memory_storage_create_snapshot(h, i, cs, d, len);
}
static int mem_compact(void *ctx, void *h, raft_index i)
{
    (void)ctx;
    return raft_memory_storage_compact(h, i);
}

void storage_conformance_memory_factory(struct storage_factory *f)
{
    memset(f, 0, sizeof *f);
    f->create = mem_create;
    f->destroy = mem_destroy;
    f->append = mem_append;
    f->set_hard_state = mem_set_hard_state;
    f->set_conf_state = mem_set_conf_state;
    f->apply_snapshot = mem_apply_snapshot;
    f->create_snapshot = mem_create_snapshot;
    f->compact = mem_compact;
    f->reopen = NULL; /* nothing durable in memory */
}
