/*
 * transport_adopt.c — adopted node links (transport_adopt.h): the hand-over
 * from a receive_stream() backend to the worker, and the worker reading the
 * peers' CopyData streams itself.
 *
 * The hand-over is one datagram: a small header naming the sender node and the
 * socket as SCM_RIGHTS.  The datagram socket lives in the data directory (mode
 * 0700 like the directory: only the server's OS user reaches it), so no other
 * local user can inject a socket; the header is checked anyway.
 *
 * The worker keeps one link per sender node: a newer one replaces the older
 * (a sender has one connection per peer, so a new one means it gave up the
 * old, e.g. after a partition left it half-open), and at most
 * MR_MAX_ADOPTED_LINKS in all.  Bad framing (an unknown message type, a length
 * out of bounds) closes the link; a bad frame inside good framing is dropped and
 * counted by the caller, as at the backend's door.
 */
#include "postgres.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "guc.h"
#include "inbox.h"
#include "transport_adopt.h"
#include "transport_peer.h"
#include "wire.h"

#define MR_ADOPT_MAGIC 0x4d524c4bU	/* "MRLK" */
#define MR_MAX_ADOPTED_LINKS 256
/* Bytes read from one link per adopt_drain() call. */
#define MR_ADOPT_READ_BUDGET (1024 * 1024)
#define MR_ADOPT_READ_CHUNK (64 * 1024)
/* Largest message: a CopyData of the largest frame (type byte and length too). */
#define MR_ADOPT_MAX_MESSAGE (1 + 4 + MR_WIRE_MAX_FRAME + 4)

bool		multiraft_adopt_links = true;

typedef struct AdoptHeader
{
	uint32		magic;
	int32		from_node;
	int32		to_node;
	int32		cluster_id;
} AdoptHeader;

static void
adopt_address(struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	strlcpy(addr->sun_path, MR_ADOPT_SOCKET_NAME, sizeof(addr->sun_path));
}

/* ---------------------------------------------------------------- backend */

bool
adopt_may_hand_over(void)
{
	if (!multiraft_adopt_links || MyProcPort == NULL || MyProcPort->sock == PGINVALID_SOCKET)
		return false;
	/* TLS or GSS state lives in this process: such a link stays here. */
	if (MyProcPort->ssl_in_use)
		return false;
#ifdef ENABLE_GSS
	if (be_gssapi_get_enc(MyProcPort))
		return false;
#endif
	return true;
}

bool
adopt_hand_over(int32 from_node)
{
	struct sockaddr_un addr;
	AdoptHeader hdr;
	struct iovec iov;
	struct msghdr msg;
	union
	{
		char		buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	}			control;
	struct cmsghdr *cmsg;
	int			s;
	ssize_t		sent;

	if (!adopt_may_hand_over())
		return false;
	/* Bytes already read from the socket would be lost to the worker. */
	if (pq_buffer_has_data())
		return false;

	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	adopt_address(&addr);
	hdr.magic = MR_ADOPT_MAGIC;
	hdr.from_node = from_node;
	hdr.to_node = multiraft_node_id;
	hdr.cluster_id = multiraft_cluster_id;
	iov.iov_base = &hdr;
	iov.iov_len = sizeof(hdr);
	memset(&msg, 0, sizeof(msg));
	memset(&control, 0, sizeof(control));
	msg.msg_name = &addr;
	msg.msg_namelen = sizeof(addr);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &MyProcPort->sock, sizeof(int));
	/* No worker listening (ENOENT, ECONNREFUSED) or a full queue: stay here. */
	sent = sendmsg(s, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(s);
	return sent == (ssize_t) sizeof(hdr);
}

/* ---------------------------------------------------------------- worker */

typedef struct AdoptedLink
{
	pgsocket	sock;			/* PGINVALID_SOCKET: free slot */
	int32		from_node;
	uint64		serial;
	bool		readable;
	char	   *buf;			/* unparsed bytes: buf[start .. len) */
	size_t		start;
	size_t		len;
	size_t		cap;
} AdoptedLink;

static pgsocket door = PGINVALID_SOCKET;
static bool door_readable = false;
static AdoptedLink links[MR_MAX_ADOPTED_LINKS];
static int	n_links = 0;		/* slots in use are below n_links */
static uint64 next_serial = 1;

static void
adopt_exit(int code, Datum arg)
{
	adopt_shutdown();
}

void
adopt_init(void)
{
	struct sockaddr_un addr;
	pgsocket	s;

	if (door != PGINVALID_SOCKET)
		return;
	for (int i = 0; i < MR_MAX_ADOPTED_LINKS; i++)
		links[i].sock = PGINVALID_SOCKET;
	n_links = 0;
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
	{
		ereport(LOG, (errmsg("multiraft: node links stay with their backends: socket(): %m")));
		return;
	}
	adopt_address(&addr);
	/* A previous worker's socket (it crashed, or the server did). */
	(void) unlink(MR_ADOPT_SOCKET_NAME);
	if (bind(s, (struct sockaddr *) &addr, sizeof(addr)) != 0)
	{
		ereport(LOG, (errmsg("multiraft: node links stay with their backends: bind(\"%s\"): %m",
							 MR_ADOPT_SOCKET_NAME)));
		close(s);
		return;
	}
	/* Only the server's OS user may hand sockets over (umask gives 0700 too). */
	(void) chmod(MR_ADOPT_SOCKET_NAME, S_IRUSR | S_IWUSR);
	door = s;
	before_shmem_exit(adopt_exit, (Datum) 0);
}

static void
link_close(AdoptedLink *l)
{
	if (l->sock == PGINVALID_SOCKET)
		return;
	close(l->sock);
	ReleaseExternalFD();
	if (l->buf)
		pfree(l->buf);
	memset(l, 0, sizeof(*l));
	l->sock = PGINVALID_SOCKET;
	transport_counter_add(TC_ADOPTED_CLOSED, 1);
	while (n_links > 0 && links[n_links - 1].sock == PGINVALID_SOCKET)
		n_links--;
}

void
adopt_shutdown(void)
{
	for (int i = 0; i < n_links; i++)
		link_close(&links[i]);
	if (door != PGINVALID_SOCKET)
	{
		close(door);
		door = PGINVALID_SOCKET;
		(void) unlink(MR_ADOPT_SOCKET_NAME);
	}
}

int
adopt_max_wait_entries(void)
{
	return 1 + n_links;			/* the datagram socket and the slots in use */
}

int
adopt_wait_entries(AdoptWait *out, int max)
{
	int			n = 0;

	if (door != PGINVALID_SOCKET && n < max)
	{
		out[n].sock = door;
		out[n].serial = 0;
		out[n].slot = -1;
		n++;
	}
	for (int i = 0; i < n_links && n < max; i++)
	{
		if (links[i].sock == PGINVALID_SOCKET)
			continue;
		out[n].sock = links[i].sock;
		out[n].serial = links[i].serial;
		out[n].slot = i;
		n++;
	}
	return n;
}

void
adopt_mark_readable(int slot)
{
	if (slot < 0)
		door_readable = true;
	else if (slot < n_links)
		links[slot].readable = true;
}

/* Close every fd that came with a datagram we do not take. */
static void
close_passed_fds(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c))
	{
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t off = 0; off + sizeof(int) <= c->cmsg_len - CMSG_LEN(0); off += sizeof(int))
		{
			int			fd;

			memcpy(&fd, CMSG_DATA(c) + off, sizeof(int));
			close(fd);
		}
	}
}

static void
take_link(pgsocket sock, int32 from_node)
{
	AdoptedLink *slot = NULL;
	AdoptedLink *oldest = NULL;

	/* One link per sender: the newer connection is the one it uses. */
	for (int i = 0; i < n_links; i++)
		if (links[i].sock != PGINVALID_SOCKET && links[i].from_node == from_node)
			link_close(&links[i]);
	for (int i = 0; i < MR_MAX_ADOPTED_LINKS && slot == NULL; i++)
		if (links[i].sock == PGINVALID_SOCKET)
			slot = &links[i];
	if (slot == NULL)
	{
		/* Table full (hostile or broken senders): the oldest link goes. */
		for (int i = 0; i < MR_MAX_ADOPTED_LINKS; i++)
			if (oldest == NULL || links[i].serial < oldest->serial)
				oldest = &links[i];
		link_close(oldest);
		slot = oldest;
	}
	if (!AcquireExternalFD())
	{
		ereport(LOG, (errmsg("multiraft: could not take the link from node %d: too many open files in the worker",
							 from_node)));
		close(sock);
		return;
	}
	slot->sock = sock;
	slot->from_node = from_node;
	slot->serial = next_serial++;
	slot->readable = true;		/* the peer may have sent before we took it */
	slot->buf = NULL;
	slot->start = slot->len = slot->cap = 0;
	if (slot - links >= n_links)
		n_links = (int) (slot - links) + 1;
	transport_counter_add(TC_LINKS_ADOPTED, 1);
	ereport(DEBUG1, (errmsg("multiraft: took over the link from node %d", from_node)));
}

/* Receive every queued hand-over. */
static void
take_new_links(void)
{
	for (;;)
	{
		AdoptHeader hdr;
		struct iovec iov;
		struct msghdr msg;
		union
		{
			char		buf[CMSG_SPACE(4 * sizeof(int))];
			struct cmsghdr align;
		}			control;
		struct cmsghdr *c;
		ssize_t		n;
		int			fd = -1;
		struct stat st;

		iov.iov_base = &hdr;
		iov.iov_len = sizeof(hdr);
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		n = recvmsg(door, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return;				/* EAGAIN: nothing more */
		}
		c = CMSG_FIRSTHDR(&msg);
		if (n != (ssize_t) sizeof(hdr) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
			c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
			c->cmsg_len != CMSG_LEN(sizeof(int)) || CMSG_NXTHDR(&msg, c) != NULL ||
			hdr.magic != MR_ADOPT_MAGIC || hdr.to_node != multiraft_node_id ||
			hdr.cluster_id != multiraft_cluster_id || hdr.from_node <= 0 ||
			hdr.from_node == multiraft_node_id)
		{
			close_passed_fds(&msg);
			transport_counter_add(TC_REJECTED, 1);
			ereport(LOG, (errmsg("multiraft: ignored a malformed link hand-over")));
			continue;
		}
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		{
			close(fd);
			transport_counter_add(TC_REJECTED, 1);
			ereport(LOG, (errmsg("multiraft: ignored a link hand-over without a socket")));
			continue;
		}
		take_link(fd, hdr.from_node);
	}
}

/* A message's length word (network order, maybe unaligned). */
static uint32
get_u32(const char *p)
{
	uint32		x;

	memcpy(&x, p, sizeof(x));
	return pg_ntoh32(x);
}

/* The end of the stream a CopyDone asks for: what receive_stream() answers. */
static void
answer_copy_done(AdoptedLink *l)
{
	static const char reply[] = {
		'c', 0, 0, 0, 4,
		'C', 0, 0, 0, 9, 'C', 'A', 'L', 'L', 0,
		'Z', 0, 0, 0, 5, 'I'
	};

	(void) send(l->sock, reply, sizeof(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Parse the complete messages in l's buffer.  Returns false when the link must
 * close (its end, or broken framing).
 */
static bool
parse_messages(AdoptedLink *l,
			   void (*frame) (const char *data, size_t len, uint32 from_node, void *arg),
			   void *arg)
{
	while (l->len - l->start >= 5)
	{
		const char *m = l->buf + l->start;
		char		type = m[0];
		uint32		mlen = get_u32(m + 1);
		size_t		limit = type == 'd' ? MR_WIRE_MAX_FRAME + 4 : PQ_SMALL_MESSAGE_LIMIT;

		if (mlen < 4 || mlen > limit ||
			(type != 'd' && type != 'c' && type != 'f' && type != 'H' &&
			 type != 'S' && type != 'X'))
		{
			transport_counter_add(TC_REJECTED, 1);
			ereport(LOG,
					(errmsg("multiraft: closed the link from node %d: broken message (type 0x%02X, length %u)",
							l->from_node, (unsigned char) type, mlen)));
			return false;
		}
		if (l->len - l->start < 1 + (size_t) mlen)
			return true;		/* the rest is still on its way */
		l->start += 1 + mlen;
		switch (type)
		{
			case 'd':
				frame(m + 5, mlen - 4, (uint32) l->from_node, arg);
				break;
			case 'c':
				answer_copy_done(l);
				return false;
			case 'f':
				ereport(LOG,
						(errmsg("multiraft node link from node %d ended by the peer: %.*s",
								l->from_node, (int) strnlen(m + 5, mlen - 4), m + 5)));
				return false;
			case 'X':
				return false;
			default:
				break;			/* Flush, Sync: nothing to do */
		}
	}
	return true;
}

/* Read what l has for us, within the budget. */
static void
read_link(AdoptedLink *l,
		  void (*frame) (const char *data, size_t len, uint32 from_node, void *arg),
		  void *arg)
{
	size_t		budget = MR_ADOPT_READ_BUDGET;

	l->readable = false;
	while (budget > 0)
	{
		ssize_t		n;
		size_t		want;

		/*
		 * The partial message left by the last parse moves to the front (it is
		 * short but for a large frame's first part), then there is room for the
		 * next chunk, or for the whole message being read.
		 */
		if (l->start > 0)
		{
			memmove(l->buf, l->buf + l->start, l->len - l->start);
			l->len -= l->start;
			l->start = 0;
		}
		want = l->len + MR_ADOPT_READ_CHUNK;
		if (l->len >= 5)
			want = Max(want, Min((size_t) 1 + get_u32(l->buf + 1), (size_t) MR_ADOPT_MAX_MESSAGE));
		if (want > l->cap)
		{
			size_t		cap = Max(want, l->cap * 2);

			cap = Min(cap, (size_t) MR_ADOPT_MAX_MESSAGE + MR_ADOPT_READ_CHUNK);
			l->buf = l->buf ? repalloc(l->buf, cap) : MemoryContextAlloc(TransportContext, cap);
			l->cap = cap;
		}
		n = recv(l->sock, l->buf + l->len, Min(l->cap - l->len, budget), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
		{
			if (n < 0)
				ereport(LOG, (errmsg("multiraft: the link from node %d failed: %m", l->from_node)));
			link_close(l);
			return;
		}
		l->len += n;
		budget -= Min((size_t) n, budget);
		if (!parse_messages(l, frame, arg))
		{
			link_close(l);
			return;
		}
	}
	l->readable = true;			/* budget spent: more may be there */
}

void
adopt_drain(void (*frame) (const char *data, size_t len, uint32 from_node, void *arg),
			void *arg)
{
	if (door_readable && door != PGINVALID_SOCKET)
	{
		door_readable = false;
		take_new_links();
	}
	for (int i = 0; i < n_links; i++)
		if (links[i].sock != PGINVALID_SOCKET && links[i].readable)
			read_link(&links[i], frame, arg);
}
