-- submit / read_index argument checks, size limits, and the stats view.
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN (SELECT value FROM multiraft.stats WHERE name = 'worker_serving') = 1;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT value AS worker_serving FROM multiraft.stats WHERE name = 'worker_serving';

-- submit: NULLs, bounds, sizes — checked before anything is sent
SELECT multiraft.submit(NULL, '\x01');
SELECT multiraft.submit(0, '\x01');
SELECT multiraft.submit(42, NULL);
SELECT multiraft.submit(42, '\x01', '');
SELECT multiraft.submit(42, '\x01', repeat('ab', 129));
SELECT multiraft.submit(42, '\x01', 'id-1', 0);
SELECT multiraft.submit(42, '\x01', 'id-1', -5);
SELECT multiraft.submit(42, '\x01', 'id-1', NULL);
-- ids of the generated form are reserved; a near miss is an ordinary id
SELECT multiraft.submit(42, '\x01', '3-17-0123456789abcdef');
SELECT multiraft.submit(42, '\x01', '3-17-0123456789abcdeg');
SHOW multiraft.max_command_size;
SELECT multiraft.submit(42, decode(repeat('ab', 1024 * 1024 + 1), 'hex'));
-- a command of exactly max_command_size bytes passes the size check
SELECT multiraft.submit(42, decode(repeat('ab', 1024 * 1024), 'hex'));
SELECT multiraft.submit(42, '\x01');
SELECT multiraft.submit(42, '', repeat('x', 256), 1);
SELECT multiraft.submit(9223372036854775807, '\x01');

-- read_index
SELECT multiraft.read_index(NULL);
SELECT multiraft.read_index(-1);
SELECT multiraft.read_index(42, 0);
SELECT multiraft.read_index(42, NULL);
SELECT multiraft.read_index(42);
-- a transaction snapshot would not see what the read waited for
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT multiraft.read_index(42);
ROLLBACK;

-- no request is left behind by the calls above
-- (multiraft.stats shows these, plus the transport's counters)
SELECT name FROM multiraft._stats() ORDER BY name;
SELECT count(*) AS missing_from_view
  FROM multiraft._stats() s WHERE s.name NOT IN (SELECT name FROM multiraft.stats);
SELECT value AS requests_in_progress FROM multiraft.stats WHERE name = 'requests_in_progress';
SELECT value > 0 AS has_request_slots FROM multiraft.stats WHERE name = 'request_slots';
SELECT value AS groups FROM multiraft.stats WHERE name = 'groups';
