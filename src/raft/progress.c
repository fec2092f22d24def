/*
 * progress.c — the leader's view of each follower (match/next, probe / replicate /
 * snapshot states, the window of APPENDs in flight) and quorum arithmetic.
 *
 * Flow control: in PROBE state at most one APPEND is outstanding (the leader is still
 * looking for the point where logs match); in REPLICATE state APPENDs are pipelined
 * optimistically (next advances when sending) up to max_inflight_msgs un-acknowledged
 * messages; in SNAPSHOT state nothing is sent until the snapshot is reported.
 */
#include "raft_internal.h"

struct raft_progress *raft_progress_find(struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

void raft_progress_free_infl(struct raft *r, struct raft_progress *pr)
{
    raft_mem_free(r, pr->infl, sizeof(raft_index) * pr->infl_cap);
    pr->infl = NULL;
    pr->infl_cap = pr->infl_start = pr->infl_count = 0;
}

static void reset_state(struct raft *r, struct raft_progress *pr, uint8_t state)
{
    pr->state = state;
    pr->probe_sent = false;
    pr->snapshot_waits = 0;
    pr->pending_snapshot = 0;
    pr->infl_start = pr->infl_count = 0;
    if (state != RAFT_PROGRESS_REPLICATE)
        raft_progress_free_infl(r, pr);
}

void raft_progress_reset_all(struct raft *r)
{
    raft_index last = raft_log_last_index(r);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        reset_state(r, pr, RAFT_PROGRESS_PROBE);
        pr->next = last + 1;
        pr->match = 0;
        pr->snapshot_sent = 0;
        pr->read_ack = 0;
        pr->commit_sent = 0;
        pr->durable_sent = 0;
        pr->recent_active = true;
        if (pr->id == r->id)
            pr->match = raft_log_stable_last(r);
    }
}

void raft_progress_become_probe(struct raft *r, struct raft_progress *pr)
{
    /* After a snapshot, resume right after it (§7); otherwise after the match. */
    raft_index next = pr->match + 1;
    if (pr->state == RAFT_PROGRESS_SNAPSHOT && pr->pending_snapshot + 1 > next)
        next = pr->pending_snapshot + 1;
    reset_state(r, pr, RAFT_PROGRESS_PROBE);
    pr->next = next;
}

void raft_progress_become_replicate(struct raft *r, struct raft_progress *pr)
{
    reset_state(r, pr, RAFT_PROGRESS_REPLICATE);
    pr->next = pr->match + 1;
}

void raft_progress_become_snapshot(struct raft *r, struct raft_progress *pr,
                                   raft_index snap_index)
{
    reset_state(r, pr, RAFT_PROGRESS_SNAPSHOT);
    pr->pending_snapshot = snap_index;
    pr->snapshot_sent = snap_index;
}

bool raft_progress_paused(struct raft *r, const struct raft_progress *pr)
{
    switch (pr->state) {
    case RAFT_PROGRESS_PROBE:
        return pr->probe_sent;
    case RAFT_PROGRESS_REPLICATE:
        return pr->infl_count >= r->max_inflight;
    default:
        return true;
    }
}

int raft_progress_sent(struct raft *r, struct raft_progress *pr, raft_index last)
{
    if (pr->infl_count == pr->infl_cap) {
        /* Grow the ring lazily (most groups need a few slots) up to max_inflight. */
        uint32_t ncap = pr->infl_cap == 0 ? 4 : (uint32_t)pr->infl_cap * 2;
        raft_index *n;
        if (ncap > r->max_inflight)
            ncap = r->max_inflight;
        n = raft_mem_alloc(r, sizeof(raft_index) * ncap);
        if (n == NULL)
            return RAFT_ENOMEM;
        for (uint32_t i = 0; i < pr->infl_count; i++)
            n[i] = pr->infl[(pr->infl_start + i) % pr->infl_cap];
        raft_mem_free(r, pr->infl, sizeof(raft_index) * pr->infl_cap);
        pr->infl = n;
        pr->infl_cap = (uint16_t)ncap;
        pr->infl_start = 0;
    }
    pr->infl[(pr->infl_start + pr->infl_count) % pr->infl_cap] = last;
    pr->infl_count++;
    return RAFT_OK;
}

void raft_progress_ack(struct raft_progress *pr, raft_index to)
{
    while (pr->infl_count > 0 && pr->infl[pr->infl_start] <= to) {
        pr->infl_start = (uint16_t)((pr->infl_start + 1) % pr->infl_cap);
        pr->infl_count--;
    }
    if (pr->infl_count == 0)
        pr->infl_start = 0;
}

uint32_t raft_quorum(const struct raft *r)
{
    return r->n_voters / 2 + 1;
}

uint64_t raft_quorum_value(struct raft *r, int which)
{
    /* The q-th largest voter value is held by a quorum.  Groups are small: an
     * insertion sort of at most 16 values on the stack (larger groups allocate). */
    uint64_t stack[16];
    uint64_t *v = stack;
    uint32_t n = 0, q = raft_quorum(r);
    uint64_t result = 0;
    if (r->n_voters == 0)
        return 0;
    if (r->n_voters > 16) {
        v = raft_mem_alloc(r, sizeof(uint64_t) * r->n_voters);
        if (v == NULL)
            return 0; /* conservative: nothing is confirmed */
    }
    if (which == QV_MATCH) {
        for (uint32_t i = 0; i < r->n_prs; i++)
            if (!r->prs[i].learner)
                v[n++] = r->prs[i].match;
    } else {
        for (uint32_t i = 0; i < r->n_prs; i++)
            if (!r->prs[i].learner)
                v[n++] = r->prs[i].id == r->id ? r->read_seq : r->prs[i].read_ack;
    }
    for (uint32_t i = 1; i < n; i++) { /* insertion sort, descending */
        uint64_t x = v[i];
        uint32_t j = i;
        for (; j > 0 && v[j - 1] < x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    if (q <= n)
        result = v[q - 1];
    if (v != stack)
        raft_mem_free(r, v, sizeof(uint64_t) * r->n_voters);
    return result;
}
