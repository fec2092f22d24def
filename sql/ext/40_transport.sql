-- ---------------------------------------------------------------- transport
-- The node-to-node path (docs/transport.md): a peer's worker connects to this
-- server and calls multiraft.receive_stream() once per connection, which turns
-- it into a COPY BOTH stream of message frames; multiraft.receive() takes one
-- frame per call (tools, tests).  Only multiraft_peer may call them; they
-- validate each frame and hand it to the worker.
CREATE PROCEDURE multiraft.receive_stream(from_node int, to_node int, cluster_id bigint)
    LANGUAGE C AS 'MODULE_PATHNAME', 'multiraft_receive_stream';
REVOKE ALL ON PROCEDURE multiraft.receive_stream(int, int, bigint) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE multiraft.receive_stream(int, int, bigint) TO multiraft_peer;

CREATE FUNCTION multiraft.receive(frame bytea) RETURNS void
    LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'multiraft_receive';
REVOKE ALL ON FUNCTION multiraft.receive(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION multiraft.receive(bytea) TO multiraft_peer;

-- Node-wide transport counters (name, value); part of multiraft.stats.
CREATE FUNCTION multiraft._transport_stats(OUT name text, OUT value bigint) RETURNS SETOF record
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_transport_stats';

-- The worker re-reads multiraft.node after each committed change.
CREATE FUNCTION multiraft._node_registry_changed() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'multiraft_node_registry_changed';
REVOKE ALL ON FUNCTION multiraft._node_registry_changed() FROM PUBLIC;
CREATE TRIGGER node_registry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON multiraft.node
    FOR EACH STATEMENT EXECUTE FUNCTION multiraft._node_registry_changed();

-- multiraft.stats (30_api.sql) plus the transport's counters.
CREATE OR REPLACE VIEW multiraft.stats AS
    SELECT s.name, s.value FROM multiraft._stats() s
    UNION ALL
    SELECT t.name, t.value FROM multiraft._transport_stats() t;

-- Diagnostic: decode a frame as receive() does, describe it and encode it again
-- (superuser-only; used by the regression tests to check wire.c both ways).
CREATE FUNCTION multiraft._wire_roundtrip(frame bytea, OUT description text, OUT reencoded bytea)
    RETURNS record LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'multiraft_wire_roundtrip';
REVOKE ALL ON FUNCTION multiraft._wire_roundtrip(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION multiraft._transport_stats() TO PUBLIC;
