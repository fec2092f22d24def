# An ERROR inside the worker's batch transaction (a trigger on multiraft.events
# that fails once; then a unique index on it that the direct path maintains): the worker process survives, nothing of the
# failed batch is kept, the request in flight fails with "raft processing
# stopped", the node reloads its groups from the tables and carries on, and the
# command can be submitted again and is then applied exactly once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }
# The worker notices CREATE EXTENSION within a second.
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'the worker serves');

sql("SELECT multiraft.create_group(g, ARRAY[1]) FROM generate_series(1, 2) g");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '2'), 'two groups');
my $before = sql("SELECT multiraft.submit(1, '\\x01'::bytea, 'before')");

# nextval is not transactional: the trigger fails the first matching insert only.
sql(q{
	CREATE SEQUENCE fail_once;
	CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.payload = '\xdead'::bytea AND nextval('public.fail_once') = 1 THEN
			RAISE EXCEPTION 'injected storage failure';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER fail_once BEFORE INSERT ON multiraft.events
		FOR EACH ROW EXECUTE FUNCTION fail_once();
});
my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
my $offset = -s $node->logfile;

my ($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.submit(1, '\\xdead'::bytea, 'poison')");
isnt($ret, 0, 'the submit whose batch failed reports an error');
like($err, qr/raft processing stopped/, '... "raft processing stopped"');
ok($node->wait_for_log(qr/multiraft: could not persist a batch .*injected storage failure/, $offset),
	'the worker logs the failed batch');
ok($node->wait_for_log(qr/multiraft worker restored 2 groups/, $offset), 'and reloads its groups');
is(sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'"), $pid,
	'in the same process (no crash, no restart)');
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id = 'poison'"), '0',
	'nothing of the failed batch was kept');

ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '2'), 'the groups lead again');
my $again = sql("SELECT multiraft.submit(1, '\\xdead'::bytea, 'poison')");
cmp_ok($again, '>', $before, 'the command commits when submitted again');
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id = 'poison'"), '1', '... once');
is(sql("SELECT multiraft.submit(1, '\\xdead'::bytea, 'poison')"), $again, 'and stays deduplicated');
my $other = sql("SELECT multiraft.submit(2, '\\x02'::bytea, 'other')");
ok($other > 0, 'other groups are unaffected');
is(sql("SELECT count(*) FROM (SELECT 1 FROM multiraft.events WHERE event_type = 'command'
         GROUP BY group_id, log_index HAVING count(*) > 1) d"), '0', 'no duplicated event');

# Triggers on the log and dedup tables fire too: with one, the worker writes
# that table's rows by statement instead of directly.
sql(q{
	CREATE TABLE public.seen (tab text);
	CREATE FUNCTION public.note_row() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.seen VALUES (TG_TABLE_NAME);
		RETURN NULL;
	END $$;
	CREATE TRIGGER note_row AFTER INSERT ON multiraft.log FOR EACH ROW EXECUTE FUNCTION public.note_row();
	CREATE TRIGGER note_row AFTER INSERT ON multiraft.dedup FOR EACH ROW EXECUTE FUNCTION public.note_row();
});
my $noted = sql("SELECT multiraft.submit(2, '\\x0b'::bytea, 'noted')");
is(sql("SELECT string_agg(DISTINCT tab, ',' ORDER BY tab) FROM public.seen"), 'dedup,log',
	'triggers on multiraft.log and multiraft.dedup fire');
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id = 'noted' AND log_index = $noted"), '1',
	'... and the command is applied once');
sql(q{
	DROP TRIGGER note_row ON multiraft.log;
	DROP TRIGGER note_row ON multiraft.dedup;
});

# Without the trigger the worker writes events straight into the table and its
# indexes (storage_insert.c), an index the operator added included: a unique one
# that the second '\xbeef' payload violates fails that batch the same way.
sql(q{
	DROP TRIGGER fail_once ON multiraft.events;
	CREATE UNIQUE INDEX one_beef ON multiraft.events (payload) WHERE payload = '\xbeef'::bytea;
});
my $beef = sql("SELECT multiraft.submit(1, '\\xbeef'::bytea, 'beef-1')");
cmp_ok($beef, '>', $again, 'a command commits through the direct path');
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id = 'beef-1' AND created_at IS NOT NULL
        AND event_id > (SELECT max(event_id) FROM multiraft.events WHERE command_id = 'poison')"),
	'1', '... with its event, an event id from the sequence and created_at');
$offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.submit(1, '\\xbeef'::bytea, 'beef-2')");
like($err, qr/raft processing stopped/, 'a unique index the operator added fails the batch');
ok($node->wait_for_log(qr/multiraft: could not persist a batch .*one_beef/, $offset),
	'... which the worker logs');
is(sql("SELECT count(*) FROM multiraft.dedup WHERE group_id = 1 AND command_id = 'beef-2'::bytea"), '0',
	'nothing of it was kept');
sql("DROP INDEX multiraft.one_beef");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '2'), 'the groups lead again');
cmp_ok(sql("SELECT multiraft.submit(1, '\\xbeef'::bytea, 'beef-2')"), '>', $beef, 'and it commits once the index is gone');
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id = 'beef-2'"), '1', '... once');

# The meta rows are written as PostgreSQL writes its catalog rows (storage_meta.c),
# which maintains plain indexes only: an index on an expression would have the
# worker evaluate it without an executor state and crash the server.  The worker
# checks the table first and fails the batch with a clear error instead.
my $wpid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
sql("CREATE INDEX meta_expr ON multiraft.group_meta ((term + 1))");
$offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.create_group(9, ARRAY[1])");
like($err, qr/raft processing stopped/,
	'an expression index on multiraft.group_meta fails the batch that writes a meta row');
ok($node->wait_for_log(qr/multiraft.group_meta is not as the extension created it/, $offset),
	'... with a clear error in the server log');
is(sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'"), $wpid,
	'... and no crash: the same worker process');
sql("DROP INDEX multiraft.meta_expr");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '2'), 'the groups lead again');
sql("SELECT multiraft.create_group(9, ARRAY[1])");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '3'),
	'and the group is created once the index is gone');
sql("SELECT multiraft.remove_group(9)");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups", '2'), '(removed again)');

# The worker knows where each of its log rows is (storage_log.c) and deletes a
# row there only after checking that it is the run it wrote: a row an operator
# moved (an UPDATE writes the new version elsewhere) fails the batch that would
# delete it, and the worker reloads, learns the rows afresh and carries on.
sql("SELECT multiraft.create_group(3, ARRAY[1])");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '3'), 'a third group');
sql("SELECT multiraft.submit(3, '\\x31'::bytea, 'three')");
sql("UPDATE multiraft.log SET entries = entries WHERE group_id = 3");
$offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.remove_group(3)");
like($err, qr/raft processing stopped/, 'removing a group whose log rows were moved fails');
ok($node->wait_for_log(qr/multiraft: could not persist a batch .*is not where the worker left it/, $offset),
	'... on the check of the moved row');
ok($node->wait_for_log(qr/multiraft worker restored 3 groups/, $offset), 'the worker reloads');
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '3'), 'the groups lead again');
sql("SELECT multiraft.remove_group(3)");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups", '2'), 'the group is removed on the second try');
is(sql("SELECT count(*) FROM multiraft.log WHERE group_id = 3"), '0', '... with its moved log rows');

# VACUUM FULL rewrites multiraft.log into a new file, every row at a new address:
# the worker's next batch reads the addresses again, and nothing fails.  Enough
# commands follow for compaction to delete rows at their new addresses.
sql("VACUUM FULL multiraft.log");
$offset = -s $node->logfile;
my $first_after = sql("SELECT multiraft.submit(1, '\\x41'::bytea, 'after-vacuum-full')");
ok($node->wait_for_log(qr/multiraft\.log was rewritten .*reading where its rows are again/, $offset),
	'after VACUUM FULL the worker reads where the log rows are again');
sql("DO \$\$ BEGIN FOR i IN 1..150 LOOP
       PERFORM multiraft.submit(1, '\\x42'::bytea, 'vf' || i);
     END LOOP; END \$\$");
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id LIKE 'vf%'"), '150',
	'commands after the rewrite commit');
ok(!$node->log_contains(qr/could not persist a batch .*is not where the worker left it/, $offset),
	'... and compaction deletes the rewritten rows without a failed batch');
cmp_ok(sql("SELECT log_start_index FROM multiraft.group_meta WHERE group_id = 1"), '>', $first_after,
	'... past the entries written before the rewrite');

# Undecodable stored state of one group: that group stays down (WARNING), the
# others come back.
$node->stop('fast');
$node->start;
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '2'), 'both groups back');
# Restarts the worker (the postmaster starts it again) after a corruption of
# `group`'s stored state: the group is reported and left out, and the worker
# restores the `restored` others.
sub restart_worker_leaving_out
{
	my ($group, $restored, $what) = @_;
	my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
	my $from = -s $node->logfile;
	sql("SELECT pg_terminate_backend($pid)");
	ok($node->wait_for_log(qr/WARNING:  multiraft: group $group could not be restored/, $from),
		"a group with $what is reported");
	ok($node->wait_for_log(qr/multiraft worker restored $restored groups/, $from),
		"the worker restores the $restored other(s)");
}

sql("UPDATE multiraft.group_meta SET layer_state = '\\xffffffff'::bytea WHERE group_id = 2");
restart_worker_leaving_out(2, 1, 'undecodable state');
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '1'), 'and leads');
cmp_ok(sql("SELECT multiraft.submit(1, '\\x03'::bytea, 'after-corruption')"), '>', $again, 'group 1 works');
($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.submit(2, '\\x03'::bytea)");
like($err, qr/group 2 does not exist/, 'group 2 is unavailable here');
is(sql("SELECT count(*) FROM multiraft.group_meta WHERE group_id = 2"), '1', 'its rows are kept');

# A log row whose bytes do not hold its entries (cut short here) leaves that
# group out the same way, instead of keeping every group of the node down; put
# back, the group comes back.
my $row = sql("SELECT max(log_index) FROM multiraft.log WHERE group_id = 1");
sql("CREATE TABLE saved_row AS SELECT * FROM multiraft.log WHERE group_id = 1 AND log_index = $row");
my $cut_from = -s $node->logfile;
sql("UPDATE multiraft.log SET entries = substr(entries, 1, 20) WHERE group_id = 1 AND log_index = $row");
restart_worker_leaving_out(1, 0, 'a log row cut short');
ok($node->log_contains(qr/group 1 could not be restored: its log row ending at index $row is corrupt/,
	$cut_from), '... naming the row');
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'and serves');
sql("UPDATE multiraft.log l SET entries = s.entries FROM saved_row s
      WHERE l.group_id = 1 AND l.log_index = $row");
{
	my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
	my $from = -s $node->logfile;
	sql("SELECT pg_terminate_backend($pid)");
	ok($node->wait_for_log(qr/multiraft worker restored 1 groups/, $from), 'the row put back, group 1 is restored');
}
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '1'), 'and leads');

# Log rows that overlap (no write makes them; here a row copied) leave that group
# out the same way, and the worker still starts.
cmp_ok(sql("SELECT count(*) FROM multiraft.log WHERE group_id = 1
            AND log_index > (SELECT log_start_index FROM multiraft.group_meta WHERE group_id = 1)"),
	'>', 0, 'group 1 has log rows past its log start');
sql("INSERT INTO multiraft.log SELECT * FROM multiraft.log WHERE group_id = 1 ORDER BY log_index DESC LIMIT 1");
restart_worker_leaving_out(1, 0, 'overlapping log rows');
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'and serves');

$node->stop;
done_testing();
