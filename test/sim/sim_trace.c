/* sim_trace.c — event trace ring / echo (see sim_trace.h). */
#include "sim_trace.h"

#include <stdarg.h>
#include <string.h>

void sim_trace_init(struct sim_trace *t, bool echo, bool verbose, FILE *out)
{
    memset(t, 0, sizeof *t);
    t->echo = echo;
    t->verbose = verbose;
    t->out = out;
}

void sim_trace(struct sim_trace *t, const char *fmt, ...)
{
    char *line = t->ring[t->n % SIM_TRACE_RING];
    int k = snprintf(line, SIM_TRACE_LINE, "[%6llu t=%6llu] ", (unsigned long long)t->step,
                     (unsigned long long)t->time);
    if (k < 0)
        k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, SIM_TRACE_LINE - (size_t)k, fmt, ap);
    va_end(ap);
    t->n++;
    if (t->echo)
        fprintf(t->out, "%s\n", line);
}

void sim_trace_dump(const struct sim_trace *t, FILE *out)
{
    uint64_t from = t->n > SIM_TRACE_RING ? t->n - SIM_TRACE_RING : 0;
    for (uint64_t i = from; i < t->n; i++)
        fprintf(out, "  %s\n", t->ring[i % SIM_TRACE_RING]);
}
