/*
 * mr_waiters.c — a group's pending requests (waiters) on this node: their list, in
 * the order they were made, and their index by command id; completing them when
 * their command applies, their read is served, their transfer is done, or their
 * deadline passes.  What is proposed when is mr_request.c's concern.
 *
 * Every operation a round does per command is O(1) in the number of waiters: a
 * waiter is appended at the tail (the head's prev is the tail) and unlinked in
 * place, and an applied command finds its waiters through the index instead of
 * comparing its id with every waiter's.  A group with thousands of concurrent
 * requests on one node (a connection pool in front of it, or a leader holding the
 * commands its followers forwarded) would otherwise pay for each command as many
 * comparisons as there are waiters.  The passes that visit every waiter — service,
 * ticks — remain, once per pass, not per command.
 */
#include "mr_internal.h"

/* The waiters of one command id, first made first (->same).  Commands, membership
 * changes and removals share a group's ids (a second request with an id waits for
 * the first's entry), so one id may have several. */
struct mr_waiting_id {
    UT_hash_handle hh;
    struct mr_waiter *first;
    uint16_t len;
    unsigned char id[];
};

static bool has_command_id(uint8_t kind)
{
    return kind == MR_REQ_COMMAND || kind == MR_REQ_CONF_CHANGE || kind == MR_REQ_REMOVE;
}

static struct mr_waiting_id *find_id(const struct mr_group *g, const unsigned char *cmd,
                                     uint16_t cmd_len)
{
    struct mr_waiting_id *e = NULL;
    if (g->x != NULL)
        HASH_FIND(hh, g->x->waiting_ids, cmd, cmd_len, e);
    return e;
}

bool mr_waiter_index(struct mr_node *n, struct mr_group *g, struct mr_waiter *w)
{
    MR_HASH_CTX(n);
    struct mr_waiting_id *e;
    struct mr_waiter **pp;

    if (!has_command_id(w->kind) || w->id_entry != NULL)
        return true;
    if ((e = find_id(g, w->cmd, w->cmd_len)) == NULL) {
        struct mr_group_extra *x = mr_group_extra(n, g);
        if (x == NULL || (e = mr_alloc(n, sizeof *e + w->cmd_len)) == NULL) {
            mr_waiter_unlink(n, g, w);
            return false;
        }
        memset(e, 0, sizeof *e);
        e->len = w->cmd_len;
        if (w->cmd_len > 0)
            memcpy(e->id, w->cmd, w->cmd_len);
        HASH_ADD_KEYPTR(hh, x->waiting_ids, e->id, e->len, e);
        if (mr_hash_oom) {
            mr_free(n, e);
            mr_waiter_unlink(n, g, w);
            return false;
        }
    }
    for (pp = &e->first; *pp != NULL; pp = &(*pp)->same)
        ;
    *pp = w;
    w->same = NULL;
    w->id_entry = e;
    return true;
}

struct mr_waiter *mr_waiter_find(const struct mr_group *g, uint8_t kind,
                                 const unsigned char *cmd, uint16_t cmd_len)
{
    struct mr_waiting_id *e = find_id(g, cmd, cmd_len);
    struct mr_waiter *w = e != NULL ? e->first : NULL;
    while (w != NULL && w->kind != kind)
        w = w->same;
    return w;
}

static void unindex(struct mr_node *n, struct mr_group *g, struct mr_waiter *w)
{
    MR_HASH_CTX(n);
    struct mr_waiting_id *e = w->id_entry;
    struct mr_waiter **pp;

    if (e == NULL)
        return;
    for (pp = &e->first; *pp != NULL && *pp != w; pp = &(*pp)->same)
        ;
    if (*pp == w)
        *pp = w->same;
    w->id_entry = NULL;
    w->same = NULL;
    if (e->first == NULL) {
        HASH_DEL(g->x->waiting_ids, e);
        mr_free(n, e);
    }
}

void mr_complete(struct mr_node *n, struct mr_group *g, struct mr_waiter *w, int result,
                 raft_index index)
{
    struct mr_completion c;
    if (w->internal)
        return;
    memset(&c, 0, sizeof c);
    c.token = w->token;
    c.result = result;
    c.index = result == MR_OK ? index : 0;
    c.group = g->id;
    c.kind = w->kind;
    /* Lost, the caller would never be answered (the waiter goes with it): the
     * batch fails instead, and the host answers every request in flight when it
     * restores the node (found by a review). */
    if (mr_vec_push(n, &n->completions, sizeof c, &c) == NULL)
        n->ready_incomplete = true;
}

static void waiter_free(struct mr_node *n, struct mr_waiter *w)
{
    mr_free(n, w->data);
    if (w->cmd != NULL && (w->data == NULL || w->cmd < w->data ||
                           w->cmd >= w->data + w->data_len))
        mr_free(n, w->cmd);
    mr_free(n, w);
}

/* Takes w out of g->waiters (the head's prev is the tail). */
static void detach(struct mr_group *g, struct mr_waiter *w)
{
    struct mr_waiter *head = g->waiters;
    if (w == head) {
        g->waiters = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev; /* the tail */
    } else {
        w->prev->next = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev;
        else
            head->prev = w->prev; /* w was the tail */
    }
}

/* Puts w at the end of g->waiters. */
static void append(struct mr_group *g, struct mr_waiter *w)
{
    struct mr_waiter *head = g->waiters;
    w->next = NULL;
    if (head == NULL) {
        g->waiters = w;
        w->prev = w;
    } else {
        w->prev = head->prev;
        head->prev->next = w;
        head->prev = w;
    }
}

void mr_waiter_unlink(struct mr_node *n, struct mr_group *g, struct mr_waiter *w)
{
    unindex(n, g, w);
    detach(g, w);
    waiter_free(n, w);
}

void mr_fail_waiters(struct mr_node *n, struct mr_group *g, int result)
{
    while (g->waiters != NULL) {
        mr_complete(n, g, g->waiters, result, 0);
        mr_waiter_unlink(n, g, g->waiters);
    }
}

/* Whether w's request may commit in the group without this node: it was handed to
 * the core (retry_at is set by mr_request_sent), or it carries a caller's command id,
 * under which an earlier call may have sent it (a generated id is new with the call). */
static bool may_commit_elsewhere(const struct mr_waiter *w)
{
    switch (w->kind) {
    case MR_REQ_COMMAND:
    case MR_REQ_CONF_CHANGE:
        return w->retry_at != 0 || !w->id_generated;
    case MR_REQ_REMOVE:
        return w->retry_at != 0;
    default:
        return false;
    }
}

void mr_fail_waiters_removed(struct mr_node *n, struct mr_group *g)
{
    /* The dedup records could tell a caller's id that committed here, but this runs
     * from mr_receive too, where the host's lookup_command may not be called: such a
     * waiter's outcome is unknown here, as far as it can tell. */
    while (g->waiters != NULL) {
        struct mr_waiter *w = g->waiters;
        mr_complete(n, g, w, may_commit_elsewhere(w) ? MR_EREMOVED : MR_ENOTMEMBER, 0);
        mr_waiter_unlink(n, g, w);
    }
}

void mr_rescale_deadlines(struct mr_node *n, uint32_t old_len, uint32_t new_len)
{
    struct mr_group *g, *tmp;
    if (old_len == 0 || new_len == 0 || old_len == new_len)
        return;
    HASH_ITER(hh, n->groups, g, tmp) {
        for (struct mr_waiter *w = g->waiters; w != NULL; w = w->next) {
            uint64_t r, left;
            if (w->deadline == 0 || w->deadline <= n->now)
                continue;
            r = w->deadline - n->now;
            left = r > UINT64_MAX / old_len ? r / new_len * old_len
                                            : (r * old_len + new_len - 1) / new_len;
            if (left > UINT64_MAX - n->now)
                left = UINT64_MAX - n->now;
            w->deadline = n->now + (left > 0 ? left : 1);
        }
    }
}

struct mr_waiter *mr_waiter_new(struct mr_node *n, struct mr_group *g, uint8_t kind,
                                 uint64_t token, uint32_t deadline_ticks)
{
    struct mr_waiter *w = mr_alloc(n, sizeof *w);
    if (w == NULL)
        return NULL;
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->token = token;
    w->deadline = deadline_ticks > 0 ? n->now + deadline_ticks : 0;
    w->queued_at = n->now;
    /* Appended at the tail: commands are proposed in the order they were made. */
    append(g, w);
    return w;
}

bool mr_leader_is(const struct mr_group *g, mr_node_id node)
{
    raft_id l = raft_get_leader(g->raft);
    return l != RAFT_NONE && mr_map_node(g, l) == node;
}

bool mr_waiters_tick(struct mr_node *n, struct mr_group *g)
{
    struct mr_waiter *w, *next;
    bool need = false;
    for (w = g->waiters; w != NULL; w = next) {
        next = w->next;
        if (w->deadline != 0 && n->now >= w->deadline) {
            mr_complete(n, g, w, MR_ETIMEOUT, 0);
            mr_waiter_unlink(n, g, w);
            continue;
        }
        if (w->state == MR_W_SENT && n->now >= w->retry_at) {
            /* The leader may have dropped a forwarded proposal silently. */
            w->state = MR_W_QUEUED;
        }
        /* A read index still above the commit index at the retry time may be one
         * a leader only appended, which never commits (mr_waiters_requeue does the
         * same at a leader change this node sees; this covers the change it did
         * not see): asked again, under a new context. */
        if (w->kind == MR_REQ_READ && w->state == MR_W_APPLY_WAIT &&
            w->index > raft_get_commit(g->raft) && n->now >= w->retry_at)
            w->state = MR_W_QUEUED;
        if (w->state == MR_W_QUEUED || w->kind == MR_REQ_TRANSFER)
            need = true;
    }
    if (g->n_boot > 0)
        need = true;
    return need;
}

void mr_waiters_requeue(struct mr_node *n, struct mr_group *g)
{
    (void)n;
    for (struct mr_waiter *w = g->waiters; w != NULL; w = w->next) {
        if (w->state == MR_W_SENT)
            w->state = MR_W_QUEUED;
        /* A read index above the commit index is one the old leader had appended
         * (it counts what it sent as durable) and may never commit: a read waiting
         * to apply it asks the new leader instead, whose answer covers every write
         * acknowledged before the read began too. */
        else if (w->kind == MR_REQ_READ && w->state == MR_W_APPLY_WAIT &&
                 w->index > raft_get_commit(g->raft))
            w->state = MR_W_QUEUED;
    }
}

void mr_waiters_expired(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
                        uint16_t cmd_len, const struct mr_session_ref *copy)
{
    struct mr_waiting_id *e = find_id(g, cmd, cmd_len);
    struct mr_waiter *w = e != NULL ? e->first : NULL, *next;
    for (; w != NULL; w = next) {
        next = w->same;
        if (w->kind == MR_REQ_COMMAND) {
            /* Had a copy committed within the bound, this node would have applied it
             * and completed the waiter — unless a snapshot skipped that part of the
             * log (and a record past its bound need not travel in snapshots): then
             * the outcome is unknown here (reported as a timeout). */
            bool unknown = g->snap_index > w->gen_from;
            if (!unknown && copy != NULL && mr_generated_rearm(n, g, w, copy))
                continue;
            mr_complete(n, g, w, unknown ? MR_EUNKNOWN : MR_EEXPIRED, 0);
            mr_waiter_unlink(n, g, w);
        }
    }
}

void mr_waiter_move_to_tail(struct mr_group *g, struct mr_waiter *w)
{
    detach(g, w);
    append(g, w);
}

void mr_waiters_applied(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
                        uint16_t cmd_len, raft_index index, uint8_t kind)
{
    struct mr_waiting_id *e = find_id(g, cmd, cmd_len);
    struct mr_waiter *w = e != NULL ? e->first : NULL, *next;
    int rc = mr_dedup_result(index, &index);
    /* Unlinking the last waiter of the id frees e: only waiters are kept. */
    for (; w != NULL; w = next) {
        next = w->same;
        if (w->kind != kind)
            continue;
        mr_complete(n, g, w, rc, index);
        mr_waiter_unlink(n, g, w);
    }
}

void mr_waiters_progress(struct mr_node *n, struct mr_group *g)
{
    struct mr_waiter *w, *next;
    raft_index applied = g->applied;
    for (w = g->waiters; w != NULL; w = next) {
        next = w->next;
        if (w->kind == MR_REQ_READ && w->state == MR_W_APPLY_WAIT &&
                   applied >= w->index) {
            mr_complete(n, g, w, MR_OK, w->index);
            mr_waiter_unlink(n, g, w);
        }
    }
}

void mr_waiters_read_state(struct mr_node *n, struct mr_group *g,
                           const struct raft_read_state *rs)
{
    for (struct mr_waiter *w = g->waiters; w != NULL; w = w->next) {
        if (w->kind == MR_REQ_TRANSFER && w->confirming && w->read_ctx == rs->ctx &&
            w->state == MR_W_SENT) {
            /* Confirmed if the target still leads here; refused or moved on: asked
             * again at a leader change or the retry time (as a read). */
            if (rs->status == RAFT_OK && mr_leader_is(g, w->node)) {
                mr_complete(n, g, w, MR_OK, 0);
                mr_waiter_unlink(n, g, w);
            }
            return;
        }
        if (w->kind == MR_REQ_READ && w->read_ctx == rs->ctx && w->state == MR_W_SENT) {
            if (rs->status == RAFT_OK) {
                w->state = MR_W_APPLY_WAIT;
                w->index = rs->index;
                w->retry_at = n->now + n->cfg.proposal_retry_ticks;
            }
            /* Refused by a replica that no longer leads: asked again when this
             * node learns another leader (mr_waiters_requeue) or at its retry
             * time, not at once — sent straight back to the same stale leader, it
             * went back and forth at the network's speed until an election. */
            return;
        }
    }
}
