#!/usr/bin/env python3
"""wakeups.py — where the kernel put each woken PostgreSQL process.

    perf record -a -e sched:sched_wakeup,sched:sched_switch -o F -- sleep S
    perf script -i F -F comm,pid,cpu,time,event,trace | wakeups.py [WORKER_PID ...]

Reads the trace and prints how busy each CPU was and, for every wake-up of a
process named postgres, whether the CPU it was placed on was running something
at that moment while another CPU was idle: such a process waits for a CPU that
another CPU could have given it at once.  With worker pids it also says who woke
the workers (another worker, an interrupt or the idle task, anything else) and
how each worker's time on a CPU was split between the CPUs.  bench/profile
--wakeups runs it; bench/ANALYSES.md (fourteenth analysis) says what it showed.
"""
import collections
import re
import sys

LINE = re.compile(r'^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$')
FIELD = re.compile(r'(\w+)=(\S+)')


def main(lines, workers):
    running = {}                 # cpu -> pid running there ('0': idle)
    since = {}                   # cpu -> when it started running that
    busy = collections.Counter()  # cpu -> seconds not idle
    on = collections.Counter()   # (worker, cpu) -> seconds
    wakes = collections.Counter()
    wakers = collections.Counter()
    first = last = None
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, cpu, t, event, rest = m.groups()
        cpu, t = int(cpu), float(t)
        first = t if first is None else first
        last = t
        f = dict(FIELD.findall(rest))
        if event == 'sched:sched_switch':
            prev = running.get(cpu)
            if prev is not None and cpu in since:
                if prev != '0':
                    busy[cpu] += t - since[cpu]
                if prev in workers:
                    on[(prev, cpu)] += t - since[cpu]
            running[cpu], since[cpu] = f['next_pid'], t
        elif event == 'sched:sched_wakeup' and f.get('comm') == 'postgres':
            target = int(f['target_cpu'])
            # Unknown CPUs (nothing switched there yet) count as busy.
            target_busy = running.get(target, '1') != '0'
            idle_elsewhere = any(p == '0' for c, p in running.items() if c != target)
            stacked = target_busy and idle_elsewhere
            wakes[('all', stacked)] += 1
            if f['pid'] in workers:
                wakes[('workers', stacked)] += 1
                kind = ('another worker' if pid in workers else
                        'interrupt or idle' if pid == '0' else 'other')
                wakers[kind] += 1
    if first is None or last <= first:
        print('  wake-ups: no trace events read')
        return
    span = last - first
    cpus = sorted(set(running) | set(busy))
    print('  wake-ups traced over %.1f s: ' % span +
          ', '.join('cpu%d %.0f%% busy' % (c, 100 * busy[c] / span) for c in cpus))
    for who in ('all', 'workers'):
        n = wakes[(who, False)] + wakes[(who, True)]
        if n == 0:
            continue
        name = 'PostgreSQL processes' if who == 'all' else 'workers'
        print('  %-20s %7.0f wake-ups/s, %4.1f%% placed on a busy CPU while another was idle'
              % (name, n / span, 100 * wakes[(who, True)] / n))
    total = sum(wakers.values())
    if total:
        print('  workers woken by: ' + ', '.join('%s %.0f%%' % (k, 100 * v / total)
                                                 for k, v in wakers.most_common()))
    for w in sorted(workers, key=int):
        shares = ['cpu%d %.0f%%' % (c, 100 * on[(w, c)] / span) for c in cpus]
        print('  worker %s on a CPU: %s' % (w, ', '.join(shares)))


if __name__ == '__main__':
    main(sys.stdin, set(sys.argv[1:]))
