-- Node registry: add_node / remove_node / multiraft.nodes, their errors and privileges.
SHOW multiraft.node_id;
SELECT multiraft.add_node(1, '127.0.0.1', 5432);
SELECT multiraft.add_node(2, '127.0.0.1', 5433, 'otherdb');
SELECT multiraft.add_node(3, '/var/run/postgresql');
SELECT node_id, host, port, dbname, connected FROM multiraft.nodes ORDER BY node_id;
-- a host name works, with a notice: the worker resolves it itself, blocking
SELECT multiraft.add_node(3, 'db3.invalid', 5434);
SELECT multiraft.add_node(3, '::1', 5434);
-- re-adding updates the address
SELECT multiraft.add_node(3, '127.0.0.1', 5434);
SELECT node_id, host, port, dbname FROM multiraft.nodes WHERE node_id = 3;
-- bad input changes nothing
SELECT multiraft.add_node(0, '127.0.0.1', 5432);
SELECT multiraft.add_node(-5, '127.0.0.1', 5432);
SELECT multiraft.add_node(4, '', 5432);
SELECT multiraft.add_node(4, 'host=evil.example', 5432);
SELECT multiraft.add_node(4, '127.0.0.1', 0);
SELECT multiraft.add_node(4, '127.0.0.1', 70000);
SELECT multiraft.add_node(4, '127.0.0.1', 5432, '');
SELECT multiraft.add_node(NULL, '127.0.0.1', 5432);
SELECT multiraft.add_node(4, NULL, 5432);
SELECT count(*) FROM multiraft.nodes;
SELECT multiraft.remove_node(9);
SELECT multiraft.remove_node(NULL);
SELECT multiraft.remove_node(3);
SELECT node_id FROM multiraft.nodes ORDER BY node_id;
-- privileges: PUBLIC may read the view but change nothing
CREATE ROLE mr_nobody;
SET ROLE mr_nobody;
SELECT count(*) FROM multiraft.nodes;
SELECT multiraft.add_node(5, '127.0.0.1', 5432);
SELECT multiraft.remove_node(2);
SELECT * FROM multiraft.node;
RESET ROLE;
GRANT multiraft_admin TO mr_nobody;
SET ROLE mr_nobody;
SELECT multiraft.add_node(5, '127.0.0.1', 5435);
SELECT multiraft.remove_node(5);
RESET ROLE;
DROP ROLE mr_nobody;
-- node_conninfo may not name where to connect
ALTER SYSTEM SET multiraft.node_conninfo = 'host=evil.example';
ALTER SYSTEM SET multiraft.node_conninfo = 'sslmode=require dbname=x';
ALTER SYSTEM SET multiraft.node_conninfo = 'sslmode=require user=''peer one''';
ALTER SYSTEM RESET multiraft.node_conninfo;
