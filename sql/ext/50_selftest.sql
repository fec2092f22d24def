
-- ---------------------------------------------------------------- storage self-test
-- The raft core's storage conformance suite (test/common/storage_conformance.c) run
-- against the storage tables, through the worker's own write and start-up load code
-- (src/pg/storage_selftest.c).  It writes only rows of negative (scratch) group ids,
-- which no group can have, inside a subtransaction that it rolls back: it changes
-- nothing.  checks: checks run; failed: checks that failed; failures: one line per
-- failed expectation.  Superuser-only: a diagnostic, not an API.
CREATE FUNCTION multiraft.storage_selftest(OUT checks int, OUT failed int, OUT failures text[])
    RETURNS record LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'multiraft_storage_selftest';
REVOKE ALL ON FUNCTION multiraft.storage_selftest() FROM PUBLIC;
