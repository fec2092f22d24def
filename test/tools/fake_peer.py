#!/usr/bin/env python3
"""fake_peer.py PORT MODE — a fake PostgreSQL server at a registered node address,
for tests of how the worker copes with what answers there.

It refuses SSL and GSS encryption, accepts any login without a password, and
answers the worker's CALL multiraft.receive_stream(...) according to MODE:
  copydone  CopyBothResponse, then CopyDone at once: the stream's server half
            ends, which leaves libpq in COPY IN.
It serves connections one after another until killed, and prints "listening"
once it accepts them, "copydone" each time it ended a stream.
"""
import socket
import struct
import sys


def recv_exact(c, n):
    data = b''
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve(c, mode):
    while True:  # SSLRequest / GSSENCRequest, then the startup packet
        (length,) = struct.unpack('!I', recv_exact(c, 4))
        body = recv_exact(c, length - 4)
        (code,) = struct.unpack('!I', body[:4])
        if code in (80877103, 80877104):
            c.sendall(b'N')
            continue
        break
    c.sendall(b'R' + struct.pack('!II', 8, 0))          # AuthenticationOk
    c.sendall(b'Z' + struct.pack('!I', 5) + b'I')        # ReadyForQuery
    while True:
        kind = recv_exact(c, 1)
        (length,) = struct.unpack('!I', recv_exact(c, 4))
        recv_exact(c, length - 4)
        if kind == b'X':
            return
        if kind == b'Q' and mode == 'copydone':
            c.sendall(b'W' + struct.pack('!IbH', 7, 0, 0))  # CopyBothResponse
            c.sendall(b'c' + struct.pack('!I', 4))            # CopyDone
            print('copydone', flush=True)


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', port))
    s.listen(8)
    print('listening', flush=True)
    while True:
        c, _ = s.accept()
        try:
            serve(c, mode)
        except (EOFError, ConnectionError):
            pass
        finally:
            c.close()


if __name__ == '__main__':
    main()
