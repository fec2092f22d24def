/* sim_run.h — one complete simulated run of one seed. */
#ifndef SIM_RUN_H
#define SIM_RUN_H

#include "sim_cluster.h"

struct sim_result {
    uint64_t violations;
    char what[512];
    struct sim_stats st;
};

/* Runs seed o->seed for o->steps steps plus the healing phase.  On a violation the
 * last trace lines are printed to o->out (unless the trace was echoed). */
void sim_run(const struct sim_opts *o, struct sim_result *res);

#endif /* SIM_RUN_H */
