/*
 * bindsrc.c — LD_PRELOAD shim for the chaos test: makes every outgoing TCP
 * connection of a chaos node leave from that node's own loopback address.
 *
 * Why: on Linux a connection to 127.0.0.12 leaves from 127.0.0.1 (the src of the
 * "local 127.0.0.0/8" route), whatever address the sender listens on.  Then an
 * iptables rule cannot tell node 1's link to node 2 from node 3's, and the chaos
 * nemesis cannot cut one link.  With MRCHAOS_BIND_ADDR=127.0.0.11 in node 1's
 * environment, connect() first binds the socket to 127.0.0.11 (port 0: any), so
 * the rule "-s 127.0.0.11 -d 127.0.0.12 --dport <port 2> -j DROP" cuts exactly
 * the link 1 -> 2.  Only IPv4 sockets that are not bound yet and connect to
 * 127.0.0.0/8 are touched; everything else goes straight to libc's connect().
 *
 * Build: gcc -shared -fPIC -O2 -o bindsrc.so bindsrc.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	connect_fn real = (connect_fn) dlsym(RTLD_NEXT, "connect");
	const char *src = getenv("MRCHAOS_BIND_ADDR");

	if (real == NULL)
	{
		errno = ENOSYS;
		return -1;
	}
	if (src != NULL && addr != NULL && addr->sa_family == AF_INET &&
		len >= (socklen_t) sizeof(struct sockaddr_in))
	{
		const struct sockaddr_in *dst = (const struct sockaddr_in *) addr;
		struct sockaddr_in cur;
		socklen_t cur_len = sizeof cur;

		/* 127.0.0.0/8 only, and only a socket nobody has bound yet. */
		if ((ntohl(dst->sin_addr.s_addr) >> 24) == 127 &&
			getsockname(fd, (struct sockaddr *) &cur, &cur_len) == 0 &&
			cur.sin_family == AF_INET && cur.sin_port == 0 &&
			cur.sin_addr.s_addr == htonl(INADDR_ANY))
		{
			struct sockaddr_in me;
			int saved = errno;

			memset(&me, 0, sizeof me);
			me.sin_family = AF_INET;
			me.sin_port = 0;
			if (inet_pton(AF_INET, src, &me.sin_addr) == 1)
				(void) bind(fd, (struct sockaddr *) &me, sizeof me);	/* best effort */
			errno = saved;
		}
	}
	return real(fd, addr, len);
}
