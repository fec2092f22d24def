/*
 * mr_request.c — requests: proposals (commands, conf changes, group removal),
 * leadership transfers and reads.  Each accepted request becomes a waiter
 * (mr_waiters.c), which completes exactly once.  Requests are submitted to the core from mr_ready (service), then
 * resubmitted after a leader change or after proposal_retry_ticks without an
 * outcome — the command-id dedup makes resubmission safe.  Which new commands wait
 * for this node's next round instead of leaving at once is mr_hold.c's concern.
 */
#include "mr_internal.h"

static const unsigned char REMOVE_CMD[] = "multiraft:remove_group";
#define REMOVE_CMD_LEN ((uint16_t)(sizeof REMOVE_CMD - 1))

/* A request arrived: the group is visited at the next mr_ready and ticks again. */
static void request_added(struct mr_node *n, struct mr_group *g)
{
    if (g->active_pos == MR_NOT_ACTIVE)
        n->c.woken++;
    mr_group_wake(n, g);
    mr_group_mark(n, g);
}

static int request_checks(struct mr_node *n, mr_group_id group, struct mr_group **out)
{
    struct mr_group *g;
    if (n->busy)
        return MR_EBUSY;
    if (n->stopped)
        return MR_ESTOPPED;
    g = mr_group_find(n, group);
    if (g == NULL || (g->flags & MR_G_GONE))
        return MR_ENOGROUP;
    *out = g;
    return MR_OK;
}

static int check_cmd(size_t cmd_len)
{
    if (cmd_len == 0)
        return MR_EINVAL;
    if (cmd_len > MR_MAX_COMMAND_ID_LEN)
        return MR_ETOOBIG;
    return MR_OK;
}

/*
 * Encode the entry a waiter proposes into w->data (its command id then stands at
 * w->cmd): of `kind`, or of kind 4 (a generated id) if `generated`.  On allocation
 * failure the waiter is unlinked and false returned.
 */
static bool waiter_encode(struct mr_node *n, struct mr_group *g, struct mr_waiter *w,
                          uint8_t kind, bool generated, const void *cmd,
                          uint16_t cmd_len, const void *payload, size_t payload_len)
{
    size_t header = generated ? MR_ENTRY_GEN_HEADER : MR_ENTRY_HEADER;
    w->data_len = header + cmd_len + payload_len;
    w->data = mr_alloc(n, w->data_len);
    if (w->data == NULL) {
        mr_waiter_unlink(n, g, w);
        return false;
    }
    if (generated) {
        /* The bound and the session's seq and floor are fixed here, for every
         * copy this waiter will send (mr_session.c). */
        struct mr_session_ref ref;
        ref.node = n->cfg.node_id;
        ref.epoch = n->cfg.session_epoch;
        ref.seq = w->gen_seq;
        ref.floor = w->gen_seq;
        /* Waiters stand in the order they were made, so the first generated one
         * of this node's is the lowest seq still waiting. */
        for (const struct mr_waiter *o = g->waiters; o != NULL; o = o->next)
            if (o->gen_seq != 0) {
                ref.floor = o->gen_seq;
                break;
            }
        mr_entry_encode_generated(w->gen_from + n->cfg.generated_id_window, &ref, cmd,
                                  cmd_len, payload, payload_len, w->data);
    } else {
        mr_entry_encode(kind, cmd, cmd_len, payload, payload_len, w->data);
    }
    w->cmd = w->data + header;
    w->cmd_len = cmd_len;
    return mr_waiter_index(n, g, w);
}

static int propose(struct mr_node *n, mr_group_id group, uint64_t token,
                   const void *command_id, size_t command_id_len,
                   const void *payload, size_t payload_len, uint32_t deadline_ticks,
                   bool generated)
{
    struct mr_group *g;
    struct mr_waiter *w;
    int rc = request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    if ((rc = check_cmd(command_id_len)) != MR_OK)
        return rc;
    if (command_id == NULL || (payload == NULL && payload_len > 0))
        return MR_EINVAL;
    if (payload_len > UINT32_MAX - MR_ENTRY_GEN_HEADER - command_id_len)
        return MR_ETOOBIG;
    w = mr_waiter_new(n, g, MR_REQ_COMMAND, token, deadline_ticks);
    if (w == NULL)
        return MR_ENOMEM;
    w->gen_from = raft_get_commit(g->raft);
    if (generated)
        w->gen_seq = ++n->gen_seq;
    if (!waiter_encode(n, g, w, MR_KIND_COMMAND, generated, command_id,
                       (uint16_t)command_id_len, payload, payload_len))
        return MR_ENOMEM;
    request_added(n, g);
    return MR_OK;
}

int mr_propose(struct mr_node *n, mr_group_id group, uint64_t token,
               const void *command_id, size_t command_id_len,
               const void *payload, size_t payload_len, uint32_t deadline_ticks)
{
    return propose(n, group, token, command_id, command_id_len, payload, payload_len,
                   deadline_ticks, false);
}

int mr_propose_generated(struct mr_node *n, mr_group_id group, uint64_t token,
                         const void *command_id, size_t command_id_len,
                         const void *payload, size_t payload_len,
                         uint32_t deadline_ticks)
{
    return propose(n, group, token, command_id, command_id_len, payload, payload_len,
                   deadline_ticks, true);
}

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
                                     const void *payload, size_t payload_len)
{
    struct mr_waiter *w = mr_waiter_new(n, g, MR_REQ_CONF_CHANGE, token, deadline);
    if (w == NULL)
        return NULL;
    w->change_type = change_type;
    w->node = node;
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
                           const void *payload, size_t payload_len,
                           uint32_t deadline_ticks)
{
    struct mr_group *g;
    int rc = request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    if ((rc = check_cmd(command_id_len)) != MR_OK)
        return rc;
    if (mr_change_type_name(change_type) == NULL || node == 0 || command_id == NULL ||
        (payload == NULL && payload_len > 0))
        return MR_EINVAL;
    if (payload_len > UINT32_MAX / 2)
        return MR_ETOOBIG;
    if (conf_waiter(n, g, token, deadline_ticks, (uint8_t)change_type, node, command_id,
                    (uint16_t)command_id_len, payload, payload_len) == NULL)
        return MR_ENOMEM;
    request_added(n, g);
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
                    payload, payload_len);
    if (w == NULL)
        return MR_ENOMEM;
    w->internal = true;
    mr_group_mark(n, g);
    return MR_OK;
}

int mr_transfer_leadership(struct mr_node *n, mr_group_id group, mr_node_id target,
                           uint64_t token, uint32_t deadline_ticks)
{
    struct mr_group *g;
    struct mr_waiter *w;
    bool learner = false;
    int rc = request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    if (target == 0)
        return MR_EINVAL;
    if (mr_member_replica(g, target, &learner) == RAFT_NONE || learner)
        return MR_ENOTMEMBER;
    w = mr_waiter_new(n, g, MR_REQ_TRANSFER, token, deadline_ticks);
    if (w == NULL)
        return MR_ENOMEM;
    w->node = target;
    request_added(n, g);
    return MR_OK;
}

int mr_read_index(struct mr_node *n, mr_group_id group, uint64_t token,
                  uint32_t deadline_ticks)
{
    struct mr_group *g;
    struct mr_waiter *w;
    int rc = request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    w = mr_waiter_new(n, g, MR_REQ_READ, token, deadline_ticks);
    if (w == NULL)
        return MR_ENOMEM;
    w->read_ctx = ++n->next_read_ctx;
    request_added(n, g);
    return MR_OK;
}

int mr_remove_group(struct mr_node *n, mr_group_id group, uint64_t token,
                    uint32_t deadline_ticks)
{
    struct mr_group *g;
    struct mr_waiter *w;
    int rc = request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    w = mr_waiter_new(n, g, MR_REQ_REMOVE, token, deadline_ticks);
    if (w == NULL)
        return MR_ENOMEM;
    if (!waiter_encode(n, g, w, MR_KIND_REMOVE, false, REMOVE_CMD, REMOVE_CMD_LEN, NULL, 0))
        return MR_ENOMEM;
    request_added(n, g);
    return MR_OK;
}

/* ------------------------------------------------------------ dedup */

bool mr_command_applied(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
                        uint16_t cmd_len, raft_index *first)
{
    struct mr_cmd *c = NULL;
    HASH_FIND(hh, g->applied_cmds, cmd, cmd_len, c);
    if (c != NULL) {
        *first = c->index;
        return true;
    }
    if (n->cfg.storage.lookup_command != NULL &&
        n->cfg.storage.lookup_command(n->cfg.storage.user, g->id, cmd, cmd_len, first))
        return true;
    return false;
}

/* ------------------------------------------------------------ service */

static void sent(struct mr_node *n, struct mr_waiter *w, bool resubmit)
{
    w->state = MR_W_SENT;
    w->retry_at = n->now + n->cfg.proposal_retry_ticks;
    if (resubmit)
        n->c.reproposals++;
    else
        n->c.proposals++;
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
        if (existing != RAFT_NONE && !learner)
            return MR_EBADCONF;
        *fresh = existing == RAFT_NONE;
        cc->replica = *fresh ? g->next_replica_id : existing;
        return MR_OK;
    case MR_CHANGE_ADD_LEARNER:
        if (existing != RAFT_NONE)
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

/* Conf change: dedup first (the core applies a conf change even when its command id
 * is a duplicate), then validation; on the leader the change is proposed, on a
 * follower it is forwarded as a kind-3 request entry that the leader turns into the
 * change.  Returns true if the waiter is still pending. */
static bool service_conf(struct mr_node *n, struct mr_group *g, struct mr_waiter *w,
                         bool resubmit)
{
    struct raft_conf_change cc;
    raft_index first = 0;
    bool fresh = false;
    unsigned char *buf;
    size_t len;
    int rc;

    if (mr_command_applied(n, g, w->cmd, w->cmd_len, &first)) {
        mr_complete(n, g, w, MR_OK, first);
        mr_waiter_unlink(n, g, w);
        return false;
    }
    if (raft_get_role(g->raft) == RAFT_LEADER && raft_conf_change_pending(g->raft))
        return true; /* one at a time (dissertation §4.1): retried at the next service */
    if ((rc = conf_resolve(g, w, &cc, &fresh)) != MR_OK) {
        mr_complete(n, g, w, rc, 0);
        mr_waiter_unlink(n, g, w);
        return false;
    }
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
            sent(n, w, resubmit);
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
        sent(n, w, resubmit);
    } else if (rc == RAFT_EBADCONF || rc == RAFT_EINVAL) {
        mr_complete(n, g, w, MR_EBADCONF, 0);
        mr_waiter_unlink(n, g, w);
        return false;
    }
    return true;
}

static void service_boot(struct mr_node *n, struct mr_group *g)
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

void mr_service_group(struct mr_node *n, struct mr_group *g)
{
    struct mr_waiter *w, *next;
    bool conf_busy = false, in_flight;
    int rc;

    if (g->flags & MR_G_GONE)
        return;
    /* Judged once, before this pass proposes anything: the commands of one pass
     * leave together or wait together. */
    in_flight = mr_round_in_flight(n) && raft_get_role(g->raft) == RAFT_LEADER;
    if (g->n_boot > 0)
        service_boot(n, g);
    for (w = g->waiters; w != NULL; w = next) {
        bool resubmit = w->retry_at != 0;
        next = w->next;
        switch (w->kind) {
        case MR_REQ_COMMAND:
        case MR_REQ_REMOVE:
            if (w->state != MR_W_QUEUED)
                break;
            if (w->internal && raft_get_role(g->raft) != RAFT_LEADER) {
                mr_waiter_unlink(n, g, w); /* leadership moved: the follower resubmits */
                break;
            }
            if (in_flight && !resubmit && w->kind == MR_REQ_COMMAND && mr_hold_command(n, g, w))
                break;
            rc = raft_propose(g->raft, w->data, w->data_len, NULL, NULL);
            if (rc == RAFT_OK || rc == RAFT_FORWARDED) {
                sent(n, w, resubmit);
                if (rc == RAFT_OK && w->kind == MR_REQ_COMMAND)
                    mr_round_note(n, g);
            }
            break;
        case MR_REQ_CONF_CHANGE:
            /* Strictly one at a time and in order: a later request is validated
             * against the membership its predecessors produced. */
            if (conf_busy)
                break;
            if (w->state != MR_W_QUEUED) {
                conf_busy = true;
                break;
            }
            conf_busy = service_conf(n, g, w, resubmit);
            break;
        case MR_REQ_TRANSFER:
            if (mr_leader_is(g, w->node)) {
                mr_complete(n, g, w, MR_OK, 0);
                mr_waiter_unlink(n, g, w);
            } else if (w->state == MR_W_QUEUED) {
                bool learner = false;
                raft_id target = mr_member_replica(g, w->node, &learner);
                if (target == RAFT_NONE || learner) {
                    mr_complete(n, g, w, MR_ENOTMEMBER, 0);
                    mr_waiter_unlink(n, g, w);
                    break;
                }
                rc = raft_transfer_leadership(g->raft, target);
                if (rc == RAFT_OK || rc == RAFT_FORWARDED)
                    sent(n, w, resubmit);
            }
            break;
        case MR_REQ_READ:
            if (w->state == MR_W_APPLY_WAIT) {
                if (g->applied >= w->index) {
                    mr_complete(n, g, w, MR_OK, w->index);
                    mr_waiter_unlink(n, g, w);
                }
            } else if (w->state == MR_W_QUEUED) {
                rc = raft_read_index(g->raft, w->read_ctx);
                if (rc == RAFT_OK || rc == RAFT_FORWARDED)
                    sent(n, w, resubmit);
            }
            break;
        default:
            break;
        }
    }
}

