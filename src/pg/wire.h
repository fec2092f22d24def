/*
 * wire.h — conversion between the multi-raft layer's envelopes (struct
 * mr_envelope) and the protobuf wire format of proto/multiraft.proto.
 *
 * Encoding cuts a Batch larger than MR_WIRE_CHUNK_SIZE into chunk frames; every
 * frame (whole Batch or chunk) is at most MR_WIRE_MAX_FRAME bytes, which is what
 * multiraft.receive() accepts.  Decoding trusts nothing: a frame is rejected as
 * a whole, with a reason and a message, if it does not parse, names another
 * protocol version, cluster or destination node, or has any field out of range.
 *
 * Memory: everything is palloc'd in CurrentMemoryContext (protobuf-c's own
 * allocations included, through a ProtobufCAllocator); callers run these in a
 * short-lived context and reset it.  No function here throws on bad input.
 */
#ifndef MULTIRAFT_WIRE_H
#define MULTIRAFT_WIRE_H

#include "multiraft.h"

#define MR_WIRE_VERSION 1

/* Bytes of an encoded Batch carried by one chunk frame. */
#define MR_WIRE_CHUNK_SIZE (512 * 1024)
/* Largest frame multiraft.receive() accepts (a chunk plus its header, with room). */
#define MR_WIRE_MAX_FRAME (MR_WIRE_CHUNK_SIZE + 64 * 1024)
/* Bounds on decoded arrays (anything larger is garbage, not traffic). */
#define MR_WIRE_MAX_ITEMS 1000000	/* messages + heartbeats per Batch */
#define MR_WIRE_MAX_ENTRIES 1000000 /* entries per message */
#define MR_WIRE_MAX_CONF 4096		/* replica ids per conf array */

/* Largest reassembled Batch: 64 MB plus two largest commands. */
extern size_t wire_max_batch(void);

typedef enum WireResult
{
	WIRE_OK = 0,
	WIRE_TOO_LARGE,				/* frame / batch longer than allowed */
	WIRE_UNDECODABLE,			/* not a protobuf Batch (garbage, truncated) */
	WIRE_BAD_VERSION,			/* unknown protocol version */
	WIRE_BAD_CLUSTER,			/* another cluster id */
	WIRE_BAD_NODE,				/* sender or destination node wrong */
	WIRE_BAD_FIELD				/* some field out of range */
} WireResult;

/* A decoded frame: either a whole envelope or one chunk of a larger Batch. */
typedef struct WireFrame
{
	uint32		from_node;
	uint32		to_node;
	bool		is_chunk;
	/* is_chunk: */
	uint64		stream_id;
	uint32		chunk_index;
	uint32		chunk_count;
	uint64		total_len;
	const uint8 *chunk_data;
	size_t		chunk_len;
	/* !is_chunk: the envelope (arrays palloc'd) */
	struct mr_envelope env;
} WireFrame;

/*
 * Decodes and validates one frame addressed to node my_node in cluster
 * cluster_id.  On failure returns the reason and sets *errmsg to a palloc'd
 * sentence naming the problem.
 */
extern WireResult wire_decode_frame(const void *buf, size_t len, uint64 cluster_id,
									uint32 my_node, WireFrame *out, char **errmsg);

/*
 * Decodes a reassembled Batch (not itself a chunk) that must come from
 * from_node; as wire_decode_frame otherwise.
 */
extern WireResult wire_decode_batch(const void *buf, size_t len, uint64 cluster_id,
									uint32 my_node, uint32 from_node,
									struct mr_envelope *env, char **errmsg);

/* Encoded frames of one envelope, in sending order. */
typedef struct WireFrames
{
	int			n;
	char	  **data;
	size_t	   *len;
	size_t		batch_len;		/* length of the encoded Batch before chunking */
} WireFrames;

/*
 * Encodes env (from env->from_node to env->to_node) into one frame, or into
 * chunk frames numbered under stream_id when the Batch exceeds
 * MR_WIRE_CHUNK_SIZE.  Returns false (and *errmsg) if the Batch would exceed
 * wire_max_batch().
 */
extern bool wire_encode(const struct mr_envelope *env, uint64 cluster_id,
						uint64 stream_id, WireFrames *out, char **errmsg);

/* A one-line readable rendering of an envelope (logs, tests). */
extern char *wire_describe(const struct mr_envelope *env);

#endif
