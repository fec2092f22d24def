/*
 * mr_request.c — requests: proposals (commands and group removal; conf changes
 * are mr_conf.c's), leadership transfers and reads, and the service pass that
 * submits a group's queued requests to the core in order.  Each accepted request
 * becomes a waiter (mr_waiters.c), which completes exactly once.  Requests are
 * submitted to the core from mr_ready (the service pass), then resubmitted after a
 * leader change or after proposal_retry_ticks without an outcome — the command-id
 * dedup makes resubmission safe.  Which new commands wait for this node's next
 * round instead of leaving at once is mr_hold.c's concern.
 */
#include "mr_internal.h"

static const unsigned char REMOVE_CMD[] = "multiraft:remove_group";
#define REMOVE_CMD_LEN ((uint16_t)(sizeof REMOVE_CMD - 1))

/* A request arrived: the group is visited at the next mr_ready and ticks again. */
void mr_request_added(struct mr_node *n, struct mr_group *g)
{
    if (g->active_pos == MR_NOT_ACTIVE)
        n->c.woken++;
    mr_group_wake(n, g);
    mr_group_mark(n, g);
}

int mr_request_checks(struct mr_node *n, mr_group_id group, struct mr_group **out)
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

int mr_check_command_id(size_t cmd_len)
{
    if (cmd_len == 0)
        return MR_EINVAL;
    if (cmd_len > MR_MAX_COMMAND_ID_LEN)
        return MR_ETOOBIG;
    return MR_OK;
}

/*
 * A generated-id command's session fields: they and its bound are fixed when it is
 * made, for every copy it will send (mr_session.c), and made anew only once no copy
 * of it can apply any more (mr_generated_rearm).
 */
static void generated_ref(struct mr_node *n, struct mr_group *g, const struct mr_waiter *w,
                          struct mr_session_ref *ref)
{
    ref->node = n->cfg.node_id;
    ref->epoch = n->cfg.session_epoch;
    ref->seq = w->gen_seq;
    ref->floor = w->gen_seq;
    /* Waiters stand in the order they were made (a re-armed one moves to the end
     * with its new seq), so the first generated one of this node's is the lowest
     * seq still waiting. */
    for (const struct mr_waiter *o = g->waiters; o != NULL; o = o->next)
        if (o->gen_seq != 0) {
            ref->floor = o->gen_seq;
            break;
        }
}

static raft_index generated_bound(const struct mr_node *n, const struct mr_waiter *w)
{
    /* (saturated: a window as large as the index space never expires) */
    return n->cfg.generated_id_window > UINT64_MAX - 1 - w->gen_from
               ? UINT64_MAX - 1
               : w->gen_from + n->cfg.generated_id_window;
}

/*
 * A copy of w's command reached the log past its bound.  The bound counts from the
 * commit index this node knew when the command was made, which trails the group's
 * by as much as the node lags (just restarted after a long absence, or catching up
 * after a partition): the command expired although nothing delayed it, and the
 * caller was told so (found by a review).  It is proposed again instead, under a
 * new seq and a bound from the commit index now, while its deadline lasts.
 *
 * Safe once this copy, of the waiter's current seq, is past the bound: no copy of
 * that seq can apply any more — the ones before this one in the log did not (the
 * waiter would have completed), the ones after land past the bound too — so the
 * command still applies at most once.  The caller has ruled out a snapshot over
 * the part of the log where one could have applied unseen (gen_from).
 */
bool mr_generated_rearm(struct mr_node *n, struct mr_group *g, struct mr_waiter *w,
                        const struct mr_session_ref *copy)
{
    struct mr_session_ref ref;
    if (w->gen_seq == 0 || w->data == NULL || copy->node != n->cfg.node_id ||
        copy->epoch != n->cfg.session_epoch || copy->seq > w->gen_seq)
        return false;
    if (copy->seq < w->gen_seq)
        return true; /* a late copy of a proposal re-armed since: the waiter stays */
    if (w->deadline != 0 && n->now >= w->deadline)
        return false;
    mr_waiter_move_to_tail(g, w);
    w->gen_seq = ++n->gen_seq;
    w->gen_from = raft_get_commit(g->raft);
    generated_ref(n, g, w, &ref);
    mr_entry_set_generated(w->data, generated_bound(n, w), &ref);
    w->state = MR_W_QUEUED;
    mr_group_mark(n, g);
    return true;
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
        struct mr_session_ref ref;
        generated_ref(n, g, w, &ref);
        mr_entry_encode_generated(generated_bound(n, w), &ref, cmd, cmd_len, payload,
                                  payload_len, w->data);
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
    int rc = mr_request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    if ((rc = mr_check_command_id(command_id_len)) != MR_OK)
        return rc;
    if (command_id == NULL || (payload == NULL && payload_len > 0))
        return MR_EINVAL;
    if (payload_len > UINT32_MAX - MR_ENTRY_GEN_HEADER - command_id_len)
        return MR_ETOOBIG;
    w = mr_waiter_new(n, g, MR_REQ_COMMAND, token, deadline_ticks);
    if (w == NULL)
        return MR_ENOMEM;
    w->gen_from = raft_get_commit(g->raft);
    w->id_generated = generated;
    if (generated)
        w->gen_seq = ++n->gen_seq;
    if (!waiter_encode(n, g, w, MR_KIND_COMMAND, generated, command_id,
                       (uint16_t)command_id_len, payload, payload_len))
        return MR_ENOMEM;
    mr_request_added(n, g);
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

/* A context for the core's read index, never 0. */
static uint64_t new_read_ctx(struct mr_node *n)
{
    if (++n->next_read_ctx == 0)
        ++n->next_read_ctx;
    return n->next_read_ctx;
}

int mr_transfer_leadership(struct mr_node *n, mr_group_id group, mr_node_id target,
                           uint64_t token, uint32_t deadline_ticks)
{
    struct mr_group *g;
    struct mr_waiter *w;
    bool learner = false;
    int rc = mr_request_checks(n, group, &g);
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
    w->read_ctx = new_read_ctx(n);
    mr_request_added(n, g);
    return MR_OK;
}

int mr_read_index(struct mr_node *n, mr_group_id group, uint64_t token,
                  uint32_t deadline_ticks)
{
    struct mr_group *g;
    struct mr_waiter *w;
    int rc = mr_request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    w = mr_waiter_new(n, g, MR_REQ_READ, token, deadline_ticks);
    if (w == NULL)
        return MR_ENOMEM;
    w->read_ctx = new_read_ctx(n);
    mr_request_added(n, g);
    return MR_OK;
}

int mr_remove_group(struct mr_node *n, mr_group_id group, uint64_t token,
                    uint32_t deadline_ticks)
{
    struct mr_group *g;
    struct mr_waiter *w;
    int rc = mr_request_checks(n, group, &g);
    if (rc != MR_OK)
        return rc;
    w = mr_waiter_new(n, g, MR_REQ_REMOVE, token, deadline_ticks);
    if (w == NULL)
        return MR_ENOMEM;
    if (!waiter_encode(n, g, w, MR_KIND_REMOVE, false, REMOVE_CMD, REMOVE_CMD_LEN, NULL, 0))
        return MR_ENOMEM;
    mr_request_added(n, g);
    return MR_OK;
}

/* ------------------------------------------------------------ dedup */

int mr_dedup_result(raft_index first, raft_index *index)
{
    if (!(first & MR_DEDUP_REFUSED)) {
        *index = first;
        return MR_OK;
    }
    *index = 0;
    return (first & MR_DEDUP_NOTMEMBER) ? MR_ENOTMEMBER : MR_EBADCONF;
}

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

void mr_request_sent(struct mr_node *n, struct mr_waiter *w, bool resubmit)
{
    w->state = MR_W_SENT;
    w->retry_at = n->now + n->cfg.proposal_retry_ticks;
    if (resubmit)
        n->c.reproposals++;
    else
        n->c.proposals++;
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
        mr_service_boot(n, g);
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
                mr_request_sent(n, w, resubmit);
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
            conf_busy = mr_service_conf(n, g, w, resubmit);
            break;
        case MR_REQ_TRANSFER:
            /* The target leads in this node's view, which may be stale (a leader
             * cut off and quiesced still sees itself leading): a read index —
             * a round of the leader's heartbeats acknowledged by a quorum, after
             * a commit in its term — confirms it before the request completes
             * (mr_waiters_read_state). */
            if (mr_leader_is(g, w->node)) {
                if (w->state == MR_W_QUEUED) {
                    rc = raft_read_index(g->raft, w->read_ctx);
                    if (rc == RAFT_OK || rc == RAFT_FORWARDED) {
                        mr_request_sent(n, w, resubmit);
                        w->confirming = true;
                    }
                }
            } else if (w->state == MR_W_QUEUED) {
                bool learner = false;
                raft_id target = mr_member_replica(g, w->node, &learner);
                if (target == RAFT_NONE || learner) {
                    mr_complete(n, g, w, MR_ENOTMEMBER, 0);
                    mr_waiter_unlink(n, g, w);
                    break;
                }
                /* A transfer to a node held down (declared down, or not heard
                 * since this node started dead_ticks ago) cannot complete, and
                 * the leader takes no command while one runs (§3.10): it waits,
                 * queued, until the node is heard or its deadline. */
                if (mr_replica_node_unheard(n, g, target))
                    break;
                rc = raft_transfer_leadership(g->raft, target);
                if (rc == RAFT_OK || rc == RAFT_FORWARDED) {
                    mr_request_sent(n, w, resubmit);
                    w->confirming = false;
                }
            }
            break;
        case MR_REQ_READ:
            if (w->state == MR_W_APPLY_WAIT) {
                if (g->applied >= w->index) {
                    mr_complete(n, g, w, MR_OK, w->index);
                    mr_waiter_unlink(n, g, w);
                }
            } else if (w->state == MR_W_QUEUED) {
                /* Each attempt has a context of its own: a late answer to an
                 * earlier one, from a leader deposed since, could name an index
                 * that leader only appended, which never commits (found by a
                 * review: the read waited for its deadline in a healthy group). */
                if (resubmit)
                    w->read_ctx = new_read_ctx(n);
                rc = raft_read_index(g->raft, w->read_ctx);
                if (rc == RAFT_OK || rc == RAFT_FORWARDED)
                    mr_request_sent(n, w, resubmit);
            }
            break;
        default:
            break;
        }
    }
}

