-- multiraft.storage_selftest(): the raft core's storage conformance suite against
-- the storage tables, through the worker's write and start-up load code.
SELECT checks, failed, failures FROM multiraft.storage_selftest();
-- it changes nothing: no row of a scratch (negative) group id is left
SELECT (SELECT count(*) FROM multiraft.log WHERE group_id < 0) AS log,
       (SELECT count(*) FROM multiraft.group_meta WHERE group_id < 0) AS meta,
       (SELECT count(*) FROM multiraft.dedup WHERE group_id < 0) AS dedup,
       (SELECT count(*) FROM multiraft.tombstone WHERE group_id < 0) AS tombstone;

-- It fails on a broken write path.  A trigger on the scratch groups' log rows
-- loses those whose first entry has term 4 (a row packs a run of entries, each
-- starting with its term, 8 bytes little endian; the suite writes them when it
-- replaces a suffix) ...
CREATE FUNCTION selftest_break() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_ARGV[0] = 'raise' THEN
        RAISE EXCEPTION 'injected storage failure';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER selftest_break BEFORE INSERT ON multiraft.log FOR EACH ROW
    WHEN (NEW.group_id < 0 AND substring(NEW.entries FROM 1 FOR 8) = '\x0400000000000000'::bytea) EXECUTE FUNCTION selftest_break('drop');
SELECT s.checks, s.failed,
       (SELECT array_agg(DISTINCT split_part(f, ':', 1)) FROM unnest(s.failures) f) AS failed_checks,
       s.failures[1] AS first_failure
  FROM multiraft.storage_selftest() s;
DROP TRIGGER selftest_break ON multiraft.log;
-- ... or fails writing them: the failed writes are reported, and the writes after
-- them (a failed batch must not break the next one) pass.
CREATE TRIGGER selftest_break BEFORE INSERT ON multiraft.log FOR EACH ROW
    WHEN (NEW.group_id < 0 AND substring(NEW.entries FROM 1 FOR 8) = '\x0400000000000000'::bytea) EXECUTE FUNCTION selftest_break('raise');
SELECT s.checks, s.failed,
       (SELECT array_agg(DISTINCT split_part(f, ':', 1)) FROM unnest(s.failures) f) AS failed_checks,
       s.failures[1] AS first_failure
  FROM multiraft.storage_selftest() s;
DROP TRIGGER selftest_break ON multiraft.log;
DROP FUNCTION selftest_break();
SELECT checks, failed, failures FROM multiraft.storage_selftest();

-- superuser only
CREATE ROLE mr_selftest_user;
SET ROLE mr_selftest_user;
SELECT * FROM multiraft.storage_selftest();
RESET ROLE;
GRANT EXECUTE ON FUNCTION multiraft.storage_selftest() TO mr_selftest_user;
SET ROLE mr_selftest_user;
SELECT * FROM multiraft.storage_selftest();
RESET ROLE;
REVOKE EXECUTE ON FUNCTION multiraft.storage_selftest() FROM mr_selftest_user;
DROP ROLE mr_selftest_user;
