/*
 * read_index.c — linearizable reads without log writes (dissertation §6.4).
 *
 * The leader records its commit index for each request (or the higher index its
 * DURABLE notices let a follower commit, see read_bound), then confirms it is still
 * the leader by a heartbeat round: every round has a sequence number carried in the
 * HEARTBEAT context; once a quorum of voters acknowledged round s, all requests of
 * rounds <= s are answered.  A leader that has not committed an entry of its own term
 * does not know the latest commit index yet: requests wait ("deferred", seq 0) until
 * its no-op commits.
 */
#include "raft_internal.h"

int raft_push_read_state(struct raft *r, raft_index index, uint64_t ctx, int status)
{
    int rc;
    if (raft_out_get(r) == NULL)
        return RAFT_ENOMEM;
    rc = raft_vec_reserve(r, (void **)&r->out->rstates, &r->out->cap_rstates, r->out->n_rstates + 1,
                              sizeof *r->out->rstates, 4);
    if (rc != RAFT_OK)
        return rc;
    r->out->rstates[r->out->n_rstates].index = index;
    r->out->rstates[r->out->n_rstates].ctx = ctx;
    r->out->rstates[r->out->n_rstates].status = status;
    r->out->n_rstates++;
    return RAFT_OK;
}

static int answer(struct raft *r, const struct raft_read_req *q, bool ok)
{
    struct raft_message m;
    if (q->from == r->id)
        return raft_push_read_state(r, ok ? q->index : 0, q->ctx,
                                    ok ? RAFT_OK : RAFT_EDROPPED);
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_READ_INDEX_RESP;
    m.to = q->from;
    m.term = r->term;
    m.index = ok ? q->index : 0;
    m.context = q->ctx;
    m.reject = ok ? 0 : 1;
    return raft_send(r, &m);
}

int raft_reads_on_ack(struct raft *r)
{
    uint64_t confirmed;
    uint32_t done = 0;
    int rc = RAFT_OK;
    if (r->n_reads == 0 || r->role != RAFT_LEADER)
        return RAFT_OK;
    confirmed = raft_quorum_value(r, QV_READ_ACK);
    while (done < r->n_reads && r->reads[done].seq != 0 && r->reads[done].seq <= confirmed) {
        rc = answer(r, &r->reads[done], true);
        done++;
        if (rc != RAFT_OK)
            break;
    }
    if (done > 0) {
        memmove(r->reads, r->reads + done, sizeof *r->reads * (r->n_reads - done));
        r->n_reads -= done;
        if (r->n_reads == 0) {
            raft_mem_free(r, r->reads, sizeof *r->reads * r->cap_reads);
            r->reads = NULL;
            r->cap_reads = 0;
        }
    }
    return rc;
}

/* The index a read must wait for: the commit index, or beyond it the highest
 * index announced in DURABLE notices (raft.h), because a follower may have
 * committed — and its node answered a write — up to there before this leader
 * counted the acknowledgements.  Those entries are this leader's own and commit
 * with them; the reader merely waits for them too. */
static raft_index read_bound(const struct raft *r)
{
    raft_index bound = r->log.committed;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].durable_sent > bound)
            bound = r->prs[i].durable_sent;
    return bound;
}

/* Starts a heartbeat round for every request without one. */
static int start_round(struct raft *r)
{
    uint64_t seq = ++r->read_seq;
    raft_index index = read_bound(r);
    for (uint32_t i = 0; i < r->n_reads; i++) {
        if (r->reads[i].seq == 0) {
            r->reads[i].seq = seq;
            r->reads[i].index = index;
        }
    }
    if (r->n_voters > 1) {
        int rc = raft_broadcast_heartbeat(r, seq);
        if (rc != RAFT_OK)
            return rc;
    }
    return raft_reads_on_ack(r);
}

int raft_read_request(struct raft *r, raft_id from, uint64_t ctx)
{
    int rc = raft_vec_reserve(r, (void **)&r->reads, &r->cap_reads, r->n_reads + 1,
                              sizeof *r->reads, 2);
    if (rc != RAFT_OK)
        return rc;
    r->reads[r->n_reads].index = 0;
    r->reads[r->n_reads].ctx = ctx;
    r->reads[r->n_reads].seq = 0;
    r->reads[r->n_reads].from = from;
    r->n_reads++;
    if (!raft_committed_in_term(r))
        return RAFT_OK; /* deferred until the leader's no-op commits (§6.4 step 1) */
    return start_round(r);
}

int raft_reads_on_commit_in_term(struct raft *r)
{
    if (r->n_reads == 0 || r->reads[r->n_reads - 1].seq != 0 || !raft_committed_in_term(r))
        return RAFT_OK;
    return start_round(r);
}

void raft_reads_drop_all(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_reads; i++)
        (void)answer(r, &r->reads[i], false);
    raft_mem_free(r, r->reads, sizeof *r->reads * r->cap_reads);
    r->reads = NULL;
    r->n_reads = r->cap_reads = 0;
}

int raft_step_read_index(struct raft *r, const struct raft_message *m)
{
    if (r->role == RAFT_LEADER)
        return raft_read_request(r, m->from, m->context);
    {
        struct raft_read_req q = {0, m->context, 0, m->from};
        return answer(r, &q, false);
    }
}

int raft_step_read_index_resp(struct raft *r, const struct raft_message *m)
{
    return raft_push_read_state(r, m->reject ? 0 : m->index, m->context,
                                m->reject ? RAFT_EDROPPED : RAFT_OK);
}
