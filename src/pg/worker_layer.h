/*
 * worker_layer.h — the multi-raft layer (src/multiraft/multiraft.h) together with
 * the worker's shared-memory interfaces (requests.h, status.h), for the files of
 * the worker and of storage.
 *
 * The two families of headers were written separately and clash on two names:
 * MR_MAX_MEMBERS (both 16) and the enumerators MR_CHANGE_ADD_VOTER/... (the same
 * values 1..3 in both).  Here requests.h's enumerators are renamed REQ_CHANGE_*
 * while it is included, so both headers can be used in one file.  Include this
 * header instead of multiraft.h / requests.h / status.h.
 */
#ifndef MULTIRAFT_WORKER_LAYER_H
#define MULTIRAFT_WORKER_LAYER_H

#include "multiraft.h"

#undef MR_MAX_MEMBERS
#define MR_CHANGE_NONE REQ_CHANGE_NONE
#define MR_CHANGE_ADD_VOTER REQ_CHANGE_ADD_VOTER
#define MR_CHANGE_REMOVE_VOTER REQ_CHANGE_REMOVE_VOTER
#define MR_CHANGE_ADD_LEARNER REQ_CHANGE_ADD_LEARNER
#include "requests.h"
#include "status.h"
#undef MR_CHANGE_NONE
#undef MR_CHANGE_ADD_VOTER
#undef MR_CHANGE_REMOVE_VOTER
#undef MR_CHANGE_ADD_LEARNER

StaticAssertDecl(MR_MAX_MEMBERS == 16, "status.h and multiraft.h agree on MR_MAX_MEMBERS");

/*
 * While src/multiraft is being written some of its functions may not exist yet;
 * weak references keep multiraft.so loadable (PostgreSQL dlopens with RTLD_NOW)
 * and the worker idles with a log line instead (worker_layer_missing()).  Once
 * the layer is complete these resolve like ordinary references.
 */
#pragma weak mr_strerror
#pragma weak mr_node_new
#pragma weak mr_node_free
#pragma weak mr_shutdown
#pragma weak mr_now
#pragma weak mr_restore_group
#pragma weak mr_restore_tombstone
#pragma weak mr_create_group
#pragma weak mr_propose
#pragma weak mr_change_type_name
#pragma weak mr_change_type_parse
#pragma weak mr_propose_conf_change
#pragma weak mr_transfer_leadership
#pragma weak mr_read_index
#pragma weak mr_remove_group
#pragma weak mr_tick
#pragma weak mr_receive
#pragma weak mr_report_unreachable
#pragma weak mr_event_type_name
#pragma weak mr_has_ready
#pragma weak mr_ready
#pragma weak mr_advance
#pragma weak mr_role_name
#pragma weak mr_group_status
#pragma weak mr_foreach_group
#pragma weak mr_group_count
#pragma weak mr_active_group_count
#pragma weak mr_group_exists
#pragma weak mr_group_tombstoned
#pragma weak mr_get_counters
#pragma weak mr_counter_count
#pragma weak mr_counter_name
#pragma weak mr_counter_value
#pragma weak mr_peer_counters

/* Name of a layer function missing from this build, or NULL if none is. */
static inline const char *
worker_layer_missing(void)
{
#define MR_CHECK_(f) if ((void *) (f) == NULL) return #f
	MR_CHECK_(mr_strerror);
	MR_CHECK_(mr_node_new);
	MR_CHECK_(mr_node_free);
	MR_CHECK_(mr_shutdown);
	MR_CHECK_(mr_now);
	MR_CHECK_(mr_restore_group);
	MR_CHECK_(mr_restore_tombstone);
	MR_CHECK_(mr_create_group);
	MR_CHECK_(mr_propose);
	MR_CHECK_(mr_change_type_name);
	MR_CHECK_(mr_change_type_parse);
	MR_CHECK_(mr_propose_conf_change);
	MR_CHECK_(mr_transfer_leadership);
	MR_CHECK_(mr_read_index);
	MR_CHECK_(mr_remove_group);
	MR_CHECK_(mr_tick);
	MR_CHECK_(mr_receive);
	MR_CHECK_(mr_report_unreachable);
	MR_CHECK_(mr_event_type_name);
	MR_CHECK_(mr_has_ready);
	MR_CHECK_(mr_ready);
	MR_CHECK_(mr_advance);
	MR_CHECK_(mr_role_name);
	MR_CHECK_(mr_group_status);
	MR_CHECK_(mr_foreach_group);
	MR_CHECK_(mr_group_count);
	MR_CHECK_(mr_active_group_count);
	MR_CHECK_(mr_group_exists);
	MR_CHECK_(mr_group_tombstoned);
	MR_CHECK_(mr_get_counters);
	MR_CHECK_(mr_counter_count);
	MR_CHECK_(mr_counter_name);
	MR_CHECK_(mr_counter_value);
	MR_CHECK_(mr_peer_counters);
#undef MR_CHECK_
	return NULL;
}

#endif
