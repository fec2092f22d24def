#!/usr/bin/env python3
"""cg_edges.py CALLGRIND_OUT CALLERS_FILE CALLEES_FILE

Sums the inclusive instruction cost of every call from a function listed in
CALLERS_FILE to a function listed in CALLEES_FILE (one name per line) in a callgrind
output file.  Used to count canonical/raft's core instructions under its fixture:
callers = the fixture's driver and I/O stub plus the bench harness, callees = the core.
"""
import re
import sys


def names(path):
    with open(path) as f:
        return {l.strip() for l in f if l.strip()}


def main():
    out, callers, callees = sys.argv[1], names(sys.argv[2]), names(sys.argv[3])
    ids = {}
    cur = None
    cfn = None
    pending = False
    total = 0

    def resolve(spec):
        m = re.match(r'\((\d+)\)(?:\s+(.*))?', spec)
        if m:
            if m.group(2):
                ids[m.group(1)] = m.group(2)
            return ids.get(m.group(1), '?')
        return spec

    def base(n):
        return n.split("'")[0].replace('.cold', '').replace('.isra.0', '').replace('.part.0', '')

    with open(out) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('fn='):
                cur = base(resolve(line[3:]))
            elif line.startswith('cfn='):
                cfn = base(resolve(line[4:]))
            elif line.startswith('calls='):
                pending = True
            elif pending:
                pending = False
                if cur in callers and cfn in callees:
                    total += int(line.split()[-1])
    print(total)


main()
