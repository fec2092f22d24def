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

#endif
