"""The chaos cluster: N PostgreSQL servers, each on its own loopback address.

Node k listens on 127.0.0.(10+k):(base_port+k) and, through the bindsrc.so
LD_PRELOAD shim, also *sends* from 127.0.0.(10+k), so that iptables can cut one
link (see netfault.py).  The servers are direct children of this process (run
as the postgres user), so a kill -9 is reaped here and a restart never trips
over a stale lock file.
"""

import os
import signal
import shutil
import subprocess
import time

import pgconn

def pg_config(what):
    return subprocess.run(["pg_config", f"--{what}"], capture_output=True, text=True,
                          check=True).stdout.strip()


def private_install(dest):
    """Copy the installed PostgreSQL + multiraft (bindir, pkglibdir, sharedir) under
    dest, keeping their relative layout: PostgreSQL finds $libdir and the share
    directory relative to its executable, so the copy is self-contained.  Other users
    of the machine may "make install" while a run goes on; the cluster keeps running
    (and restarting) the binary it started with.  Returns the private bindir."""
    for what in ("bindir", "pkglibdir", "sharedir"):
        src = pg_config(what)
        dst = dest + src
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        subprocess.run(["cp", "-a", src, dst], check=True)
    subprocess.run(["chmod", "-R", "a+rX", dest], check=True)
    return dest + pg_config("bindir")


def children_of(pid):
    """Pids whose parent is pid (from /proc; no pgrep dependency)."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        # comm may contain spaces: the fields after the last ')' are fixed.
        rest = st[st.rfind(")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == pid:
            kids.append(int(d))
    return kids


class Node:
    def __init__(self, k, workdir, base_port, shim, tick, log, extra_conf=(), bindir=None):
        self.id = k
        self.extra_conf = list(extra_conf)
        self.addr = f"127.0.0.{10 + k}"
        self.port = base_port + k
        self.datadir = os.path.join(workdir, f"node{k}")
        self.logfile = os.path.join(workdir, f"node{k}.log")
        self.sockdir = workdir
        self.shim = shim
        self.tick = tick
        self.log = log
        self.proc = None
        self.cluster = None
        self.paused = []          # pids we SIGSTOPped, in order
        self.bindir = bindir or pg_config("bindir")

    # ------------------------------------------------------------------ set-up
    def initdb(self):
        subprocess.run([os.path.join(self.bindir, "initdb"), "-D", self.datadir,
                        "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       user="postgres", group="postgres", cwd=self.sockdir)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write(f"""
# --- multiraft chaos node {self.id}
port = {self.port}
listen_addresses = '{self.addr}'
unix_socket_directories = '{self.sockdir}'
shared_preload_libraries = 'multiraft'
multiraft.node_id = {self.id}
multiraft.database = 'postgres'
multiraft.tick_interval = '{self.tick}'
max_connections = 100
# kill -9 loses no written WAL: fsync only matters for power loss, which this
# test does not simulate.  synchronous_commit stays on (a process crash must not
# lose an acknowledged raft write).
fsync = off
log_line_prefix = '%m [%p] '
log_min_messages = warning
""")
            for line in self.extra_conf:
                name, _, value = line.partition("=")
                f.write(f"{name.strip()} = '{value.strip()}'\n")
        # Peers connect from their own 127.0.0.x (bindsrc.so): trust the chaos range.
        with open(os.path.join(self.datadir, "pg_hba.conf"), "a") as f:
            f.write("host all all 127.0.0.0/8 trust\n")

    def dsn(self):
        return dict(host=self.addr, port=self.port, user="postgres", dbname="postgres")

    # ---------------------------------------------------------------- process
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=60):
        """Start the postmaster and wait until it accepts connections."""
        if self.running():
            return
        if self.cluster is not None:
            self.cluster.check_open()
            self.cluster.check_lib()
        env = dict(os.environ)
        env.update(LD_PRELOAD=self.shim, MRCHAOS_BIND_ADDR=self.addr,
                   PGDATA=self.datadir, LC_ALL="C")
        deadline = time.monotonic() + timeout
        while True:
            logf = open(self.logfile, "ab")
            self.proc = subprocess.Popen(
                [os.path.join(self.bindir, "postgres"), "-D", self.datadir],
                stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=self.sockdir,
                user="postgres", group="postgres", start_new_session=True)
            logf.close()
            while time.monotonic() < deadline:
                if self.cluster is not None and self.cluster.closing:
                    self.kill9()
                    raise RuntimeError("cluster is shutting down")
                if self.proc.poll() is not None:
                    break           # e.g. old shared memory still attached: retry
                try:
                    c = pgconn.connect(self.dsn(), deadline=time.monotonic() + 2)
                    c.close()
                    return
                except pgconn.Failure:
                    time.sleep(0.2)
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"node{self.id} did not start; see {self.logfile}")
            time.sleep(0.5)

    def pids(self):
        if not self.running():
            return []
        return [self.proc.pid] + children_of(self.proc.pid)

    def kill9(self):
        """Crash the whole server: postmaster and every child, SIGKILL."""
        if not self.running():
            return
        pm = self.proc.pid
        try:
            os.kill(pm, signal.SIGSTOP)     # no new children while we list them
        except ProcessLookupError:
            pass
        for pid in children_of(pm) + [pm]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.paused = []

    def pause(self):
        """SIGSTOP the postmaster (first: it forks no more) and then its children."""
        if not self.running() or self.paused:
            return
        pm = self.proc.pid
        os.kill(pm, signal.SIGSTOP)
        self.paused = [pm]
        for pid in children_of(pm):
            try:
                os.kill(pid, signal.SIGSTOP)
                self.paused.append(pid)
            except ProcessLookupError:
                pass

    def resume(self):
        """SIGCONT the children, then the postmaster."""
        if not self.paused:
            return
        pm = self.paused[0]
        for pid in reversed(self.paused[1:]):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            for pid in children_of(pm):
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        try:
            os.kill(pm, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.paused = []

    def stop(self):
        """Orderly stop (fast shutdown), SIGKILL after 20 s."""
        self.resume()
        if not self.running():
            return
        try:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill9()

    # -------------------------------------------------------------------- SQL
    def sql(self, query, params=None, timeout=30):
        """Run one statement, return all rows; raises pgconn.Failure."""
        c = pgconn.connect(self.dsn(), deadline=time.monotonic() + min(timeout, 10))
        try:
            return c.query(query, params, deadline=time.monotonic() + timeout)
        finally:
            c.close()


def file_digest(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Cluster:
    def __init__(self, n, workdir, base_port, shim, tick, log, extra_conf=(), prefix=None):
        self.workdir = workdir
        self.log = log
        bindir = private_install(prefix) if prefix else None
        # A node restarted on a different multiraft.so would make a mixed-version
        # cluster: restarts refuse and the run is reported void.  (With the private
        # copy above this cannot happen; it guards runs without one.)
        self.lib = os.path.join((prefix or "") + pg_config("pkglibdir"), "multiraft.so")
        self.lib_digest = file_digest(self.lib)
        self.lib_changed = None
        self.closing = False        # set by the runner's clean-up: no more (re)starts
        self.nodes = {k: Node(k, workdir, base_port, shim, tick, log, extra_conf, bindir)
                      for k in range(1, n + 1)}
        for node in self.nodes.values():
            node.cluster = self

    def check_open(self):
        if self.closing:
            raise RuntimeError("cluster is shutting down")

    def check_lib(self):
        """Raise if the installed multiraft.so is not the one the cluster started with."""
        if self.lib_changed is None and file_digest(self.lib) != self.lib_digest:
            self.lib_changed = time.strftime("%H:%M:%S")
        if self.lib_changed is not None:
            raise RuntimeError(f"{self.lib} changed during the run (seen at "
                               f"{self.lib_changed}): not restarting on a different binary")

    def setup(self):
        os.makedirs(self.workdir, exist_ok=True)
        shutil.chown(self.workdir, "postgres", "postgres")
        os.chmod(self.workdir, 0o755)
        for node in self.nodes.values():
            node.initdb()
        for node in self.nodes.values():
            node.start()
        for node in self.nodes.values():
            node.sql("CREATE EXTENSION IF NOT EXISTS multiraft")
        for node in self.nodes.values():
            for peer in self.nodes.values():
                node.sql("SELECT multiraft.add_node(%s, %s, %s)",
                         (peer.id, peer.addr, peer.port))

    def shutdown(self):
        for node in self.nodes.values():
            try:
                node.stop()
            except Exception as e:          # keep stopping the others
                self.log(f"stop node{node.id}: {e}")
