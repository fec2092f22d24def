-- consume_events: oldest first, deleted as returned, optionally one group only.
SELECT * FROM multiraft.consume_events();
SELECT * FROM multiraft.consume_events(10, 5);
SELECT multiraft.consume_events(NULL);
SELECT multiraft.consume_events(-1);
SELECT multiraft.consume_events(1, -5);
SELECT multiraft.consume_events(1, 0);

-- events as the worker would record them (this test writes them itself)
INSERT INTO multiraft.events (group_id, event_type, log_index, term, command_id, payload)
SELECT g, 'command', i, 1, 'c' || g || '-' || i, int4send(i)
  FROM generate_series(1, 4) i, (VALUES (7), (8)) v(g)
 ORDER BY i, g;
INSERT INTO multiraft.events (group_id, event_type, log_index, term, node_id, change_type)
VALUES (8, 'membership_change', 5, 1, 3, 'add_learner');
SELECT count(*) FROM multiraft.events;

SELECT group_id, event_type, log_index, command_id, payload
  FROM multiraft.consume_events(0);
SELECT group_id, event_type, log_index, command_id, payload
  FROM multiraft.consume_events(3);
-- returned rows come in event_id order and are gone afterwards
SELECT count(*) FROM multiraft.events;
SELECT group_id, event_type, log_index, command_id, node_id, change_type
  FROM multiraft.consume_events(10, 8);
SELECT group_id, log_index FROM multiraft.events ORDER BY event_id;
SELECT bool_and(a.event_id < b.event_id) AS increasing
  FROM (SELECT event_id, row_number() OVER (ORDER BY event_id) r FROM multiraft.events) a
  JOIN (SELECT event_id, row_number() OVER (ORDER BY event_id) r FROM multiraft.events) b
    ON b.r = a.r + 1;
SELECT group_id, log_index, created_at IS NOT NULL AS stamped FROM multiraft.consume_events();
SELECT * FROM multiraft.consume_events();
-- what was taken is remembered per group: the highest log_index
SELECT * FROM multiraft.events_consumed ORDER BY group_id;
SELECT count(*) FROM multiraft.events;
-- an error changes nothing
INSERT INTO multiraft.events (group_id, event_type, log_index) VALUES (9, 'command', 1);
SELECT multiraft.consume_events(-3);
SELECT count(*) FROM multiraft.events;
SELECT group_id, event_type FROM multiraft.consume_events(1000, 9);
