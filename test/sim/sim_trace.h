/*
 * sim_trace.h — the event trace of one run.
 *
 * Every event (delivery, drop, fault, client action, role change...) is formatted as
 * one line prefixed with the step number and simulated time.  With echo on
 * (`mrsim --seed N --trace`) each line is printed as it happens; otherwise the last
 * SIM_TRACE_RING lines are kept so a failing seed can show what led to the failure.
 * The trace depends only on the seed, so a replay prints the same lines.
 */
#ifndef SIM_TRACE_H
#define SIM_TRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_TRACE_RING 48
#define SIM_TRACE_LINE 200

struct sim_trace {
    bool echo;
    bool verbose;        /* also trace ticks and every message sent */
    FILE *out;
    uint64_t step, time; /* stamped on each line */
    uint64_t n;          /* lines recorded */
    char ring[SIM_TRACE_RING][SIM_TRACE_LINE];
};

void sim_trace_init(struct sim_trace *t, bool echo, bool verbose, FILE *out);
void sim_trace(struct sim_trace *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the last min(n, SIM_TRACE_RING) lines. */
void sim_trace_dump(const struct sim_trace *t, FILE *out);

#endif /* SIM_TRACE_H */
