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

int raft_conf_rebuild_ids(struct raft *r)
{
    uint32_t nv = 0, nl = 0;
    raft_id *ids = NULL;
    if (r->n_prs > 0) {
        ids = raft_mem_alloc(r, sizeof(raft_id) * r->n_prs);
        if (ids == NULL)
            return RAFT_ENOMEM;
    }
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
    return RAFT_OK;
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
    memset(pr, 0, sizeof *pr);
    pr->id = id;
    pr->learner = learner;
    pr->next = raft_log_last_index(r) + 1;
    pr->state = RAFT_PROGRESS_PROBE;
    pr->recent_active = true;
    if (id == r->id)
        pr->match = raft_log_stable_last(r);
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

static void free_conf(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        raft_progress_free_infl(r, &r->prs[i]);
    raft_mem_free(r, r->prs, sizeof *r->prs * r->n_prs);
    raft_mem_free(r, r->conf_ids, sizeof(raft_id) * r->n_conf_ids);
    r->prs = NULL;
    r->conf_ids = NULL;
    r->n_conf_ids = 0;
    r->n_prs = 0;
    r->n_voters = 0;
}

int raft_conf_init(struct raft *r, const struct raft_conf_state *cs)
{
    int rc;
    free_conf(r);
    for (uint32_t i = 0; i < cs->n_voters; i++)
        if (!raft_is_member(r, cs->voters[i]) && cs->voters[i] != RAFT_NONE)
            if ((rc = add_progress(r, cs->voters[i], false)) != RAFT_OK)
                return rc;
    for (uint32_t i = 0; i < cs->n_learners; i++)
        if (!raft_is_member(r, cs->learners[i]) && cs->learners[i] != RAFT_NONE)
            if ((rc = add_progress(r, cs->learners[i], true)) != RAFT_OK)
                return rc;
    return raft_conf_rebuild_ids(r);
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
    int rc = RAFT_OK;
    /* Entries are applied deterministically on every replica: a change that makes
     * no sense for the configuration (validated on the leader, so only possible via
     * races) is ignored everywhere alike. */
    switch (cc->type) {
    case RAFT_CC_ADD_VOTER:
        if (pr == NULL)
            rc = add_progress(r, cc->replica, false);
        else if (pr->learner)
            pr->learner = false;
        else
            return RAFT_OK;
        break;
    case RAFT_CC_ADD_LEARNER:
        if (pr != NULL)
            return RAFT_OK;
        rc = add_progress(r, cc->replica, true);
        break;
    case RAFT_CC_REMOVE:
        if (pr == NULL || (!pr->learner && r->n_voters == 1))
            return RAFT_OK;
        remove_progress(r, pr);
        break;
    default:
        return RAFT_OK;
    }
    if (rc != RAFT_OK)
        return rc;
    rc = raft_conf_rebuild_ids(r);
    r->conf_changed = true;
    return rc;
}
