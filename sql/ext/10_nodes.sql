-- ---------------------------------------------------------------- nodes
CREATE TABLE multiraft.node (
    node_id int PRIMARY KEY CHECK (node_id BETWEEN 1 AND 2147483647),
    host    text NOT NULL CHECK (host <> ''),
    port    int NOT NULL CHECK (port BETWEEN 1 AND 65535),
    dbname  text CHECK (dbname <> '')
);
REVOKE ALL ON multiraft.node FROM PUBLIC;

CREATE FUNCTION multiraft.add_node(node_id int, host text, port int DEFAULT 5432,
                                   dbname text DEFAULT NULL) RETURNS void
    LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'multiraft_add_node';
CREATE FUNCTION multiraft.remove_node(node_id int) RETURNS void
    LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'multiraft_remove_node';

-- Whether node_id is a voter or learner of a group with a replica here.
-- (Replaced by the group tables' own query once groups exist.)
CREATE FUNCTION multiraft.node_is_member(node_id int) RETURNS SETOF bool
    LANGUAGE sql STABLE AS $$ SELECT false WHERE false $$;

REVOKE ALL ON FUNCTION multiraft._check_setup() FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.add_node(int, text, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.remove_node(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION multiraft.node_is_member(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION multiraft.add_node(int, text, int, text) TO multiraft_admin;
GRANT EXECUTE ON FUNCTION multiraft.remove_node(int) TO multiraft_admin;

CREATE VIEW multiraft.nodes AS
    SELECT n.node_id, n.host, n.port,
           coalesce(n.dbname, current_setting('multiraft.database')) AS dbname,
           false AS connected
      FROM multiraft.node n;
GRANT SELECT ON multiraft.nodes TO PUBLIC;
