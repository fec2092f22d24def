-- Privileges (SPEC "Privileges"): PUBLIC reads status and the views only;
-- multiraft_writer submits, reads and consumes; multiraft_admin manages groups.
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN (SELECT value FROM multiraft.stats WHERE name = 'worker_serving') = 1;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT multiraft.add_node(1, '127.0.0.1', 5432);
SELECT multiraft.add_node(2, '127.0.0.1', 5433);
CREATE ROLE mr_api_user;

-- PUBLIC may execute status() and the functions behind PUBLIC views, nothing else
SELECT p.oid::regprocedure AS public_function_outside_views
  FROM pg_proc p
 WHERE p.pronamespace = 'multiraft'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
   AND p.oid <> 'multiraft.status(bigint)'::regprocedure
   AND NOT EXISTS (
       SELECT 1
         FROM pg_depend d
         JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
         JOIN pg_class v ON v.oid = r.ev_class
        WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid = p.oid
          AND v.relkind = 'v' AND has_table_privilege('public', v.oid, 'SELECT'))
 ORDER BY 1;
SELECT has_function_privilege('public', 'multiraft.status(bigint)', 'EXECUTE') AS public_status,
       has_function_privilege('public', 'multiraft._groups()', 'EXECUTE') AS public_groups,
       has_function_privilege('public', 'multiraft._stats()', 'EXECUTE') AS public_stats;
-- no table is open to PUBLIC; the views are readable
SELECT c.relname AS public_table
  FROM pg_class c
 WHERE c.relnamespace = 'multiraft'::regnamespace AND c.relkind IN ('r', 'p')
   AND has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
 ORDER BY 1;
SELECT has_table_privilege('public', 'multiraft.groups', 'SELECT') AS public_groups,
       has_table_privilege('public', 'multiraft.stats', 'SELECT') AS public_stats,
       has_table_privilege('public', 'multiraft.nodes', 'SELECT') AS public_nodes;

-- what the roles may execute of the group/command API
SELECT p.oid::regprocedure AS function,
       has_function_privilege('multiraft_writer', p.oid, 'EXECUTE') AS writer,
       has_function_privilege('multiraft_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('multiraft_peer', p.oid, 'EXECUTE') AS peer,
       p.prosecdef AS definer
  FROM pg_proc p
 WHERE p.pronamespace = 'multiraft'::regnamespace
   AND p.proname IN ('create_group', 'remove_group', 'submit', 'change_membership',
                     'transfer_leadership', 'read_index', 'status', 'consume_events',
                     '_groups', '_stats', 'node_is_member')
 ORDER BY p.oid::regprocedure::text;

-- without grants
SET ROLE mr_api_user;
SELECT * FROM multiraft.status(42);
SELECT count(*) FROM multiraft.groups;
SELECT count(*) > 0 AS has_stats FROM multiraft.stats;
SELECT count(*) FROM multiraft.nodes;
SELECT multiraft.create_group(10, '{1,2}');
SELECT multiraft.remove_group(42);
SELECT multiraft.change_membership(42, 'add_voter', 2);
SELECT multiraft.transfer_leadership(42, 2);
SELECT multiraft.submit(42, '\x01');
SELECT multiraft.read_index(42);
SELECT * FROM multiraft.consume_events();
SELECT * FROM multiraft.events;
SELECT multiraft.node_is_member(1);
RESET ROLE;

-- multiraft_writer: past the privilege check (the group does not exist here)
GRANT multiraft_writer TO mr_api_user;
SET ROLE mr_api_user;
SELECT multiraft.submit(42, '\x01');
SELECT multiraft.read_index(42);
SELECT * FROM multiraft.consume_events();
SELECT multiraft.create_group(10, '{1,2}');
SELECT multiraft.change_membership(42, 'add_voter', 2);
RESET ROLE;
REVOKE multiraft_writer FROM mr_api_user;

-- multiraft_admin: past the privilege check, including SECURITY DEFINER reads of the registry
GRANT multiraft_admin TO mr_api_user;
SET ROLE mr_api_user;
SELECT multiraft.create_group(10, '{2}');
SELECT multiraft.create_group(10, '{1,5}');
SELECT multiraft.remove_group(42);
SELECT multiraft.change_membership(42, 'add_voter', 2);
SELECT multiraft.change_membership(42, 'add_voter', 5);
SELECT multiraft.transfer_leadership(42, 2);
SELECT multiraft.submit(42, '\x01');
SELECT * FROM multiraft.consume_events();
RESET ROLE;

DROP ROLE mr_api_user;
SELECT multiraft.remove_node(1);
SELECT multiraft.remove_node(2);
