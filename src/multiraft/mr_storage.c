/*
 * mr_storage.c — the core's storage interface for one group.  While a group is
 * active its log lives in a raft_memory_storage; once it quiesces with an empty log
 * that storage is freed (it keeps data blocks and arrays sized for traffic) and the
 * few answers the core may still need — first/last index, the term of the last
 * compacted entry, the snapshot metadata — come from the group itself.  The memory
 * storage is rebuilt from those fields on the first write after waking.  This is
 * what keeps a quiesced group under 1 KB.
 */
#include "mr_internal.h"

static int st_initial_state(void *user, struct raft_hard_state *hs,
                            struct raft_conf_state *cs)
{
    struct mr_group *g = user;
    struct raft_storage st;
    if (g->ms == NULL)
        return RAFT_ESTORAGE; /* raft_new always runs with a memory storage */
    raft_memory_storage_interface(g->ms, &st);
    return st.initial_state(st.user, hs, cs);
}

static int st_entries(void *user, raft_index lo, raft_index hi, uint64_t max_bytes,
                      struct raft_entry_sink *sink)
{
    struct mr_group *g = user;
    struct raft_storage st;
    if (g->ms == NULL)
        return lo <= g->log_start_index ? RAFT_ECOMPACTED : RAFT_EUNAVAILABLE;
    raft_memory_storage_interface(g->ms, &st);
    return st.entries(st.user, lo, hi, max_bytes, sink);
}

static int st_term(void *user, raft_index i, raft_term *out)
{
    struct mr_group *g = user;
    struct raft_storage st;
    if (g->ms == NULL) {
        if (i == g->log_start_index) {
            *out = g->log_start_term;
            return RAFT_OK;
        }
        return i < g->log_start_index ? RAFT_ECOMPACTED : RAFT_EUNAVAILABLE;
    }
    raft_memory_storage_interface(g->ms, &st);
    return st.term(st.user, i, out);
}

static raft_index st_first_index(void *user)
{
    struct mr_group *g = user;
    struct raft_storage st;
    if (g->ms == NULL)
        return g->log_start_index + 1;
    raft_memory_storage_interface(g->ms, &st);
    return st.first_index(st.user);
}

static raft_index st_last_index(void *user)
{
    struct mr_group *g = user;
    struct raft_storage st;
    if (g->ms == NULL)
        return g->log_start_index;
    raft_memory_storage_interface(g->ms, &st);
    return st.last_index(st.user);
}

static int st_snapshot(void *user, struct raft_snapshot *out)
{
    struct mr_group *g = user;
    struct raft_storage st;
    if (g->ms == NULL) {
        /* Quiesced with an empty log: the snapshot is "everything up to the log
         * start", with the configuration as of then (no change since: a change is
         * an entry, and the log is empty). */
        memset(out, 0, sizeof *out);
        out->index = g->log_start_index;
        out->term = g->log_start_term;
        raft_get_conf_state(g->raft, &out->conf);
        return RAFT_OK;
    }
    raft_memory_storage_interface(g->ms, &st);
    return st.snapshot(st.user, out);
}

void mr_storage_interface(struct mr_group *g, struct raft_storage *out)
{
    memset(out, 0, sizeof *out);
    out->user = g;
    out->initial_state = st_initial_state;
    out->entries = st_entries;
    out->term = st_term;
    out->first_index = st_first_index;
    out->last_index = st_last_index;
    out->snapshot = st_snapshot;
}

int mr_storage_ensure(struct mr_node *n, struct mr_group *g)
{
    struct raft_memory_storage *ms;
    if (g->ms != NULL)
        return MR_OK;
    ms = raft_memory_storage_new(&n->a);
    if (ms == NULL)
        return MR_ENOMEM;
    if (g->log_start_index > 0) {
        struct raft_snapshot s;
        unsigned char *sessions = NULL;
        int rc;
        memset(&s, 0, sizeof s);
        s.index = g->log_start_index;
        s.term = g->log_start_term;
        raft_get_conf_state(g->raft, &s.conf);
        /* Released with an empty log: the log start is the applied index, and
         * the sessions are as of it (mr_peer.c). */
        if (g->applied == g->log_start_index &&
            (s.data = sessions = mr_sessions_copy(n, g, &s.len)) == NULL) {
            /* a snapshot sent from it would carry no sessions */
            raft_memory_storage_free(ms);
            return MR_ENOMEM;
        }
        rc = raft_memory_storage_apply_snapshot(ms, &s);
        mr_free(n, sessions);
        if (rc != RAFT_OK) {
            raft_memory_storage_free(ms);
            return MR_ENOMEM;
        }
    }
    g->ms = ms; /* its hard state is never read again: raft_new ran long ago */
    return MR_OK;
}

void mr_storage_release(struct mr_group *g)
{
    if (g->ms == NULL || raft_get_first_index(g->raft) <= raft_get_last_index(g->raft) ||
        raft_get_last_index(g->raft) != g->log_start_index)
        return; /* entries still held */
    raft_memory_storage_free(g->ms);
    g->ms = NULL;
}
