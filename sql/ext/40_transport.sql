-- ---------------------------------------------------------------- transport
-- The node-to-node path (docs/transport.md): a peer's worker connects to this
-- server and calls multiraft.receive() once per message frame.  Only
-- multiraft_peer may call it; it validates the frame and hands it to the worker.
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
