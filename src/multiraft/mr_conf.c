/*
 * mr_conf.c — membership changes: requests by node id (add_voter, remove_voter,
 * add_learner), validated against the membership this replica knows, proposed on the
 * leader one at a time and in order (dissertation §4.1) or forwarded to it as a
 * kind-3 request entry that the leader turns into the change (mr_add_internal_conf);
 * a learner promoted only once it has caught up (§4.2.1); the leader's refusal of a
 * request that its newer view finds invalid (a kind-5 entry, propose_refusal), final
 * for the command id (mr_conf_refused); and
 * the members a new group's creator adds (service_boot).  The service pass that calls
 * these is mr_request.c's.
 */
#include "mr_internal.h"

const char *mr_change_type_name(int change_type)
{
    switch (change_type) {
    case MR_CHANGE_ADD_VOTER: return "add_voter";
    case MR_CHANGE_REMOVE_VOTER: return "remove_voter";
    case MR_CHANGE_ADD_LEARNER: return "add_learner";
    default: return NULL;
    }
}

int mr_change_type_parse(const char *name)
{
    for (int t = MR_CHANGE_ADD_VOTER; t <= MR_CHANGE_ADD_LEARNER; t++)
        if (name != NULL && strcmp(name, mr_change_type_name(t)) == 0)
            return t;
    return 0;
}

static struct mr_waiter *conf_waiter(struct mr_node *n, struct mr_group *g, uint64_t token,
                                     uint32_t deadline, uint8_t change_type,
                                     mr_node_id node, const void *cmd, uint16_t cmd_len,
                                     bool id_generated, const void *payload,
                                     size_t payload_len)
{
    struct mr_waiter *w = mr_waiter_new(n, g, MR_REQ_CONF_CHANGE, token, deadline);
    if (w == NULL)
        return NULL;
    w->change_type = change_type;
    w->node = node;
    w->id_generated = id_generated;
    w->cmd = mr_alloc(n, cmd_len);
    w->data = mr_alloc(n, payload_len);
    if (w->cmd == NULL || w->data == NULL) {
        mr_waiter_unlink(n, g, w);
        return NULL;
    }
    memcpy(w->cmd, cmd, cmd_len);
    w->cmd_len = cmd_len;
    if (payload_len > 0)
        memcpy(w->data, payload, payload_len);
    w->data_len = payload_len;
    return mr_waiter_index(n, g, w) ? w : NULL;
}

int mr_propose_conf_change(struct mr_node *n, mr_group_id group, uint64_t token,
                           int change_type, mr_node_id node,
                           const void *command_id, size_t command_id_len,
                           bool id_generated, const void *payload, size_t payload_len,
                           uint32_t deadline_ticks)
{
    struct mr_group *g;
    int rc = mr_request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    if ((rc = mr_check_command_id(command_id_len)) != MR_OK)
        return rc;
    if (mr_change_type_name(change_type) == NULL || node == 0 || command_id == NULL ||
        (payload == NULL && payload_len > 0))
        return MR_EINVAL;
    if (payload_len > UINT32_MAX / 2)
        return MR_ETOOBIG;
    if (conf_waiter(n, g, token, deadline_ticks, (uint8_t)change_type, node, command_id,
                    (uint16_t)command_id_len, id_generated, payload, payload_len) == NULL)
        return MR_ENOMEM;
    mr_request_added(n, g);
    return MR_OK;
}

int mr_add_internal_conf(struct mr_node *n, struct mr_group *g, uint8_t change_type,
                         mr_node_id node, const unsigned char *cmd, uint16_t cmd_len,
                         const unsigned char *payload, size_t payload_len)
{
    struct mr_waiter *w;
    if (mr_waiter_find(g, MR_REQ_CONF_CHANGE, cmd, cmd_len) != NULL)
        return MR_OK; /* already queued here (our own request or a repeat) */
    w = conf_waiter(n, g, 0, n->cfg.proposal_retry_ticks, change_type, node, cmd, cmd_len,
                    false, payload, payload_len);
    if (w == NULL)
        return MR_ENOMEM;
    w->internal = true;
    mr_group_mark(n, g);
    return MR_OK;
}

/* Whether the group has MR_MAX_MEMBERS members: no new one may join.  The leader
 * checks it too, so that additions requested on different members at once cannot
 * pass it together. */
static bool group_full(const struct mr_group *g)
{
    struct raft_conf_state cs;
    raft_get_conf_state(g->raft, &cs);
    return cs.n_voters + cs.n_learners >= MR_MAX_MEMBERS;
}

/* Maps the request's node to a replica id and validates it against the membership
 * as this replica knows it: a new replica id for an addition, the node's existing
 * replica for a promotion or a removal. */
static int conf_resolve(const struct mr_group *g, const struct mr_waiter *w,
                        struct raft_conf_change *cc, bool *fresh)
{
    bool learner = false;
    raft_id existing = mr_member_replica(g, w->node, &learner);
    memset(cc, 0, sizeof *cc);
    cc->type = w->change_type;
    *fresh = false;
    switch (w->change_type) {
    case MR_CHANGE_ADD_VOTER:
        if ((existing != RAFT_NONE && !learner) || (existing == RAFT_NONE && group_full(g)))
            return MR_EBADCONF;
        *fresh = existing == RAFT_NONE;
        cc->replica = *fresh ? g->next_replica_id : existing;
        return MR_OK;
    case MR_CHANGE_ADD_LEARNER:
        if (existing != RAFT_NONE || group_full(g))
            return MR_EBADCONF;
        *fresh = true;
        cc->replica = g->next_replica_id;
        return MR_OK;
    default:
        if (existing == RAFT_NONE)
            return MR_ENOTMEMBER;
        cc->replica = existing;
        return MR_OK;
    }
}

/* Whether the leader may make `learner` a voter now: it holds every entry committed
 * when the leader first looked at the promotion (kept in w->index), and the leader
 * replicates to it without probing or sending a snapshot.  Dissertation §4.2.1
 * (catching up new servers): a voter that still lacks the log counts in the quorum
 * without helping to reach it, so the group would be less available until it caught
 * up.  Until then the request waits, looked at again every tick, within its deadline
 * (a forwarded request within the requester's, which asks the leader again at each
 * retry). */
static bool learner_caught_up(struct mr_group *g, struct mr_waiter *w, raft_id learner)
{
    struct raft_progress_info pr;
    if (w->index == 0)
        w->index = raft_get_commit(g->raft);
    if (raft_progress_get(g->raft, learner, &pr) != RAFT_OK)
        return false;
    return pr.state == RAFT_PROGRESS_REPLICATE && pr.match >= w->index;
}

/* A forwarded request is validated by the leader against the group's current
 * configuration (no change is pending when the leader looks: one at a time), after
 * its requester checked it against its own view, which fails it there only under a
 * generated id (answered_by_log).  When the leader finds it invalid — its view is
 * newer, or the requester left the verdict to it — it answers in the log: a kind-5
 * entry with the command id and the reason.  Without it the requester would learn
 * nothing before its deadline: at each retry it would only forward the request
 * again.
 *
 * The answer is final (SPEC: a call that errors changes nothing).  Where it is
 * applied it becomes the id's dedup record, with the verdict in the index
 * (MR_DEDUP_REFUSED), and fails every waiter of the id.  A copy of the request
 * still in flight — forwarded at a retry before the requester applied the answer —
 * then finds that record wherever it is taken up, and is answered with it instead of
 * being validated afresh, which could let it commit once a later change made it
 * valid.  For the same reason a requester never fails on its own view a request of
 * which a copy may be elsewhere (answered_by_log): it forwards it and leaves the
 * verdict to the leader (mr_service_conf).  If this proposal is lost (a leader
 * change), the requester's retry takes the request up again. */
static void propose_refusal(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
                            uint16_t cmd_len, int rc)
{
    unsigned char reason = rc == MR_ENOTMEMBER ? MR_REFUSED_NOTMEMBER : MR_REFUSED_BADCONF;
    size_t len = mr_entry_encode(MR_KIND_CONF_REFUSED, NULL, cmd_len, NULL, 1, NULL);
    unsigned char *buf;
    if (raft_get_role(g->raft) != RAFT_LEADER || (buf = mr_alloc(n, len)) == NULL)
        return;
    mr_entry_encode(MR_KIND_CONF_REFUSED, cmd, cmd_len, &reason, 1, buf);
    (void)raft_propose(g->raft, buf, len, NULL, NULL);
    mr_free(n, buf);
}

void mr_conf_refused(struct mr_node *n, struct mr_group *g, const struct mr_entry_view *v,
                     raft_index index)
{
    raft_index first;
    if (v->cmd_len == 0 || v->payload_len != 1 ||
        (v->payload[0] != MR_REFUSED_BADCONF && v->payload[0] != MR_REFUSED_NOTMEMBER)) {
        n->c.malformed++;
        return;
    }
    index |= MR_DEDUP_REFUSED |
             (v->payload[0] == MR_REFUSED_NOTMEMBER ? MR_DEDUP_NOTMEMBER : 0);
    /* An id that committed keeps its commit: a refusal after it (forged, since a
     * leader checks the dedup state before it refuses) changes nothing. */
    if (!mr_dedup(n, g, v->cmd, v->cmd_len, index, &first) && !(first & MR_DEDUP_REFUSED))
        return;
    /* Every waiter of the id, with the first verdict: the requester's, and a leader's
     * internal copy taken up from a retry. */
    mr_waiters_applied(n, g, v->cmd, v->cmd_len, first, MR_REQ_CONF_CHANGE);
}

/* Whether a copy of requester's waiter w may exist beyond this node's sight, so that
 * only the log may fail w: w was sent before (a copy may be in flight), or its
 * command id is the caller's, who may have asked under it before — a call that timed
 * out, on this node or another, whose copy may still commit.  Failing such a request
 * on this node's view could answer "invalid" for a change that then commits, once a
 * later change made it valid again.  Only an id the host generated for this very call
 * is known to have no copy anywhere. */
static bool answered_by_log(const struct mr_waiter *w, bool resubmit)
{
    return resubmit || !w->id_generated;
}

/* w is invalid (rc) in this replica's view: the leader's, or its requester's for a
 * request no copy of which can exist elsewhere.  Fails w, after proposing the refusal
 * that answers its requester if w is a forwarded copy; but if a copy of w may be
 * elsewhere (answered_by_log), only the log may fail it: the refusal is proposed and w
 * waits for it.  Returns true while w is still pending. */
static bool refuse_request(struct mr_node *n, struct mr_group *g, struct mr_waiter *w,
                           int rc, bool resubmit)
{
    bool by_log = !w->internal && answered_by_log(w, resubmit);
    if (w->internal || by_log)
        propose_refusal(n, g, w->cmd, w->cmd_len, rc);
    if (by_log) {
        mr_request_sent(n, w, resubmit);
        return true;
    }
    mr_complete(n, g, w, rc, 0);
    mr_waiter_unlink(n, g, w);
    return false;
}

/* A command id looked for in a group's log. */
struct id_search {
    const unsigned char *cmd;
    uint16_t cmd_len;
};

static bool entry_has_id(void *arg, const struct raft_entry *e)
{
    const struct id_search *q = arg;
    struct mr_entry_view v;
    return e->type == RAFT_ENTRY_NORMAL && mr_entry_decode(e->data, e->len, &v) &&
           v.cmd_len == q->cmd_len && memcmp(v.cmd, q->cmd, q->cmd_len) == 0;
}

/* Entries past which a leader does not look for a command id before proposing a
 * change under it (MR_CONF_TAIL_SCAN): it waits for the tail to apply instead. */
#define MR_CONF_TAIL_SCAN 4096u

/* Whether an entry the leader has not applied yet may carry command id cmd: a
 * command or a removal under it, a follower's forwarded request, a refusal.  The
 * core applies a committed conf change whatever its id, so a change proposed
 * behind such an entry would take effect while the dedup, seeing the id applied
 * first by that entry, records no event for it and answers its caller with the
 * other entry's index.  The leader waits for the tail to apply instead; then the
 * dedup answers the request.  (Conf changes in the tail are already waited for:
 * one change at a time.)  By log matching a later leader's log holds this one's
 * tail ahead of the change too, so the check holds across leaders. */
static bool id_in_unapplied_tail(struct mr_group *g, const unsigned char *cmd,
                                 uint16_t cmd_len)
{
    struct id_search q = {cmd, cmd_len};
    raft_index lo = raft_get_applied(g->raft) + 1;
    raft_index hi = raft_get_last_index(g->raft) + 1;
    bool found = false;
    if (lo >= hi)
        return false;
    if (hi - lo > MR_CONF_TAIL_SCAN ||
        raft_find_entry(g->raft, lo, hi, entry_has_id, &q, &found) != RAFT_OK)
        return true; /* not known: wait (the tail applies meanwhile) */
    return found;
}

/* Conf change: dedup first (the core applies a conf change even when its command id
 * is a duplicate), then validation; on the leader the change is proposed, on a
 * follower it is forwarded as a kind-3 request entry that the leader turns into the
 * change.  Returns true if the waiter is still pending. */
bool mr_service_conf(struct mr_node *n, struct mr_group *g, struct mr_waiter *w,
                     bool resubmit)
{
    struct raft_conf_change cc;
    raft_index first = 0;
    bool fresh = false;
    unsigned char *buf;
    size_t len;
    int rc;

    if (mr_command_applied(n, g, w->cmd, w->cmd_len, &first)) {
        int result = mr_dedup_result(first, &first);
        mr_complete(n, g, w, result, first);
        mr_waiter_unlink(n, g, w);
        return false;
    }
    if (raft_get_role(g->raft) == RAFT_LEADER &&
        (raft_conf_change_pending(g->raft) || id_in_unapplied_tail(g, w->cmd, w->cmd_len)))
        return true; /* one at a time (dissertation §4.1): retried at the next service */
    /* A requester's request that only its own view finds invalid, and a copy of which
     * may be elsewhere, is forwarded: the leader gives the verdict. */
    if ((rc = conf_resolve(g, w, &cc, &fresh)) != MR_OK &&
        (w->internal || !answered_by_log(w, resubmit) ||
         raft_get_role(g->raft) == RAFT_LEADER))
        return refuse_request(n, g, w, rc, resubmit);
    if (raft_get_role(g->raft) != RAFT_LEADER) {
        size_t req_len;
        if (w->internal) {
            mr_waiter_unlink(n, g, w); /* leadership moved on: the requester retries */
            return false;
        }
        if (raft_get_leader(g->raft) == RAFT_NONE)
            return true;
        req_len = mr_conf_request_encode(w->change_type, w->node, NULL, w->data_len, NULL);
        len = mr_entry_encode(MR_KIND_CONF_REQUEST, NULL, w->cmd_len, NULL, req_len, NULL);
        if ((buf = mr_alloc(n, len)) == NULL)
            return true;
        mr_entry_encode(MR_KIND_CONF_REQUEST, w->cmd, w->cmd_len, NULL, 0, buf);
        mr_conf_request_encode(w->change_type, w->node, w->data, w->data_len,
                               buf + MR_ENTRY_HEADER + w->cmd_len);
        rc = raft_propose(g->raft, buf, len, NULL, NULL);
        mr_free(n, buf);
        if (rc == RAFT_OK || rc == RAFT_FORWARDED)
            mr_request_sent(n, w, resubmit);
        return true;
    }
    if (w->change_type == MR_CHANGE_ADD_VOTER && !fresh &&
        !learner_caught_up(g, w, cc.replica))
        return true;
    len = mr_context_encode(w->node, NULL, w->cmd_len, NULL, w->data_len, NULL);
    if ((buf = mr_alloc(n, len)) == NULL)
        return true;
    mr_context_encode(w->node, w->cmd, w->cmd_len, w->data, w->data_len, buf);
    cc.context = buf;
    cc.context_len = (uint32_t)len;
    /* The new replica must be routable as soon as the entry is replicated. */
    if (fresh && mr_map_set(n, g, cc.replica, w->node) != MR_OK) {
        mr_free(n, buf);
        return true;
    }
    rc = raft_propose_conf_change(g->raft, &cc, NULL, NULL);
    mr_free(n, buf);
    if (rc == RAFT_OK) {
        mr_request_sent(n, w, resubmit);
    } else if (rc == RAFT_EBADCONF || rc == RAFT_EINVAL) {
        return refuse_request(n, g, w, MR_EBADCONF, resubmit);
    }
    return true;
}

void mr_service_boot(struct mr_node *n, struct mr_group *g)
{
    struct raft_conf_change cc;
    unsigned char ctx[MR_CONTEXT_HEADER];
    int rc;
    while (g->n_boot > 0 && mr_member_replica(g, g->boot[0], NULL) != RAFT_NONE) {
        memmove(g->boot, g->boot + 1, (g->n_boot - 1) * sizeof *g->boot);
        g->n_boot--;
        g->flags |= MR_G_META;
    }
    if (g->n_boot == 0 || raft_get_role(g->raft) != RAFT_LEADER ||
        raft_conf_change_pending(g->raft))
        return;
    memset(&cc, 0, sizeof cc);
    cc.type = RAFT_CC_ADD_VOTER;
    cc.replica = g->next_replica_id;
    mr_context_encode(g->boot[0], NULL, 0, NULL, 0, ctx);
    cc.context = ctx;
    cc.context_len = sizeof ctx;
    if (mr_map_set(n, g, cc.replica, g->boot[0]) != MR_OK)
        return;
    rc = raft_propose_conf_change(g->raft, &cc, NULL, NULL);
    if (rc == RAFT_EBADCONF) {
        memmove(g->boot, g->boot + 1, (g->n_boot - 1) * sizeof *g->boot);
        g->n_boot--;
    }
}

