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
CREATE ROLE mr_storage_nobody;
SET ROLE mr_storage_nobody;
SELECT count(*) FROM multiraft.log;
SELECT count(*) FROM multiraft.events;
INSERT INTO multiraft.events (group_id, event_type) VALUES (1, 'command');
RESET ROLE;
DROP ROLE mr_storage_nobody;
-- events: event_id comes from an identity that PUBLIC cannot bypass, created_at defaults
INSERT INTO multiraft.events (group_id, event_type) VALUES (42, 'command'), (42, 'command')
RETURNING event_id > 0 AS has_id, created_at IS NOT NULL AS has_time;
SELECT count(DISTINCT event_id) FROM multiraft.events WHERE group_id = 42;
DELETE FROM multiraft.events WHERE group_id = 42;
