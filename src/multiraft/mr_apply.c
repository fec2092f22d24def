/*
 * mr_apply.c — applying committed entries of one group: command events with
 * command-id dedup (exactly-once), membership changes (replica map, next replica id,
 * the bootstrap additions), forwarded conf-change requests, and group removal.
 */
#include "mr_internal.h"

struct mr_event *mr_event_push(struct mr_node *n, uint8_t type, mr_group_id group)
{
    struct mr_event *ev = mr_vec_push(n, &n->events, sizeof *ev, NULL);
    if (ev == NULL) {
        /* The entry would count as applied without its event: the batch fails
         * (MR_ENOMEM) and the host restores the node, which applies it again. */
        n->ready_incomplete = true;
        return NULL;
    }
    ev->type = type;
    ev->group = group;
    n->c.events++;
    return ev;
}

bool mr_dedup(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
              uint16_t cmd_len, raft_index index, raft_index *first)
{
    MR_HASH_CTX(n);
    struct mr_dedup_record rec;
    struct mr_cmd *c;
    if (mr_command_applied(n, g, cmd, cmd_len, first)) {
        /* The same entry applied again (a restart re-applies what the meta row
         * trailed by, MR_META_LAG) is not a client's duplicate. */
        if (*first != index)
            n->c.duplicates++;
        return false;
    }
    *first = index;
    /* Without its record (persisted) or its entry in applied_cmds (a copy later
     * in this batch, which the host's table does not know yet), the id could be
     * applied again: out of memory fails the batch instead, as mr_event_push. */
    c = mr_alloc(n, sizeof *c + cmd_len);
    if (c != NULL) {
        memset(c, 0, sizeof *c);
        c->index = index;
        c->len = cmd_len;
        memcpy(c->id, cmd, cmd_len);
        HASH_ADD_KEYPTR(hh, g->applied_cmds, c->id, c->len, c);
        if (mr_hash_oom) {
            mr_free(n, c);
            c = NULL;
        }
    }
    rec.group = g->id;
    rec.command_id = cmd;       /* points into the committed entry (valid until advance) */
    rec.command_id_len = cmd_len;
    rec.index = index;
    if (c == NULL || mr_vec_push(n, &n->dedup, sizeof rec, &rec) == NULL)
        n->ready_incomplete = true;
    return true;
}

/* The event of the entry at index, unless an earlier replica of the group on this
 * node announced it already (a node removed and added again replays the log:
 * mr_tombstone.applied).  NULL if none. */
static struct mr_event *entry_event(struct mr_node *n, struct mr_group *g, uint8_t type,
                                    raft_index index)
{
    if (index <= g->announced)
        return NULL;
    return mr_event_push(n, type, g->id);
}

static void command_event(struct mr_node *n, struct mr_group *g, const struct raft_entry *e,
                          const struct mr_entry_view *v)
{
    struct mr_event *ev = entry_event(n, g, MR_EVENT_COMMAND, e->index);
    if (ev != NULL) {
        ev->index = e->index;
        ev->term = e->term;
        ev->command_id = v->cmd;
        ev->command_id_len = v->cmd_len;
        ev->payload = v->payload;
        ev->payload_len = v->payload_len;
    }
}

/* Kind 4: exactly-once by the proposer's session (mr_session.c), no dedup record. */
static void apply_generated(struct mr_node *n, struct mr_group *g, const struct raft_entry *e,
                            const struct mr_entry_view *v)
{
    if (e->index > v->expires) {
        /* Past its bound: a decision of the log position alone, so every replica
         * makes it, and no record of the command is needed beyond the bound. */
        n->c.expired++;
        mr_waiters_expired(n, g, v->cmd, v->cmd_len, &v->session);
        return;
    }
    if (!mr_session_apply(n, g, &v->session, v->expires, e->index)) {
        /* Decided before: applied (its waiter completed then), or given up by its
         * waiter.  A waiter still here means a snapshot skipped the part of the
         * log that applied it, or the session gave its gap up: either way no
         * index to report (mr_waiters_expired tells the two apart). */
        n->c.duplicates++;
        mr_waiters_expired(n, g, v->cmd, v->cmd_len, NULL);
        return;
    }
    command_event(n, g, e, v);
    mr_waiters_applied(n, g, v->cmd, v->cmd_len, e->index, MR_REQ_COMMAND);
}

static void apply_command(struct mr_node *n, struct mr_group *g, const struct raft_entry *e,
                          const struct mr_entry_view *v)
{
    raft_index first;
    if (v->cmd_len == 0) {
        n->c.malformed++;
        return;
    }
    if (v->kind == MR_KIND_GENERATED) {
        apply_generated(n, g, e, v);
        return;
    }
    if (mr_dedup(n, g, v->cmd, v->cmd_len, e->index, &first))
        command_event(n, g, e, v);
    mr_waiters_applied(n, g, v->cmd, v->cmd_len, first, MR_REQ_COMMAND);
}

/* The leader's last word before dropping a removed group: tell each follower the
 * commit index so it applies the removal without waiting for a new election. */
static void farewell(struct mr_node *n, struct mr_group *g)
{
    size_t np;
    if (raft_get_role(g->raft) != RAFT_LEADER)
        return;
    np = raft_progress_count(g->raft);
    for (size_t i = 0; i < np; i++) {
        struct raft_progress_info pi;
        struct mr_heartbeat hb;
        mr_node_id to;
        struct mr_peer *p;
        if (!mr_follower_heartbeat(g, i, &pi, &to, &hb))
            continue;
        hb.commit = pi.match < raft_get_commit(g->raft) ? pi.match : raft_get_commit(g->raft);
        mr_queue_heartbeat(n, to, &hb, false);
        if ((p = mr_peer_find(n, to)) != NULL)
            p->urgent_hb = true;
    }
}

void mr_conf_entry_bind(struct mr_node *n, struct mr_group *g, const struct raft_entry *e)
{
    struct raft_conf_change cc;
    struct mr_context_view cv;
    if (e->type != RAFT_ENTRY_CONF_CHANGE ||
        raft_conf_change_decode(e->data, e->len, &cc) != RAFT_OK ||
        !mr_context_decode(cc.context, cc.context_len, &cv) || cv.node == 0)
        return; /* (counted as malformed when applied) */
    if (mr_map_node(g, cc.replica) != cv.node)
        (void)mr_map_set(n, g, cc.replica, cv.node);
}

static void apply_conf_change(struct mr_node *n, struct mr_group *g,
                              const struct raft_entry *e)
{
    struct raft_conf_change cc;
    struct mr_context_view cv;
    raft_index first;
    bool ctx_ok;
    if (raft_conf_change_decode(e->data, e->len, &cc) != RAFT_OK) {
        n->c.malformed++;
        return;
    }
    if (cc.replica >= g->next_replica_id) {
        g->next_replica_id = cc.replica + 1;
        g->flags |= MR_G_META;
    }
    if (cc.replica > g->conf_seen) {
        g->conf_seen = cc.replica;
        g->flags |= MR_G_META;
    }
    ctx_ok = mr_context_decode(cc.context, cc.context_len, &cv);
    if (!ctx_ok) {
        n->c.malformed++;
    } else {
        /* A committed conf change is authoritative for the map: a leader that lost
         * its uncommitted proposal may have guessed another node for this id (done
         * already when the entry was appended here; a snapshot may have come in
         * between). */
        mr_conf_entry_bind(n, g, e);
        if (cv.cmd_len == 0 && e->index == 1 && cc.replica == 1) {
            /* The bootstrap entry: the members its creator still had to add, taken
             * up here so that any replica that leads adds them (mr_service_boot). */
            if (cv.payload_len % 4 != 0)
                n->c.malformed++;
            else if (mr_boot_set(n, g, cv.payload, (uint32_t)(cv.payload_len / 4)) != MR_OK)
                n->ready_incomplete = true;
        } else if (cv.cmd_len == 0) {
            /* A bootstrap addition (mr_create_group): no event. */
            for (uint32_t i = 0; i < g->n_boot; i++)
                if (g->boot[i] == cv.node) {
                    memmove(g->boot + i, g->boot + i + 1,
                            (g->n_boot - i - 1) * sizeof *g->boot);
                    g->n_boot--;
                    g->flags |= MR_G_META;
                    break;
                }
        } else {
            if (mr_dedup(n, g, cv.cmd, cv.cmd_len, e->index, &first)) {
                struct mr_event *ev = entry_event(n, g, MR_EVENT_MEMBERSHIP_CHANGE, e->index);
                if (ev != NULL) {
                    ev->index = e->index;
                    ev->term = e->term;
                    ev->command_id = cv.cmd;
                    ev->command_id_len = cv.cmd_len;
                    ev->payload = cv.payload;
                    ev->payload_len = cv.payload_len;
                    ev->node_id = cv.node;
                    ev->replica_id = cc.replica;
                    ev->change_type = cc.type;
                }
            }
            mr_waiters_applied(n, g, cv.cmd, cv.cmd_len, first, MR_REQ_CONF_CHANGE);
        }
    }
    if (cc.type == RAFT_CC_REMOVE && cc.replica == g->replica_id) {
        /* This replica left the group (dissertation §4.2.2): it must never come back
         * under this id. */
        mr_group_drop(n, g, g->replica_id + 1, e->index, e->term);
    }
}

void mr_apply_ready(struct mr_node *n, struct mr_group *g, const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_committed && !(g->flags & MR_G_GONE); i++) {
        const struct raft_entry *e = &rd->committed[i];
        struct mr_entry_view v;
        if (e->index <= g->applied)
            continue; /* already applied (restart replays nothing twice) */
        g->applied = e->index;
        if (g->applied - g->meta_applied >= MR_META_LAG)
            g->flags |= MR_G_META; /* else the row may lag (MR_META_LAG) */
        n->c.entries_applied++;
        if (e->type == RAFT_ENTRY_CONF_CHANGE) {
            apply_conf_change(n, g, e);
            continue;
        }
        if (e->type != RAFT_ENTRY_NORMAL) {
            n->c.malformed++;
            continue;
        }
        if (e->len == 0)
            continue; /* the leader's no-op (§8) */
        if (!mr_entry_decode(e->data, e->len, &v)) {
            n->c.malformed++;
            continue;
        }
        switch (v.kind) {
        case MR_KIND_COMMAND:
        case MR_KIND_GENERATED:
            apply_command(n, g, e, &v);
            break;
        case MR_KIND_REMOVE:
            mr_waiters_applied(n, g, v.cmd, v.cmd_len, e->index, MR_REQ_REMOVE);
            farewell(n, g);
            mr_queue_removal_notices(n, g, e->index);
            mr_group_drop(n, g, UINT64_MAX, e->index, e->term);
            break;
        case MR_KIND_CONF_REQUEST: {
            struct mr_conf_request_view cr;
            if (v.cmd_len == 0 || !mr_conf_request_decode(v.payload, v.payload_len, &cr)) {
                n->c.malformed++;
                break;
            }
            /* Only the leader acts on a forwarded request; the requester waits for the
             * conf-change entry itself, or the leader's kind-5 refusal, and resubmits
             * after a timeout. */
            if (raft_get_role(g->raft) == RAFT_LEADER)
                (void)mr_add_internal_conf(n, g, cr.change_type, cr.node, v.cmd, v.cmd_len,
                                           cr.payload, cr.payload_len);
            break;
        }
        case MR_KIND_CONF_REFUSED:
            mr_conf_refused(n, g, &v, e->index);
            break;
        default:
            n->c.malformed++;
            break;
        }
    }
}
