-- Group administration: create_group / remove_group / change_membership /
-- transfer_leadership argument checks, status of unknown groups, node_is_member.
-- (Calls that the worker must complete are tested in TAP.)
-- The worker serves once it has found the extension (it polls for it).
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN (SELECT value FROM multiraft.stats WHERE name = 'worker_serving') = 1;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT value AS worker_serving FROM multiraft.stats WHERE name = 'worker_serving';
SELECT multiraft.add_node(1, '127.0.0.1', 5432);
SELECT multiraft.add_node(2, '127.0.0.1', 5433);
SELECT multiraft.add_node(3, '127.0.0.1', 5434);

-- nothing runs here yet
SELECT * FROM multiraft.groups;
SELECT * FROM multiraft.status(42);
SELECT * FROM multiraft.status(NULL);
SELECT * FROM multiraft.status(0);
SELECT multiraft.node_is_member(1), multiraft.node_is_member(2);

-- create_group: every argument error, before anything is sent
SELECT multiraft.create_group(NULL, '{1,2,3}');
SELECT multiraft.create_group(0, '{1,2,3}');
SELECT multiraft.create_group(-7, '{1,2,3}');
SELECT multiraft.create_group(10, NULL);
SELECT multiraft.create_group(10, '{}');
SELECT multiraft.create_group(10, '{1,NULL,3}');
SELECT multiraft.create_group(10, '{1,2,1}');
SELECT multiraft.create_group(10, '{1,0}');
SELECT multiraft.create_group(10, '{1,-2}');
SELECT multiraft.create_group(10, '{{1,2},{3,4}}');
SELECT multiraft.create_group(10, '{2,3}');
SELECT multiraft.create_group(10, '{1,2,4}');
SELECT multiraft.create_group(10, ARRAY(SELECT generate_series(1, 17)));
SELECT * FROM multiraft.groups;

-- remove_group
SELECT multiraft.remove_group(NULL);
SELECT multiraft.remove_group(0);
SELECT multiraft.remove_group(42);

-- change_membership
SELECT multiraft.change_membership(NULL, 'add_voter', 2);
SELECT multiraft.change_membership(42, NULL, 2);
SELECT multiraft.change_membership(42, 'add_voter', NULL);
SELECT multiraft.change_membership(42, 'promote', 2);
SELECT multiraft.change_membership(42, 'ADD_VOTER', 2);
SELECT multiraft.change_membership(42, 'add_voter', 0);
SELECT multiraft.change_membership(42, 'add_voter', 9);
SELECT multiraft.change_membership(42, 'add_voter', 2, timeout_ms => 0);
SELECT multiraft.change_membership(42, 'add_voter', 2, timeout_ms => NULL);
SELECT multiraft.change_membership(42, 'add_voter', 2, command_id => '');
SELECT multiraft.change_membership(42, 'add_voter', 2, command_id => repeat('x', 257));
SELECT multiraft.change_membership(42, 'add_learner', 2,
                                   payload => decode(repeat('ab', 1024 * 1024 + 1), 'hex'));
SELECT multiraft.change_membership(42, 'add_voter', 2);
SELECT multiraft.change_membership(42, 'remove_voter', 3, '\x00'::bytea, 'cc-1', 100);
SELECT multiraft.change_membership(42, 'add_learner', 3, command_id => repeat('x', 256));

-- transfer_leadership
SELECT multiraft.transfer_leadership(NULL, 2);
SELECT multiraft.transfer_leadership(42, NULL);
SELECT multiraft.transfer_leadership(42, -1);
SELECT multiraft.transfer_leadership(42, 9);
SELECT multiraft.transfer_leadership(42, 2, 0);
SELECT multiraft.transfer_leadership(42, 2);

-- remove_node asks node_is_member: a node in no local group can go
SELECT multiraft.remove_node(3);
SELECT multiraft.remove_node(2);
SELECT multiraft.remove_node(1);
SELECT count(*) FROM multiraft.nodes;
