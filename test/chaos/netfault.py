"""Network partitions with iptables, confined to a chain of our own.

One chain (MRCHAOS_<base port>) hooked into OUTPUT: all loopback traffic is
locally generated, so OUTPUT sees every packet between chaos nodes.  Cutting the
link a <-> b adds DROP rules that match only the two nodes' addresses and server
ports, in both directions (a's connections to b's port, b's connections to a's
port, and the replies of each).  Clients connect from 127.0.0.1, which no rule
matches: a partition separates servers, never the test's clients.  Healing
flushes our chain; cleanup unhooks and deletes it.  No other rule is touched.
"""

import subprocess


class Net:
    def __init__(self, nodes, chain, log):
        self.nodes = nodes              # {id: Node}
        self.chain = chain
        self.log = log
        self.cut = set()                # frozenset({a, b})
        self.ready = False

    def _ipt(self, *args, check=True):
        r = subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"iptables {' '.join(args)}: {r.stderr.strip()}")
        return r.returncode == 0

    def setup(self):
        # A leftover chain of an aborted run with the same ports: take it over.
        self.cleanup()
        self._ipt("-N", self.chain)
        self._ipt("-I", "OUTPUT", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-j", self.chain)
        self.ready = True

    def cleanup(self):
        while self._ipt("-D", "OUTPUT", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8",
                        "-j", self.chain, check=False):
            pass
        self._ipt("-F", self.chain, check=False)
        self._ipt("-X", self.chain, check=False)
        self.cut.clear()
        self.ready = False

    def _rules(self, a, b):
        na, nb = self.nodes[a], self.nodes[b]
        for src, dst in ((na, nb), (nb, na)):
            # src's connections to dst's server, and dst's server answering src's.
            yield ["-s", src.addr, "-d", dst.addr, "-p", "tcp", "--dport", str(dst.port), "-j", "DROP"]
            yield ["-s", src.addr, "-d", dst.addr, "-p", "tcp", "--sport", str(src.port), "-j", "DROP"]

    def cut_link(self, a, b):
        key = frozenset((a, b))
        if a == b or key in self.cut:
            return
        for r in self._rules(a, b):
            self._ipt("-A", self.chain, *r)
        self.cut.add(key)

    def partition(self, sides):
        """Cut every link between nodes on different sides (list of node lists).
        A node may appear on several sides (a bridge): it keeps both."""
        side_of = {}
        for i, side in enumerate(sides):
            for n in side:
                side_of.setdefault(n, set()).add(i)
        ids = sorted(side_of)
        for x in ids:
            for y in ids:
                if x < y and not (side_of[x] & side_of[y]):
                    self.cut_link(x, y)

    def heal(self):
        if self.ready:
            self._ipt("-F", self.chain)
        self.cut.clear()

    def rules_text(self):
        r = subprocess.run(["iptables", "-w", "5", "-S", self.chain], capture_output=True, text=True)
        return r.stdout
