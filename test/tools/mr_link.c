/*
 * mr_link — plays a peer's worker on one node link, for the TAP tests:
 * opens the stream (CALL multiraft.receive_stream), sends each frame given in
 * hex as one CopyData message, then ends the stream with CopyDone (or CopyFail
 * with --fail MESSAGE) and prints how the server answered:
 *   "done"            the CALL completed
 *   "error: MESSAGE"  the server refused the stream or ended it with an error
 *
 * --raw HEX writes the bytes as they are on the connection's socket instead
 * (hostile framing), and the tool stops after them: "closed" if the server
 * then closed the connection, "open" if it still held it 5 s later.
 *
 * --silent: after the frames, neither end the stream nor send anything more;
 * wait until the server ends it (a vanished peer, as the server sees it).
 *
 * usage: mr_link CONNINFO FROM_NODE TO_NODE CLUSTER_ID [--fail MESSAGE] [--silent]
 *                [--raw HEX] [HEX ...]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include "libpq-fe.h"

static int
report(PGconn *conn, PGresult *res)
{
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);

	if (res && PQresultStatus(res) == PGRES_COMMAND_OK)
	{
		printf("done\n");
		return 0;
	}
	printf("error: %s", msg[0] ? msg : "no result\n");
	return 1;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex (an optional "\x" prefix allowed) into buf; returns its length or -1. */
static int
unhex(const char *hex, char *buf, size_t cap)
{
	size_t		n = 0;

	if (hex[0] == '\\' && hex[1] == 'x')
		hex += 2;
	for (; hex[0] && hex[1]; hex += 2)
	{
		int			hi = hex_value(hex[0]);
		int			lo = hex_value(hex[1]);

		if (hi < 0 || lo < 0 || n == cap)
			return -1;
		buf[n++] = (char) (hi * 16 + lo);
	}
	return hex[0] ? -1 : (int) n;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	char		sql[128];
	const char *fail = NULL;
	bool		silent = false;
	int			rc;

	if (argc < 5)
	{
		fprintf(stderr, "usage: mr_link CONNINFO FROM_NODE TO_NODE CLUSTER_ID [--fail MESSAGE] [--silent] [--raw HEX] [HEX ...]\n");
		return 2;
	}
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "mr_link: %s", PQerrorMessage(conn));
		return 2;
	}
	snprintf(sql, sizeof(sql), "CALL multiraft.receive_stream(%d, %d, %lld)",
			 atoi(argv[2]), atoi(argv[3]), atoll(argv[4]));
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH)
		return report(conn, res);
	PQclear(res);

	for (int i = 5; i < argc; i++)
	{
		static char frame[1 << 20];
		int			len;

		if (strcmp(argv[i], "--fail") == 0 && i + 1 < argc)
		{
			fail = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--silent") == 0)
		{
			silent = true;
			continue;
		}
		if (strcmp(argv[i], "--raw") == 0 && i + 1 < argc)
		{
			struct pollfd pfd;

			len = unhex(argv[++i], frame, sizeof(frame));
			if (len < 0 || PQflush(conn) != 0 || write(PQsocket(conn), frame, len) != len)
			{
				fprintf(stderr, "mr_link: could not write the raw bytes\n");
				return 2;
			}
			/* Readable with nothing to read: the server closed the connection. */
			pfd.fd = PQsocket(conn);
			pfd.events = POLLIN;
			for (;;)
			{
				char		c;

				if (poll(&pfd, 1, 5000) <= 0)
				{
					printf("open\n");
					return 0;
				}
				if (read(pfd.fd, &c, 1) <= 0)
				{
					printf("closed\n");
					return 0;
				}
			}
		}
		len = unhex(argv[i], frame, sizeof(frame));
		if (len < 0)
		{
			fprintf(stderr, "mr_link: not hex: %s\n", argv[i]);
			return 2;
		}
		if (PQputCopyData(conn, frame, len) != 1)
			return report(conn, NULL);
	}
	if (silent ? PQflush(conn) != 0 : (PQputCopyEnd(conn, fail) != 1 || PQflush(conn) != 0))
		return report(conn, NULL);

	/* COPY BOTH: the server's CopyDone comes first, then the CALL's result. */
	for (;;)
	{
		char	   *buf = NULL;
		int			n = PQgetCopyData(conn, &buf, 0);

		if (n > 0)
		{
			PQfreemem(buf);
			continue;
		}
		break;
	}
	res = PQgetResult(conn);
	rc = report(conn, res);
	PQclear(res);
	PQfinish(conn);
	return rc;
}
