/*
 * mr_cluster_check.c — what tests read back from the in-process cluster
 * (completions, events, the persisted model, leaders, envelope counts) and the
 * checks across nodes that mrc_check() runs.
 */
#include "mr_cluster_internal.h"

/* ------------------------------------------------------------ queries */

int mrc_change(struct mrc_cluster *c, mr_node_id on, mr_group_id group, uint64_t token,
               int type, mr_node_id node, const char *id, uint32_t ticks)
{
    int rc = mr_propose_conf_change(mrc_node(c, on), group, token, type, node, id,
                                    strlen(id), false, NULL, 0, 200);
    if (rc != MR_OK)
        return rc;
    mrc_run(c, ticks);
    return mrc_result(c, on, token);
}

int mrc_result(const struct mrc_cluster *c, mr_node_id node, uint64_t token)
{
    struct mr_completion comp;
    return mrc_completion(c, node, token, &comp) ? comp.result : 1;
}

bool mrc_completion(const struct mrc_cluster *c, mr_node_id node, uint64_t token,
                    struct mr_completion *out)
{
    const struct mrc_nodeslot *s = &c->nodes[node];
    for (size_t i = s->n_comps; i-- > 0;)
        if (s->comps[i].token == token) {
            if (out != NULL)
                *out = s->comps[i].c;
            return true;
        }
    return false;
}

size_t mrc_completion_count(const struct mrc_cluster *c, mr_node_id node, uint64_t token)
{
    const struct mrc_nodeslot *s = &c->nodes[node];
    size_t n = 0;
    for (size_t i = 0; i < s->n_comps; i++)
        if (s->comps[i].token == token)
            n++;
    return n;
}

size_t mrc_event_count(const struct mrc_cluster *c, mr_node_id node)
{
    return c->nodes[node].n_events;
}

const struct mrc_event *mrc_event_at(const struct mrc_cluster *c, mr_node_id node, size_t i)
{
    return i < c->nodes[node].n_events ? &c->nodes[node].events[i] : NULL;
}

/* The events with this command id in group on node: commands, and membership
 * changes too if `changes`. */
static size_t id_events_in(const struct mrc_event *events, size_t n_events,
                           mr_group_id group, const void *cmd, size_t cmd_len, bool changes)
{
    size_t n = 0;
    for (size_t i = 0; i < n_events; i++) {
        const struct mrc_event *e = &events[i];
        if ((e->type == MR_EVENT_COMMAND ||
             (changes && e->type == MR_EVENT_MEMBERSHIP_CHANGE)) &&
            e->group == group && e->cmd_len == cmd_len && memcmp(e->cmd, cmd, cmd_len) == 0)
            n++;
    }
    return n;
}

static size_t id_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                        const void *cmd, size_t cmd_len, bool changes)
{
    const struct mrc_nodeslot *s = &c->nodes[node];
    return id_events_in(s->events, s->n_events, group, cmd, cmd_len, changes);
}

raft_index mrc_command_index(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                             const void *cmd, size_t cmd_len)
{
    const struct mrc_nodeslot *s = &c->nodes[node];
    for (size_t i = 0; i < s->n_events; i++) {
        const struct mrc_event *e = &s->events[i];
        if (e->type == MR_EVENT_COMMAND && e->group == group && e->cmd_len == cmd_len &&
            memcmp(e->cmd, cmd, cmd_len) == 0)
            return e->index;
    }
    return 0;
}

size_t mrc_lost_id_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                          const void *cmd, size_t cmd_len)
{
    const struct mrc_nodeslot *s = &c->nodes[node];
    return id_events_in(s->lost, s->n_lost, group, cmd, cmd_len, true);
}

size_t mrc_type_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                       int type)
{
    size_t k = 0;
    for (size_t i = 0; i < mrc_event_count(c, node); i++) {
        const struct mrc_event *e = mrc_event_at(c, node, i);
        k += e->group == group && e->type == type;
    }
    return k;
}

size_t mrc_command_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                          const void *cmd, size_t cmd_len)
{
    return id_events(c, node, group, cmd, cmd_len, false);
}

size_t mrc_id_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                     const void *cmd, size_t cmd_len)
{
    return id_events(c, node, group, cmd, cmd_len, true);
}

bool mrc_has_dedup(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                   const void *cmd, size_t cmd_len)
{
    raft_index first;
    return mrcs_lookup((void *)&c->nodes[node], group, cmd, cmd_len, &first);
}

bool mrc_stored_group(const struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    const struct st_group *g = mrcs_find(&c->nodes[node], group);
    return g != NULL && g->has_meta;
}

raft_index mrc_stored_applied(const struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    const struct st_group *g = mrcs_find(&c->nodes[node], group);
    return g != NULL && g->has_meta ? g->applied : 0;
}

size_t mrc_stored_log_rows(const struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    const struct st_group *g = mrcs_find(&c->nodes[node], group);
    return g != NULL ? g->n_log : 0;
}

bool mrc_stored_tombstone(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                          raft_id *min_replica)
{
    struct st_tomb *t = NULL;
    HASH_FIND(hh, c->nodes[node].live.tombs, &group, sizeof group, t);
    if (t != NULL && min_replica != NULL)
        *min_replica = t->min;
    return t != NULL;
}

bool mrc_snapshot_installed(const struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    struct st_snapmark *m = NULL;
    HASH_FIND(hh, c->nodes[node].live.snaps, &group, sizeof group, m);
    return m != NULL;
}

mr_node_id mrc_leader(struct mrc_cluster *c, mr_group_id group, raft_term *term)
{
    mr_node_id best = 0;
    raft_term bt = 0;
    for (mr_node_id i = 1; i <= c->o.n_nodes; i++) {
        struct mr_group_status st;
        if (c->nodes[i].n == NULL || mr_group_status(c->nodes[i].n, group, &st) != MR_OK)
            continue;
        if (st.role == RAFT_LEADER && st.term >= bt) {
            best = i;
            bt = st.term;
        }
    }
    if (term != NULL)
        *term = bt;
    return best;
}

size_t mrc_unflushed_batches(const struct mrc_cluster *c, mr_node_id node)
{
    return c->nodes[node].n_unflushed;
}

size_t mrc_lost_batches(const struct mrc_cluster *c, mr_node_id node)
{
    return c->nodes[node].lost_batches;
}

size_t mrc_lost_events(const struct mrc_cluster *c, mr_node_id node)
{
    return c->nodes[node].n_lost;
}

uint64_t mrc_envelopes(const struct mrc_cluster *c, mr_node_id a, mr_node_id b)
{
    return c->sent[a][b];
}

uint64_t mrc_empty_envelopes(const struct mrc_cluster *c, mr_node_id a, mr_node_id b)
{
    return c->sent_empty[a][b];
}

/* ------------------------------------------------------------ checks */

struct idx_rec {
    UT_hash_handle hh;
    struct {
        mr_group_id group;
        raft_index index;
    } key;
    const struct mrc_event *ev;
    mr_node_id node;
};

/*
 * Replicas agree on what each entry did: a command (or membership change) applied
 * at (group, index) on one node is applied there on every node that went past that
 * index by applying entries — not by installing a snapshot that covered it.  (A
 * node that treated the entry as a duplicate where another applied it would differ
 * in state: the dedup decision must depend on the log alone.)
 */
static void check_no_entry_skipped(struct mrc_cluster *c, struct idx_rec *byidx)
{
    char msg[256];
    for (mr_node_id n = 1; n <= c->o.n_nodes; n++) {
        const struct mrc_nodeslot *s = &c->nodes[n];
        struct group_mark *prev = NULL; /* per group: the last index it went past */
        for (size_t i = 0; i < s->n_events; i++) {
            const struct mrc_event *e = &s->events[i];
            struct group_mark *l;
            bool made;
            if (e->type != MR_EVENT_COMMAND && e->type != MR_EVENT_MEMBERSHIP_CHANGE &&
                e->type != MR_EVENT_SNAPSHOT_APPLIED)
                continue;
            /* The first one is where this node's record of the group begins. */
            l = mrc_group_mark(&prev, e->group, e->index, &made);
            if (made)
                continue;
            if (e->type != MR_EVENT_SNAPSHOT_APPLIED)
                for (raft_index k = l->index + 1; k < e->index; k++) {
                    struct idx_rec *r;
                    struct { mr_group_id group; raft_index index; } key;
                    memset(&key, 0, sizeof key);
                    key.group = e->group;
                    key.index = k;
                    HASH_FIND(hh, byidx, &key, sizeof key, r);
                    if (r != NULL) {
                        snprintf(msg, sizeof msg,
                                 "group %llu index %llu: applied on node %u, passed over on node %u",
                                 (unsigned long long)e->group, (unsigned long long)k, r->node, n);
                        mrc_violation(c, msg);
                    }
                }
            if (e->index > l->index)
                l->index = e->index;
        }
        mrc_group_marks_free(&prev);
    }
}

/* The entry a node applied at (group, index) is the one every node applied there. */
static void agree(struct mrc_cluster *c, struct idx_rec **byidx, const struct mrc_event *e,
                  mr_node_id n)
{
    struct idx_rec key, *r;
    char msg[256];
    memset(&key, 0, sizeof key);
    key.key.group = e->group;
    key.key.index = e->index;
    HASH_FIND(hh, *byidx, &key.key, sizeof key.key, r);
    if (r == NULL) {
        r = xmalloc(sizeof *r);
        memset(r, 0, sizeof *r);
        r->key = key.key;
        r->ev = e;
        r->node = n;
        HASH_ADD(hh, *byidx, key, sizeof r->key, r);
    } else if (r->ev->type != e->type || r->ev->cmd_len != e->cmd_len ||
               memcmp(r->ev->cmd, e->cmd, e->cmd_len) != 0 ||
               r->ev->payload_len != e->payload_len ||
               memcmp(r->ev->payload, e->payload, e->payload_len) != 0) {
        snprintf(msg, sizeof msg,
                 "group %llu index %llu: nodes %u and %u applied different entries",
                 (unsigned long long)e->group, (unsigned long long)e->index, r->node, n);
        mrc_violation(c, msg);
    }
}

size_t mrc_check(struct mrc_cluster *c, char *err, size_t err_len)
{
    struct idx_rec *byidx = NULL, *r, *rt;
    char msg[256];
    for (mr_node_id n = 1; n <= c->o.n_nodes; n++) {
        const struct mrc_nodeslot *s = &c->nodes[n];
        /* per group: last index seen and the set of command ids (as keys) */
        struct group_mark *last = NULL, *l;
        bool made;
        struct seen {
            UT_hash_handle hh;
            size_t len;
            unsigned char key[];
        } *seen = NULL, *sn, *st;
        for (size_t i = 0; i < s->n_events; i++) {
            const struct mrc_event *e = &s->events[i];
            if (e->type != MR_EVENT_COMMAND && e->type != MR_EVENT_MEMBERSHIP_CHANGE)
                continue;
            l = mrc_group_mark(&last, e->group, 0, &made);
            if (e->index <= l->index) {
                snprintf(msg, sizeof msg, "node %u group %llu: event index %llu after %llu", n,
                         (unsigned long long)e->group, (unsigned long long)e->index,
                         (unsigned long long)l->index);
                mrc_violation(c, msg);
            }
            l->index = e->index;
            {
                size_t klen = 8 + e->cmd_len;
                struct seen *x = xmalloc(sizeof *x + klen);
                x->len = klen;
                memcpy(x->key, &e->group, 8);
                memcpy(x->key + 8, e->cmd, e->cmd_len);
                HASH_FIND(hh, seen, x->key, klen, sn);
                if (sn != NULL) {
                    snprintf(msg, sizeof msg, "node %u group %llu: command id applied twice (index %llu)",
                             n, (unsigned long long)e->group, (unsigned long long)e->index);
                    mrc_violation(c, msg);
                    free(x);
                } else {
                    HASH_ADD_KEYPTR(hh, seen, x->key, x->len, x);
                }
            }
            agree(c, &byidx, e, n);
        }
        mrc_group_marks_free(&last);
        HASH_ITER(hh, seen, sn, st) {
            HASH_DEL(seen, sn);
            free(sn);
        }
    }
    /* Events a crash took out of the table were visible before: what they said
     * must hold too (the node applies those entries again, the same way). */
    for (mr_node_id n = 1; n <= c->o.n_nodes; n++)
        for (size_t i = 0; i < c->nodes[n].n_lost; i++) {
            const struct mrc_event *e = &c->nodes[n].lost[i];
            if (e->type == MR_EVENT_COMMAND || e->type == MR_EVENT_MEMBERSHIP_CHANGE)
                agree(c, &byidx, e, n);
        }
    check_no_entry_skipped(c, byidx);
    HASH_ITER(hh, byidx, r, rt) {
        HASH_DEL(byidx, r);
        free(r);
    }
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, "%s", c->violations ? c->first_violation : "ok");
    return c->violations;
}
