/*
 * requests.h — request slots: how a backend hands an operation (create a group,
 * submit a command, ...) to the multiraft worker and waits for its outcome.
 *
 * CONTRACT
 *
 * Backend side (the SQL functions, api_*.c):
 *   requests_call(&req, payload, len) claims a free slot, copies the request in
 *   (payloads larger than MR_INLINE_PAYLOAD travel in a pinned DSM segment), marks
 *   it PENDING, wakes the worker and sleeps on the slot's condition variable until
 *   the worker completes it, the timeout passes, or the worker stops.  It returns
 *   the log index on success and raises the SPEC error for every other result.  A
 *   cancel / terminate / timeout while waiting leaks nothing: the slot is freed at
 *   once if the worker has not taken it, otherwise marked abandoned and freed by
 *   the worker (its next requests_drain() or requests_complete()).
 *
 * Worker side (worker.c; a single process calls these):
 *   n = requests_drain(handle, arg)
 *       hands every newly PENDING request to handle() exactly once, as a
 *       MultiraftRequest whose payload was copied into CurrentMemoryContext (valid
 *       until the caller resets that context).  handle() runs without any lock
 *       held and may call requests_complete() itself.  It should not throw: a
 *       request not yet handed when it throws stays taken until its backend times
 *       out.  The first call in a worker process also reclaims slots left taken by
 *       a previous worker incarnation.  Returns the number of requests handed.
 *   requests_complete(token, result, index, detail)
 *       records the outcome of the request with that token and wakes its backend.
 *       A token whose slot was freed or recycled meanwhile (backend gone, timed
 *       out) is ignored and false is returned — so a late completion from the
 *       multi-raft layer is always safe.  detail (may be NULL) is shown to the
 *       user as the error's message/detail for error results.
 *   requests_complete_mr(token, mr_result, index)
 *       the same for a multi-raft layer code (MR_OK / MR_E*): use it for every
 *       struct mr_completion, and for a request the layer refused synchronously.
 *   Every request handed out should eventually be completed (success or error);
 *   the token (req->token) is the caller token to give mr_propose() etc., and
 *   req->timeout_ms / multiraft.tick_interval (rounded up) its deadline_ticks.
 *   If the worker drops a request without completing it, the backend still times
 *   out and the slot is reclaimed; the worker exiting fails every request it took
 *   with "raft processing stopped" (an exit callback registered by the first drain).
 *
 * Ordering rule for the worker: publish a group's status (status_publish) before
 * completing the create_group that made it, and remove it (status_remove) when the
 * group is dropped: the SQL functions check group existence in the published
 * status before sending a request.
 */
#ifndef MULTIRAFT_REQUESTS_H
#define MULTIRAFT_REQUESTS_H

#include "datatype/timestamp.h"

#include "status.h"				/* MULTIRAFT_MAX_MEMBERS, multiraft.h */

/* Longest command_id, in bytes. */
#define MR_MAX_COMMAND_ID 256
/* Payloads up to this size are copied into the slot itself; larger ones use DSM. */
#define MR_INLINE_PAYLOAD 1024
/* Room for the worker's explanation of an error result. */
#define MR_MAX_DETAIL 256

/*
 * change_type carries enum mr_change_type of multiraft.h (MR_CHANGE_ADD_VOTER = 1,
 * MR_CHANGE_REMOVE_VOTER = 2, MR_CHANGE_ADD_LEARNER = 3), 0 for none.  The
 * REQ_CHANGE_* names are kept for code written against an earlier version.
 */
typedef int MultiraftChangeType;
#define REQ_CHANGE_NONE 0
#define REQ_CHANGE_ADD_VOTER MR_CHANGE_ADD_VOTER
#define REQ_CHANGE_REMOVE_VOTER MR_CHANGE_REMOVE_VOTER
#define REQ_CHANGE_ADD_LEARNER MR_CHANGE_ADD_LEARNER

typedef enum MultiraftRequestType
{
	MR_REQ_CREATE_GROUP = 1,	/* group_id, members[] */
	MR_REQ_REMOVE_GROUP,		/* group_id */
	MR_REQ_SUBMIT,				/* group_id, command_id, payload */
	MR_REQ_CHANGE_MEMBERSHIP,	/* group_id, change_type, node_id, command_id, payload */
	MR_REQ_TRANSFER_LEADERSHIP, /* group_id, node_id */
	MR_REQ_READ_INDEX			/* group_id */
} MultiraftRequestType;

/* Outcome categories (SPEC "Errors"); requests_call() turns them into ereports. */
typedef enum MultiraftResult
{
	MR_RESULT_OK = 0,			/* index is the log index (0 when none) */
	MR_RESULT_GROUP_NOT_FOUND,	/* "group <id> does not exist" */
	MR_RESULT_GROUP_EXISTS,		/* "group <id> already exists" */
	MR_RESULT_GROUP_DELETED,	/* "raft group deleted" */
	MR_RESULT_STOPPED,			/* "raft processing stopped" */
	MR_RESULT_TIMED_OUT,		/* "timed out" (worker gave up, e.g. proposal dropped) */
	MR_RESULT_NOT_MEMBER,		/* "node <id> is not a member ..." (node_id or this node) */
	MR_RESULT_INVALID,			/* invalid request; detail says why */
	MR_RESULT_UNAVAILABLE,		/* no leader / not leader / busy; detail says why */
	MR_RESULT_EXPIRED,			/* "timed out": a generated-id command expired (never applies) */
	MR_RESULT_REMOVED			/* "node <id> was removed ...": this node left the group while
								 * the request waited; it may still commit there */
} MultiraftResult;

/* One request as the worker sees it (a private copy). */
typedef struct MultiraftRequest
{
	uint64		token;			/* caller token for the multi-raft layer; never 0 */
	MultiraftRequestType type;
	int64		group_id;
	int32		node_id;		/* target of change_membership / transfer_leadership */
	MultiraftChangeType change_type;	/* enum mr_change_type; 0 if none */
	int32		timeout_ms;		/* how long the backend waits */
	TimestampTz deadline;		/* when the backend stops waiting */
	int			nmembers;		/* create_group: the members */
	int32		members[MULTIRAFT_MAX_MEMBERS];
	int			command_id_len; /* submit / change_membership; NUL-terminated */
	bool		command_id_generated;	/* requests_generate_command_id() made it */
	char		command_id[MR_MAX_COMMAND_ID + 1];
	Size		payload_len;
	char	   *payload;		/* worker: palloc'd copy (NULL when empty) */
} MultiraftRequest;

/* ---- backend side ---- */

/*
 * Send req (type and arguments filled; token/deadline are set here) with its
 * payload and wait.  Returns the index of an MR_RESULT_OK outcome; every other
 * outcome, a timeout or a stopped worker raises the matching SPEC error.
 */
extern uint64 requests_call(MultiraftRequest *req, const char *payload, Size payload_len);

/* Fill req->command_id with a fresh id unique to this node ("<node>-<seq>-<random>"). */
extern void requests_generate_command_id(MultiraftRequest *req);

/* ---- worker side ---- */

typedef void (*MultiraftRequestHandler) (MultiraftRequest *req, void *arg);

extern int	requests_drain(MultiraftRequestHandler handle, void *arg);
extern bool requests_complete(uint64 token, MultiraftResult result, uint64 index,
							  const char *detail);

/* The outcome category of a multi-raft layer code (MR_OK, MR_E*), and
 * requests_complete() with it plus a detail text where the category needs one —
 * what the worker calls for each struct mr_completion (and for a request the
 * layer refused synchronously). */
extern MultiraftResult requests_result_from_mr(int mr_result);
extern bool requests_complete_mr(uint64 token, int mr_result, uint64 index);

/* ---- shared memory (shmem.c part table) and introspection ---- */

extern Size requests_shmem_size(void);
extern void requests_shmem_init(void *area);
extern void *multiraft_requests_area;

/* Slots currently not free (waiting, taken by the worker, or abandoned). */
extern int	requests_in_use(void);
extern int	requests_capacity(void);

#endif
