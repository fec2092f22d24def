/*
 * worker_layer.h — the multi-raft layer (src/multiraft/multiraft.h) together with
 * the worker's shared-memory interfaces (requests.h, status.h), for the files of
 * the worker and of storage.
 *
 * requests.h and status.h no longer redefine the layer's names (they use
 * MULTIRAFT_MAX_MEMBERS and REQ_CHANGE_* aliases of MR_CHANGE_*), so the three
 * headers can simply be included together.
 */
#ifndef MULTIRAFT_WORKER_LAYER_H
#define MULTIRAFT_WORKER_LAYER_H

#include "multiraft.h"
#include "requests.h"
#include "status.h"

#endif
