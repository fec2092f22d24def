-- Storage tables (sql/ext/20_storage.sql): their columns, keys, and that PUBLIC
-- can neither read nor write them.
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = 'multiraft' AND c.relname IN ('log', 'group_meta', 'dedup', 'tombstone', 'events',
                                                  'events_consumed')
 ORDER BY c.relname, a.attnum;
SELECT indexrelid::regclass AS index, indisprimary, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index
 WHERE indrelid IN ('multiraft.log'::regclass, 'multiraft.group_meta'::regclass,
                    'multiraft.dedup'::regclass, 'multiraft.tombstone'::regclass,
                    'multiraft.events'::regclass, 'multiraft.events_consumed'::regclass)
 ORDER BY indexrelid::regclass::text;
SELECT t, p, has_table_privilege('public', t, p) AS public_has
  FROM unnest(ARRAY['multiraft.log', 'multiraft.group_meta', 'multiraft.dedup',
                    'multiraft.tombstone', 'multiraft.events', 'multiraft.events_consumed']) t,
       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
 WHERE has_table_privilege('public', t, p);
SELECT has_sequence_privilege('public', 'multiraft.events_event_id_seq', 'USAGE') AS public_seq;
-- pg_dump keeps the tables' rows (the node registry's too) and the events' identity with the extension
SELECT c::regclass AS dumped FROM pg_extension, unnest(extconfig) c
 WHERE extname = 'multiraft' ORDER BY c::regclass::text;
CREATE ROLE mr_storage_nobody;
SET ROLE mr_storage_nobody;
SELECT count(*) FROM multiraft.log;
SELECT count(*) FROM multiraft.events;
INSERT INTO multiraft.events (group_id, event_type) VALUES (1, 'command');
SELECT count(*) FROM multiraft.log_entries();
RESET ROLE;
DROP ROLE mr_storage_nobody;
-- events: event_id comes from an identity that PUBLIC cannot bypass, created_at defaults
INSERT INTO multiraft.events (group_id, event_type) VALUES (42, 'command'), (42, 'command')
RETURNING event_id > 0 AS has_id, created_at IS NOT NULL AS has_time;
SELECT count(DISTINCT event_id) FROM multiraft.events WHERE group_id = 42;
DELETE FROM multiraft.events WHERE group_id = 42;
-- log: a row packs the run of entries first_index .. log_index, each as its term
-- (8 bytes), type (1) and length (4), little endian, then its data;
-- multiraft.log_entries() shows them one per row (scratch group ids < 0, rolled back)
BEGIN;
INSERT INTO multiraft.log VALUES
  (-7, 3, 2, decode('0500000000000000' || '00' || '02000000' || 'aabb' || '0600000000000000' || '01' || '00000000', 'hex')),
  (-7, 4, 4, decode('0600000000000000' || '00' || '01000000' || 'cc', 'hex'));
SELECT * FROM multiraft.log_entries(-7);
SELECT group_id, count(*) FROM multiraft.log_entries() WHERE group_id = -7 GROUP BY 1;
SAVEPOINT s;
-- a row whose bytes do not hold exactly its index range is an error naming it
INSERT INTO multiraft.log VALUES (-8, 1, 1, decode('0100000000000000' || '00' || 'ff000000' || 'aa', 'hex'));
SELECT * FROM multiraft.log_entries(-8);
ROLLBACK TO s;
INSERT INTO multiraft.log VALUES (-8, 2, 1, decode('0100000000000000' || '00' || '00000000', 'hex'));
SELECT * FROM multiraft.log_entries(-8);
ROLLBACK TO s;
INSERT INTO multiraft.log VALUES (-8, 1, 1, decode('0100000000000000' || '00' || '00000000' || '0100000000000000' || '00' || '00000000', 'hex'));
SELECT * FROM multiraft.log_entries(-8);
ROLLBACK TO s;
INSERT INTO multiraft.log VALUES (-8, 1, 0, decode('', 'hex'));
SELECT * FROM multiraft.log_entries(-8);
ROLLBACK;
