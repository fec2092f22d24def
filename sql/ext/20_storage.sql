
-- ---------------------------------------------------------------- storage
-- Durable state of every raft group with a replica on this node, written by the
-- multiraft worker only (src/pg/storage_*.c), one transaction per batch of the
-- multi-raft layer (src/multiraft/multiraft.h "STORAGE CONTRACT").
--
--   multiraft.log        (group_id, log_index) -> first_index, entries
--                        the shared raft log of all groups, one row per run of
--                        consecutive entries first_index .. log_index written
--                        together (a group's entries of one batch), packed in
--                        entries (src/pg/storage_log_rows.c; readable through
--                        multiraft.log_entries()); rows whose entries are all <=
--                        the group's log_start_index are deleted as the layer
--                        compacts.
--   multiraft.group_meta group_id -> replica_id, term, vote, commit_index (hard
--                        state), voters, learners (conf state as of applied_index,
--                        replica ids), applied_index, log_start_index,
--                        log_start_term, layer_state (the layer's opaque state:
--                        replica map, ...).  Term, vote, configuration and log
--                        start are current; commit_index and applied_index may
--                        trail the group's by up to 64 entries (MR_META_LAG: a
--                        restart re-applies them, the dedup records keep that
--                        free of duplicates), multiraft.status() has the live ones.
--   multiraft.dedup      (group_id, command_id) -> log_index: the first index at
--                        which each command id was applied (exactly-once), or
--                        for a membership change the leader refused, the
--                        refusal's index plus 2^62 (plus 2^61 when the node was
--                        not a member): the id's final answer.
--   multiraft.tombstone  group_id -> min_replica_id: replicas of the group with a
--                        smaller id never come back here; -1 (all bits set,
--                        UINT64_MAX) means the group was removed here.
--                        applied_index: how far those replicas applied the
--                        group's log here (a later replica announces no event
--                        of those entries again).  incarnation: that of the
--                        last replica dropped here (0 unknown): a removal
--                        notice sent from the tombstone names its group.
--   multiraft.events     the SPEC's event stream (see SPEC.md "Events"): one row
--                        per event of the multi-raft layer, written in the
--                        transaction that advances the applied index; columns
--                        a type does not use are NULL (payload: the command, or
--                        the change payload of a membership_change, NULL if none).
--
-- Unsigned 64-bit raft values (terms, indexes, replica ids) are stored in bigint
-- columns with the same bit pattern; values >= 2^63 never occur except the
-- tombstone marker above.  An entry's type is the core's enum raft_entry_type
-- (0 normal, 1 conf change).  Command ids are bytes: bytea in dedup; in events
-- they are text (API ids are text; ids that are not valid text in the database
-- encoding are shown as '\x' || hex, internal empty ids as NULL).

-- Each row is a run of one group's entries, first_index .. log_index, packed in
-- entries (src/pg/storage_log_rows.c).  No index: the worker, the only writer,
-- knows where each of its rows is (src/pg/storage_log.c) and reads the table
-- whole only at start-up.  An index on (group_id, log_index) cost every insert
-- a random leaf page with many groups (bench/ANALYSES.md, twentieth analysis).
CREATE TABLE multiraft.log (
    group_id    bigint NOT NULL,
    log_index   bigint NOT NULL,
    first_index bigint NOT NULL,
    entries     bytea NOT NULL
);
-- Rows are short-lived (compaction deletes them): vacuum often, keep pages hot.
-- No truncation of the empty pages at the end: it takes an exclusive lock the
-- worker would wait for, and the table fills them again at once.
ALTER TABLE multiraft.log SET (autovacuum_vacuum_scale_factor = 0.01,
                               autovacuum_vacuum_threshold = 1000,
                               autovacuum_vacuum_insert_scale_factor = 0.01,
                               vacuum_truncate = off);

CREATE TABLE multiraft.group_meta (
    group_id        bigint PRIMARY KEY,
    replica_id      bigint NOT NULL,
    term            bigint NOT NULL,
    vote            bigint NOT NULL,
    commit_index    bigint NOT NULL,
    voters          bigint[] NOT NULL,
    learners        bigint[] NOT NULL,
    applied_index   bigint NOT NULL,
    log_start_index bigint NOT NULL,
    log_start_term  bigint NOT NULL,
    layer_state     bytea NOT NULL
);
-- Updated at every batch that touches the group: leave room for HOT updates.
ALTER TABLE multiraft.group_meta SET (fillfactor = 50,
                                      autovacuum_vacuum_scale_factor = 0.01);

-- The command ids given by callers, kept as long as the group.  Commands
-- submitted without one (generated ids) leave no row: the proposing node's
-- session in layer_state stands for them (src/multiraft/mr_session.c).
CREATE TABLE multiraft.dedup (
    group_id   bigint NOT NULL,
    command_id bytea NOT NULL,
    log_index  bigint NOT NULL,
    PRIMARY KEY (group_id, command_id)
);

CREATE TABLE multiraft.tombstone (
    group_id       bigint PRIMARY KEY,
    min_replica_id bigint NOT NULL,
    applied_index  bigint NOT NULL DEFAULT 0,
    incarnation    bigint NOT NULL DEFAULT 0
);

CREATE TABLE multiraft.events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id    bigint NOT NULL,
    event_type  text NOT NULL,
    log_index   bigint,
    term        bigint,
    command_id  text,
    payload     bytea,
    node_id     int,
    change_type text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- consume_events(max_events, group_id): the oldest events, optionally of one group.
-- The primary key serves the unfiltered case; this one the per-group case.
CREATE INDEX events_group_idx ON multiraft.events (group_id, event_id);
ALTER TABLE multiraft.events SET (autovacuum_vacuum_scale_factor = 0.01,
                                  vacuum_truncate = off);  -- a queue, as the log

-- The highest log_index of the events consume_events took, per group.  With the
-- events still queued it tells the worker, at start, how far each group's events
-- went out: the entries a group's meta row trailed by are applied again then, and
-- must not be announced twice (src/multiraft/multiraft.h, mr_restore_announced).
-- Insert-only, so that concurrent consumers never wait for each other: each call
-- adds its highest index per group and deletes the lower rows no one holds, which
-- leaves about one row per group (and one per consumer still in a transaction).
CREATE TABLE multiraft.events_consumed (
    group_id  bigint NOT NULL,
    log_index bigint NOT NULL
);
CREATE INDEX events_consumed_group ON multiraft.events_consumed (group_id, log_index);

REVOKE ALL ON multiraft.log, multiraft.group_meta, multiraft.dedup,
              multiraft.tombstone, multiraft.events, multiraft.events_consumed FROM PUBLIC;
REVOKE ALL ON SEQUENCE multiraft.events_event_id_seq FROM PUBLIC;

-- The stored log one entry per row (multiraft.log packs runs of entries), read
-- as the caller: whoever may read multiraft.log may call it.
CREATE FUNCTION multiraft.log_entries(of_group bigint DEFAULT NULL)
RETURNS TABLE (group_id bigint, log_index bigint, term bigint, entry_type smallint,
               data bytea)
AS 'MODULE_PATHNAME', 'multiraft_log_entries'
LANGUAGE C STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION multiraft.log_entries(bigint) FROM PUBLIC;

-- pg_dump keeps the raft state and undelivered events with the extension.
SELECT pg_catalog.pg_extension_config_dump('multiraft.log', '');
SELECT pg_catalog.pg_extension_config_dump('multiraft.group_meta', '');
SELECT pg_catalog.pg_extension_config_dump('multiraft.dedup', '');
SELECT pg_catalog.pg_extension_config_dump('multiraft.tombstone', '');
SELECT pg_catalog.pg_extension_config_dump('multiraft.events', '');
SELECT pg_catalog.pg_extension_config_dump('multiraft.events_consumed', '');
-- and where event_id stands: restored without it, the identity would start at 1
-- again, new events would sort before the queued ones, then collide with them.
SELECT pg_catalog.pg_extension_config_dump('multiraft.events_event_id_seq', '');
