-- multiraft extension script (version 0.1).
-- Every object is schema-qualified; nothing that changes state is executable by PUBLIC.

-- Refuse to install anywhere but multiraft.database (and without the preloaded library).
CREATE FUNCTION multiraft._check_setup() RETURNS void
    LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'multiraft_check_setup';
SELECT multiraft._check_setup();

-- Roles (cluster-wide; created only if missing, never dropped by the extension).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'multiraft_admin') THEN
        CREATE ROLE multiraft_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'multiraft_writer') THEN
        CREATE ROLE multiraft_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'multiraft_peer') THEN
        CREATE ROLE multiraft_peer NOLOGIN;
    END IF;
END
$roles$;

GRANT USAGE ON SCHEMA multiraft TO PUBLIC;

