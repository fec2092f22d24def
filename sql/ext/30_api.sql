-- ---------------------------------------------------------------- groups, commands, events
-- SQL API of SPEC.md "Groups and commands" and "Events".  The C functions check their
-- arguments themselves (NULLs included, so none is STRICT), then hand one request to the
-- worker and wait.  Only status() and the views are open to PUBLIC.

-- One row of multiraft.status() / multiraft.groups.
CREATE TYPE multiraft.group_status AS (
    group_id       bigint,
    node_id        int,
    replica_id     bigint,
    role           text,
    term           bigint,
    leader_node_id int,
    commit_index   bigint,
    applied_index  bigint,
    first_index    bigint,
    last_index     bigint,
    voters         int[],
    learners       int[],
    quiesced       bool
);

-- SECURITY DEFINER where the function reads multiraft.node (not readable by PUBLIC).
CREATE FUNCTION multiraft.create_group(group_id bigint, members int[]) RETURNS void
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'multiraft_create_group';
CREATE FUNCTION multiraft.remove_group(group_id bigint) RETURNS void
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_remove_group';
CREATE FUNCTION multiraft.submit(group_id bigint, command bytea, command_id text DEFAULT NULL,
                                 timeout_ms int DEFAULT 10000) RETURNS bigint
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_submit';
CREATE FUNCTION multiraft.change_membership(group_id bigint, change_type text, node_id int,
                                            payload bytea DEFAULT NULL,
                                            command_id text DEFAULT NULL,
                                            timeout_ms int DEFAULT 10000) RETURNS bigint
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'multiraft_change_membership';
CREATE FUNCTION multiraft.transfer_leadership(group_id bigint, node_id int,
                                              timeout_ms int DEFAULT 10000) RETURNS void
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'multiraft_transfer_leadership';
CREATE FUNCTION multiraft.read_index(group_id bigint, timeout_ms int DEFAULT 10000) RETURNS bigint
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_read_index';

CREATE FUNCTION multiraft.status(group_id bigint) RETURNS multiraft.group_status
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_status';
CREATE FUNCTION multiraft._groups() RETURNS SETOF multiraft.group_status
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_groups';
CREATE FUNCTION multiraft._stats(OUT name text, OUT value bigint) RETURNS SETOF record
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_stats';

CREATE VIEW multiraft.groups AS SELECT * FROM multiraft._groups();
CREATE VIEW multiraft.stats AS SELECT * FROM multiraft._stats();

-- Oldest events first, deleted as they are returned.  SKIP LOCKED: a concurrent consumer
-- takes other rows instead of waiting for, or re-reading, these.
CREATE FUNCTION multiraft.consume_events(max_events int DEFAULT 1000, group_id bigint DEFAULT NULL)
    RETURNS SETOF multiraft.events
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_events IS NULL THEN
        RAISE EXCEPTION 'max_events must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_events < 0 THEN
        RAISE EXCEPTION 'max_events must not be negative, not %', max_events
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF consume_events.group_id < 1 THEN
        RAISE EXCEPTION 'invalid group id %', consume_events.group_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- What was taken is remembered per group (multiraft.events_consumed).
    RETURN QUERY
        WITH taken AS (
            DELETE FROM multiraft.events e
             WHERE e.event_id IN (SELECT q.event_id FROM multiraft.events q
                                   WHERE consume_events.group_id IS NULL
                                      OR q.group_id = consume_events.group_id
                                   ORDER BY q.event_id
                                   LIMIT consume_events.max_events
                                   FOR UPDATE SKIP LOCKED)
            RETURNING e.*),
        tops AS (
            SELECT t.group_id, max(t.log_index) AS log_index FROM taken t
             WHERE t.log_index IS NOT NULL GROUP BY t.group_id),
        marked AS (
            INSERT INTO multiraft.events_consumed (group_id, log_index)
            SELECT tp.group_id, tp.log_index FROM tops tp),
        pruned AS (
            -- Never waits: rows another consumer holds stay for a later call.
            DELETE FROM multiraft.events_consumed c
             WHERE c.ctid IN (SELECT o.ctid FROM multiraft.events_consumed o
                               WHERE o.group_id IN (SELECT tp.group_id FROM tops tp)
                                 AND o.log_index < (SELECT tp.log_index FROM tops tp
                                                     WHERE tp.group_id = o.group_id)
                                 FOR UPDATE OF o SKIP LOCKED))
        SELECT t.* FROM taken t ORDER BY t.event_id;
END
$$;

-- Privileges (SPEC "Privileges"): PUBLIC reads status and the views, nothing else.
REVOKE ALL ON FUNCTION multiraft.create_group(bigint, int[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.remove_group(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.submit(bigint, bytea, text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.change_membership(bigint, text, int, bytea, text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.transfer_leadership(bigint, int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.read_index(bigint, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.consume_events(int, bigint) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION multiraft.create_group(bigint, int[]) TO multiraft_admin;
GRANT EXECUTE ON FUNCTION multiraft.remove_group(bigint) TO multiraft_admin;
GRANT EXECUTE ON FUNCTION multiraft.change_membership(bigint, text, int, bytea, text, int) TO multiraft_admin;
GRANT EXECUTE ON FUNCTION multiraft.transfer_leadership(bigint, int, int) TO multiraft_admin;
GRANT EXECUTE ON FUNCTION multiraft.submit(bigint, bytea, text, int) TO multiraft_writer;
GRANT EXECUTE ON FUNCTION multiraft.read_index(bigint, int) TO multiraft_writer;
GRANT EXECUTE ON FUNCTION multiraft.consume_events(int, bigint) TO multiraft_writer;

-- status() and the functions behind the views only read what the worker publishes.
GRANT EXECUTE ON FUNCTION multiraft.status(bigint) TO PUBLIC;
GRANT EXECUTE ON FUNCTION multiraft._groups() TO PUBLIC;
GRANT EXECUTE ON FUNCTION multiraft._stats() TO PUBLIC;
GRANT SELECT ON multiraft.groups TO PUBLIC;
GRANT SELECT ON multiraft.stats TO PUBLIC;
