"""psycopg2 in asynchronous mode with a hard client-side deadline per call.

A SIGSTOPped server never answers and a partitioned one may not either, so every
connect and query waits on the socket with select() until a deadline; past it the
connection is abandoned (closed) and the call reported as a timeout.

Failure.kind tells what the client knows about the outcome:
  "connect"  the statement was never sent (definite failure)
  "error"    the server raised an error (the command may or may not commit)
  "timeout"  no answer before the deadline (unknown outcome)
"""

import select
import time

import psycopg2
import psycopg2.extensions as ext


class Failure(Exception):
    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def _wait(conn, deadline, kind_on_error):
    while True:
        try:
            state = conn.poll()
        except psycopg2.Error as e:
            msg = (getattr(e, "pgerror", None) or str(e)).strip()
            raise Failure(kind_on_error, msg.splitlines()[0] if msg else type(e).__name__)
        if state == ext.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Failure("timeout", "client deadline passed")
        fd = conn.fileno()
        try:
            if state == ext.POLL_READ:
                select.select([fd], [], [], remaining)
            elif state == ext.POLL_WRITE:
                select.select([], [fd], [], remaining)
            else:
                raise Failure(kind_on_error, f"unexpected poll state {state}")
        except (OSError, ValueError) as e:
            raise Failure(kind_on_error, str(e))


class Conn:
    def __init__(self, raw):
        self.raw = raw

    def query(self, sql, params=None, deadline=None):
        """Run one statement; returns the rows (list of tuples, [] if none)."""
        if deadline is None:
            deadline = time.monotonic() + 30
        try:
            cur = self.raw.cursor()
            cur.execute(sql, params)
        except psycopg2.Error as e:
            raise Failure("connect", str(e).strip())
        _wait(self.raw, deadline, "error")
        try:
            return cur.fetchall() if cur.description is not None else []
        except psycopg2.Error as e:
            raise Failure("error", str(e).strip())

    def close(self):
        try:
            self.raw.close()
        except Exception:
            pass


def connect(dsn, deadline):
    try:
        raw = psycopg2.connect(async_=1, connect_timeout=max(1, int(deadline - time.monotonic())),
                               application_name="mrchaos", **dsn)
    except psycopg2.Error as e:
        raise Failure("connect", str(e).strip())
    try:
        _wait(raw, deadline, "connect")
    except Failure as f:
        try:
            raw.close()
        except Exception:
            pass
        if f.kind == "timeout":
            raise Failure("connect", "connect timed out")
        raise
    return Conn(raw)
