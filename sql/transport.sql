-- Node-to-node receive path: multiraft.receive() validates every frame and
-- rejects, with a clear error, anything that is not a well-formed batch for this
-- node (node 1, cluster 0) — and the worker keeps running.
CREATE FUNCTION pg_temp.wait_for(query text, timeout_s int DEFAULT 60) RETURNS bool
    LANGUAGE plpgsql AS $$
DECLARE ok bool;
BEGIN
    FOR i IN 1 .. timeout_s * 20 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXECUTE query INTO ok;
        IF ok THEN RETURN true; END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END $$;
-- the worker serves this database
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM pg_stat_activity
    WHERE backend_type = 'multiraft worker' AND datname = current_database()$$) AS worker_up;
SELECT pid AS worker_pid FROM pg_stat_activity
 WHERE backend_type = 'multiraft worker' AND datname = current_database() \gset
SELECT value AS delivered_before FROM multiraft._transport_stats()
 WHERE name = 'transport_envelopes_received' \gset
SELECT value AS rejected_before FROM multiraft._transport_stats()
 WHERE name = 'transport_rejected' \gset
SELECT value AS received_before FROM multiraft._transport_stats()
 WHERE name = 'transport_frames_received' \gset
-- garbage
SELECT multiraft.receive('\xdeadbeef');
-- truncated: a messages field announcing 16 bytes, followed by 2
SELECT multiraft.receive('\x0801180220012a100801');
-- wrong protocol version (2)
SELECT multiraft.receive('\x080218022001');
-- empty: no version at all
SELECT multiraft.receive('\x');
-- wrong cluster id (7)
SELECT multiraft.receive('\x0801100718022001');
-- meant for node 3
SELECT multiraft.receive('\x080118022003');
-- claims to come from this node
SELECT multiraft.receive('\x080118012001');
-- raft message type 99
SELECT multiraft.receive('\x0801180220012a080801106320012801');
-- raft message with replica id 0
SELECT multiraft.receive('\x0801180220012a06080110012001');
-- raft message for group 0, and for group 2^63 (group ids are positive bigints)
SELECT multiraft.receive('\x0801180220012a06100120012801');
SELECT multiraft.receive('\x0801180220012a110880808080808080808001100120012801');
-- a heartbeat entry with flags out of range
SELECT multiraft.receive('\x0801180220013209080510011802388002');
-- a chunk that claims to be chunk 5 of 2
SELECT multiraft.receive('\x08011802200142080805100518022001');
-- oversized
SELECT multiraft.receive(decode(repeat('00', 1024 * 1024), 'hex'));
-- empty messages ("2a 00" repeated) would take ~150 times the frame's size to
-- decode: refused for that
SELECT multiraft.receive('\x080118022001'::bytea || decode(repeat('2a00', 280000), 'hex'));
-- from a node that is not registered here (node 61: no test registers it)
SELECT multiraft.receive('\x0801183d2001');
-- every rejection was counted
SELECT value - :rejected_before AS rejected FROM multiraft._transport_stats()
 WHERE name = 'transport_rejected';
-- register node 2 (nothing listens there) and wait for the worker to load it
SELECT multiraft.add_node(2, '/nonexistent', 5432);
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM multiraft._transport_peers()
    WHERE node_id = 2$$) AS node2_loaded;
-- a valid (empty: liveness) batch from node 2 is accepted
SELECT multiraft.receive('\x080118022001');
SELECT multiraft.receive(NULL) IS NULL AS strict;
SELECT value - :received_before AS received FROM multiraft._transport_stats()
 WHERE name = 'transport_frames_received';
-- wire.c both ways: a frame with an APPEND (two entries), a SNAPSHOT, a rejected
-- VOTE_RESP, a coalesced heartbeat and a heartbeat response decodes to these
-- items and encodes back to the same bytes
SELECT (r).description, (r).reencoded = f AS same_bytes
  FROM (SELECT multiraft._wire_roundtrip(f) AS r, f
          FROM (VALUES ('\x0801180220012a25080710012002280130033802400a480962080803100b2202616262090803100c18012201632a1e080710092002280130036a12081410031a070a020102120103220378797a2a0c080810041801200228013005320e08071002180120032809300438013a0a08091002180120034001'::bytea)) v(f)) s;
SELECT (multiraft._wire_roundtrip('\x080118022001')).description;
SELECT multiraft._wire_roundtrip('\x0801180220012a06080110012001');
-- fuzz the decoder: 3000 random mutations (byte changes, truncations) of that
-- frame are each either decoded or refused with an error, never a crash
SELECT setseed(0.42);
DO $$
DECLARE
    base bytea := '\x0801180220012a25080710012002280130033802400a480962080803100b2202616262090803100c18012201632a1e080710092002280130036a12081410031a070a020102120103220378797a2a0c080810041801200228013005320e08071002180120032809300438013a0a08091002180120034001';
    f bytea;
    accepted int := 0;
    refused int := 0;
BEGIN
    FOR i IN 1 .. 3000 LOOP
        f := base;
        FOR k IN 1 .. 1 + (random() * 3)::int LOOP
            f := set_byte(f, (random() * (length(f) - 1))::int, (random() * 255)::int);
        END LOOP;
        IF random() < 0.2 THEN
            f := substring(f FROM 1 FOR (random() * length(f))::int);
        END IF;
        BEGIN
            PERFORM multiraft._wire_roundtrip(f);
            accepted := accepted + 1;
        EXCEPTION WHEN OTHERS THEN
            refused := refused + 1;
        END;
    END LOOP;
    RAISE NOTICE 'fuzz: % frames, accepted and refused both seen: %',
        accepted + refused, accepted > 0 AND refused > 0;
END
$$;
-- the worker survived all of it and handed the valid one to the multi-raft layer
SELECT pg_temp.wait_for(format($$SELECT value > %s FROM multiraft._transport_stats()
    WHERE name = 'transport_envelopes_received'$$, :delivered_before)) AS delivered;
SELECT count(*) AS same_worker FROM pg_stat_activity WHERE pid = :worker_pid;
-- only multiraft_peer may call receive()
CREATE ROLE mr_outsider;
SET ROLE mr_outsider;
SELECT multiraft.receive('\x080118022001');
RESET ROLE;
GRANT multiraft_peer TO mr_outsider;
SET ROLE mr_outsider;
SELECT multiraft.receive('\x080118022001');
-- the transport's counters and the nodes view are readable by everyone
SELECT count(*) > 10 AS has_counters FROM multiraft._transport_stats();
SELECT count(*) >= 0 AS nodes_readable FROM multiraft.nodes;
RESET ROLE;
REVOKE multiraft_peer FROM mr_outsider;
DROP ROLE mr_outsider;
SELECT has_function_privilege('public', 'multiraft.receive(bytea)', 'EXECUTE') AS public_can_receive,
       has_function_privilege('multiraft_peer', 'multiraft._wire_roundtrip(bytea)', 'EXECUTE') AS peer_can_roundtrip;
-- this node itself is shown as connected; an unreachable node is not
SELECT multiraft.add_node(1, '127.0.0.1', 5432);
SELECT multiraft.add_node(7, '/nonexistent', 5432);
SELECT node_id, connected FROM multiraft.nodes WHERE node_id IN (1, 7) ORDER BY node_id;
SELECT state FROM multiraft.nodes WHERE node_id = 1;
SELECT multiraft.remove_node(7);
SELECT multiraft.remove_node(2);
