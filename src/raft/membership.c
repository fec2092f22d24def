/*
 * membership.c — the configuration (voters and learners) and single-server changes
 * (dissertation §4.1).  A change takes effect when its committed entry is handed to
 * the caller in a Ready (see raft.h, "MEMBERSHIP").
 */
#include "raft_internal.h"

bool raft_is_member(const struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return true;
    return false;
}

bool raft_is_voter(const struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return !r->prs[i].learner;
    return false;
}

bool raft_is_learner(const struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return r->prs[i].learner;
    return false;
}

static void sort_ids(raft_id *ids, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        raft_id x = ids[i];
        uint32_t j = i;
        for (; j > 0 && ids[j - 1] > x; j--)
            ids[j] = ids[j - 1];
        ids[j] = x;
    }
}

/*
 * Out of memory, a configuration is changed all or nothing: the memory a change
 * needs is taken before anything is modified.  A half-built configuration — some
 * members missing, a voter count of 0 — makes a quorum of one, so a replica would
 * elect itself alone (found by a review; test_raft_oom.c).
 */

/* A block for n ids (NULL when n is 0), to be filled by fill_ids. */
static int alloc_ids(struct raft *r, uint32_t n, raft_id **ids)
{
    *ids = NULL;
    if (n > 0 && (*ids = raft_mem_alloc(r, sizeof(raft_id) * n)) == NULL)
        return RAFT_ENOMEM;
    return RAFT_OK;
}

/* Installs ids (room for r->n_prs, from alloc_ids; NULL for none) as the sorted
 * voters-then-learners list of the current members.  Allocates nothing. */
static void fill_ids(struct raft *r, raft_id *ids)
{
    uint32_t nv = 0, nl = 0;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (!r->prs[i].learner)
            ids[nv++] = r->prs[i].id;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].learner)
            ids[nv + nl++] = r->prs[i].id;
    sort_ids(ids, nv);
    if (nl > 0)
        sort_ids(ids + nv, nl);
    raft_mem_free(r, r->conf_ids, sizeof(raft_id) * r->n_conf_ids);
    r->conf_ids = ids;
    r->n_conf_ids = r->n_prs;
    r->n_voters = nv;
}

/* A member's progress as a new member starts it (allocates nothing). */
static void init_progress(struct raft *r, struct raft_progress *pr, raft_id id, bool learner)
{
    memset(pr, 0, sizeof *pr);
    pr->id = id;
    pr->learner = learner;
    pr->next = raft_log_last_index(r) + 1;
    pr->state = RAFT_PROGRESS_PROBE;
    pr->recent_active = true;
    if (id == r->id)
        pr->match = raft_log_stable_last(r);
}

static int add_progress(struct raft *r, raft_id id, bool learner)
{
    struct raft_progress *pr;
    void *arr = r->prs;
    uint32_t cap = r->n_prs;
    /* The array is kept exactly sized: groups change rarely and memory matters. */
    arr = raft_mem_realloc(r, arr, sizeof *pr * cap, sizeof *pr * (cap + 1));
    if (arr == NULL)
        return RAFT_ENOMEM;
    r->prs = arr;
    pr = &r->prs[r->n_prs++];
    init_progress(r, pr, id, learner);
    return RAFT_OK;
}

static void remove_progress(struct raft *r, struct raft_progress *pr)
{
    uint32_t i = (uint32_t)(pr - r->prs);
    raft_progress_free_infl(r, pr);
    memmove(&r->prs[i], &r->prs[i + 1], sizeof *pr * (r->n_prs - i - 1));
    r->n_prs--;
    if (r->n_prs == 0) {
        raft_mem_free(r, r->prs, sizeof *pr);
        r->prs = NULL;
    } else {
        void *arr = raft_mem_realloc(r, r->prs, sizeof *pr * (r->n_prs + 1),
                                     sizeof *pr * r->n_prs);
        if (arr != NULL)
            r->prs = arr;
        else
            r->mem -= sizeof *pr; /* shrinking failed: keep the block, fix accounting */
    }
}

static bool conf_lists(const struct raft_conf_state *cs, uint32_t upto, raft_id id)
{
    for (uint32_t i = 0; i < upto; i++)
        if ((i < cs->n_voters ? cs->voters[i] : cs->learners[i - cs->n_voters]) == id)
            return true;
    return false;
}

void raft_conf_discard(struct raft *r, struct raft_conf_build *b)
{
    raft_mem_free(r, b->prs, sizeof *b->prs * b->n_prs);
    raft_mem_free(r, b->ids, sizeof(raft_id) * b->n_prs);
    memset(b, 0, sizeof *b);
}

int raft_conf_prepare(struct raft *r, const struct raft_conf_state *cs,
                      struct raft_conf_build *b)
{
    uint32_t total = cs->n_voters + cs->n_learners, n = 0;
    memset(b, 0, sizeof *b);
    /* Each id once (a voter listed again, or as a learner too, stays a voter). */
    for (uint32_t i = 0; i < total; i++) {
        raft_id id = i < cs->n_voters ? cs->voters[i] : cs->learners[i - cs->n_voters];
        if (id != RAFT_NONE && !conf_lists(cs, i, id))
            n++;
    }
    if (n == 0)
        return RAFT_OK;
    b->prs = raft_mem_alloc(r, sizeof *b->prs * n);
    if (b->prs == NULL || alloc_ids(r, n, &b->ids) != RAFT_OK) {
        raft_mem_free(r, b->prs, b->prs != NULL ? sizeof *b->prs * n : 0);
        b->prs = NULL;
        return RAFT_ENOMEM;
    }
    for (uint32_t i = 0; i < total; i++) {
        raft_id id = i < cs->n_voters ? cs->voters[i] : cs->learners[i - cs->n_voters];
        if (id != RAFT_NONE && !conf_lists(cs, i, id)) {
            b->prs[b->n_prs].id = id;
            b->prs[b->n_prs].learner = i >= cs->n_voters;
            b->n_prs++;
        }
    }
    return RAFT_OK;
}

void raft_conf_swap(struct raft *r, struct raft_conf_build *b)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        raft_progress_free_infl(r, &r->prs[i]);
    raft_mem_free(r, r->prs, sizeof *r->prs * r->n_prs);
    r->prs = b->prs;
    r->n_prs = b->n_prs;
    /* Progress counts from the log as it is now (after a snapshot's restore). */
    for (uint32_t i = 0; i < r->n_prs; i++)
        init_progress(r, &r->prs[i], r->prs[i].id, r->prs[i].learner);
    fill_ids(r, b->ids);
    memset(b, 0, sizeof *b);
}

int raft_conf_init(struct raft *r, const struct raft_conf_state *cs)
{
    struct raft_conf_build b;
    int rc = raft_conf_prepare(r, cs, &b);
    if (rc == RAFT_OK)
        raft_conf_swap(r, &b);
    return rc;
}

int raft_conf_validate(struct raft *r, const struct raft_conf_change *cc)
{
    struct raft_progress *pr;
    if (cc->replica == RAFT_NONE)
        return RAFT_EINVAL;
    pr = raft_progress_find(r, cc->replica);
    switch (cc->type) {
    case RAFT_CC_ADD_VOTER:
        return pr != NULL && !pr->learner ? RAFT_EBADCONF : RAFT_OK;
    case RAFT_CC_ADD_LEARNER:
        return pr != NULL ? RAFT_EBADCONF : RAFT_OK;
    case RAFT_CC_REMOVE:
        if (pr == NULL)
            return RAFT_EBADCONF;
        if (!pr->learner && r->n_voters == 1)
            return RAFT_EBADCONF; /* a group needs a voter */
        return RAFT_OK;
    default:
        return RAFT_EINVAL;
    }
}

int raft_conf_apply(struct raft *r, const struct raft_conf_change *cc)
{
    struct raft_progress *pr = raft_progress_find(r, cc->replica);
    raft_id *ids;
    uint32_t n;
    /* Entries are applied deterministically on every replica: a change that makes
     * no sense for the configuration (validated on the leader, so only possible via
     * races) is ignored everywhere alike. */
    switch (cc->type) {
    case RAFT_CC_ADD_VOTER:
        if (pr != NULL && !pr->learner)
            return RAFT_OK;
        n = r->n_prs + (pr == NULL);
        break;
    case RAFT_CC_ADD_LEARNER:
        if (pr != NULL)
            return RAFT_OK;
        n = r->n_prs + 1;
        break;
    case RAFT_CC_REMOVE:
        if (pr == NULL || (!pr->learner && r->n_voters == 1))
            return RAFT_OK;
        n = r->n_prs - 1;
        break;
    default:
        return RAFT_OK;
    }
    /* The new id list first: out of memory, the configuration stays as it was. */
    if (alloc_ids(r, n, &ids) != RAFT_OK)
        return RAFT_ENOMEM;
    if (cc->type == RAFT_CC_REMOVE)
        remove_progress(r, pr);
    else if (pr != NULL)
        pr->learner = false;
    else if (add_progress(r, cc->replica, cc->type == RAFT_CC_ADD_LEARNER) != RAFT_OK) {
        raft_mem_free(r, ids, sizeof(raft_id) * n);
        return RAFT_ENOMEM;
    }
    fill_ids(r, ids);
    r->conf_changed = true;
    return RAFT_OK;
}
