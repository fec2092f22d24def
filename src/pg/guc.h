/*
 * guc.h — multiraft's configuration parameters (see SPEC.md "Set-up").
 */
#ifndef MULTIRAFT_GUC_H
#define MULTIRAFT_GUC_H

extern int	multiraft_node_id;			/* 0 = unset */
extern char *multiraft_database;
extern int	multiraft_tick_interval_ms;
extern int	multiraft_heartbeat_ticks;
extern int	multiraft_election_ticks;
extern int	multiraft_dead_ticks;			/* 0 = multiraft_election_ticks */
extern int	multiraft_generated_id_window;
extern int	multiraft_lagging_log_per_group_kb;
extern int	multiraft_lagging_log_kb;
extern int	multiraft_restart_wakes_per_tick;
extern int	multiraft_max_command_size;
extern int	multiraft_max_groups;
extern double multiraft_notify_queue_max_usage;
extern char *multiraft_node_conninfo;

extern void multiraft_define_gucs(void);

/* ERROR "multiraft.node_id is not set" unless it is. */
extern void multiraft_require_node_id(void);

#endif
