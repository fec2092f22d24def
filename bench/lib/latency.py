#!/usr/bin/env python3
"""Latency percentiles of one load run, from the load generators' own records.

    latency.py pgbench FILE...   pgbench --log files: 3rd field = latency in µs
    latency.py wrk FILE...       histograms dumped by etcd_put.lua: "µs count" lines

Prints "p50_ms p99_ms p999_ms" (nearest-rank percentiles over every file together),
or "null null null" when no transaction was recorded.  Failed pgbench transactions
(a word instead of a number in the latency field) are left out.
"""
import sys


def read_pgbench(paths):
    hist = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    us = int(parts[2])
                    hist[us] = hist.get(us, 0) + 1
    return hist


def read_wrk(paths):
    hist = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    us, count = int(float(parts[0])), int(float(parts[1]))
                    hist[us] = hist.get(us, 0) + count
    return hist


def percentiles(hist, ps):
    """Nearest rank: the smallest value with at least p% of the samples at or below it."""
    total = sum(hist.values())
    if total == 0:
        return [None for _ in ps]
    out = []
    values = sorted(hist)
    for p in ps:
        rank = max(1, -(-int(p * total * 1000) // 100000))  # ceil(p/100 * total), exact
        seen = 0
        for v in values:
            seen += hist[v]
            if seen >= rank:
                out.append(v)
                break
    return out


def main():
    kind, paths = sys.argv[1], sys.argv[2:]
    paths = [p for p in paths if not p.endswith("*")]  # an unmatched glob
    hist = read_pgbench(paths) if kind == "pgbench" else read_wrk(paths)
    res = percentiles(hist, [50, 99, 99.9])
    print(" ".join("null" if v is None else "%.3f" % (v / 1000.0) for v in res))


if __name__ == "__main__":
    main()
