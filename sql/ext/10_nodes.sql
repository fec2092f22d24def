-- ---------------------------------------------------------------- nodes
CREATE TABLE multiraft.node (
    node_id int PRIMARY KEY CHECK (node_id BETWEEN 1 AND 2147483647),
    host    text NOT NULL CHECK (host <> ''),
    port    int NOT NULL CHECK (port BETWEEN 1 AND 65535),
    dbname  text CHECK (dbname <> '')
);
REVOKE ALL ON multiraft.node FROM PUBLIC;
-- pg_dump keeps the registry with the raft state (sql/ext/20_storage.sql): a node
-- restored without it could reach none of its peers, and nothing said so.
SELECT pg_catalog.pg_extension_config_dump('multiraft.node', '');

CREATE FUNCTION multiraft.add_node(node_id int, host text, port int DEFAULT 5432,
                                   dbname text DEFAULT NULL) RETURNS void
    LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'multiraft_add_node';
CREATE FUNCTION multiraft.remove_node(node_id int) RETURNS void
    LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'multiraft_remove_node';

-- Whether node_id is a voter or learner of a group with a replica here (the status the
-- worker publishes; see src/pg/status.c).
CREATE FUNCTION multiraft.node_is_member(node_id int) RETURNS bool
    LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'multiraft_node_is_member';

REVOKE ALL ON FUNCTION multiraft._check_setup() FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.add_node(int, text, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.remove_node(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.node_is_member(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION multiraft.add_node(int, text, int, text) TO multiraft_admin;
GRANT EXECUTE ON FUNCTION multiraft.remove_node(int) TO multiraft_admin;

-- Link state of each peer as the worker sees it (src/pg/api_transport.c).
CREATE FUNCTION multiraft._transport_peers(
    OUT node_id int, OUT connected bool, OUT state text, OUT state_since timestamptz,
    OUT envelopes_sent bigint, OUT frames_sent bigint, OUT bytes_sent bigint,
    OUT frames_received bigint, OUT bytes_received bigint, OUT dropped bigint,
    OUT send_errors bigint, OUT connects bigint, OUT connect_failures bigint,
    OUT queue_length int, OUT last_error text) RETURNS SETOF record
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_transport_peers';

GRANT EXECUTE ON FUNCTION multiraft._transport_peers() TO PUBLIC;

-- This node itself shows as connected (state 'self'); a peer the worker has not
-- tried yet shows state 'idle'.
CREATE VIEW multiraft.nodes AS
    SELECT n.node_id, n.host, n.port,
           coalesce(n.dbname, current_setting('multiraft.database')) AS dbname,
           CASE WHEN n.node_id = current_setting('multiraft.node_id')::int THEN true
                ELSE coalesce(p.connected, false) END AS connected,
           CASE WHEN n.node_id = current_setting('multiraft.node_id')::int THEN 'self'
                ELSE coalesce(p.state, 'idle') END AS state,
           p.state_since,
           coalesce(p.envelopes_sent, 0) AS envelopes_sent,
           coalesce(p.frames_sent, 0) AS frames_sent,
           coalesce(p.bytes_sent, 0) AS bytes_sent,
           coalesce(p.frames_received, 0) AS frames_received,
           coalesce(p.bytes_received, 0) AS bytes_received,
           coalesce(p.dropped, 0) AS dropped,
           coalesce(p.send_errors, 0) AS send_errors,
           coalesce(p.connects, 0) AS connects,
           coalesce(p.connect_failures, 0) AS connect_failures,
           coalesce(p.queue_length, 0) AS queue_length,
           p.last_error
      FROM multiraft.node n
      LEFT JOIN multiraft._transport_peers() p ON p.node_id = n.node_id;
GRANT SELECT ON multiraft.nodes TO PUBLIC;
