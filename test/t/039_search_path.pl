# Objects a user plants on the default search_path are never run by multiraft's
# own SQL: not by the worker (the bootstrap superuser), not by its C functions
# called by a superuser.  An int || text operator in public used to be picked up
# by the worker's registry check, and whoever could create in public became
# superuser.  And only a superuser registers a node under another database than
# multiraft.database: the worker logs into it as a superuser and calls
# multiraft.receive_stream there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
my $dir = $node->host;
sub sql { return $node->safe_psql('postgres', $_[0]); }

ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');
sql("SELECT multiraft.create_group(1, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 1", 'leader'), 'group 1 led here');

# mallory may create in public (PostgreSQL 14 and older allowed everybody)
sql(q{
	CREATE ROLE mallory LOGIN;
	GRANT CREATE ON SCHEMA public TO mallory;
	CREATE TABLE public.trap_calls (who text, what text);
	GRANT INSERT ON public.trap_calls TO PUBLIC});
my ($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE mallory;
	CREATE FUNCTION public.trap_it(a integer, b text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.trap_calls VALUES (current_user, 'int || text');
		RETURN a::text || b;
	END $$;
	CREATE OPERATOR public.|| (LEFTARG = integer, RIGHTARG = text, FUNCTION = public.trap_it);
});
is($ret, 0, 'mallory plants an int || text operator in public') or diag($err);
# the trap springs for whoever resolves || through public
is(sql("SELECT 1 || 'x'"), '1x', 'an unqualified int || text resolves to the planted operator');
is(sql("SELECT count(*) FROM public.trap_calls"), '1', '... and runs it');
sql("TRUNCATE public.trap_calls");

# Two seconds of worker rounds (the registry is checked every second), with
# calls that run SQL in the backend as a superuser.
sub exercise
{
	my ($what) = @_;
	sql("SELECT multiraft.add_node(2, '$dir', 1)");
	ok(poll_until($node, "SELECT count(*) FROM multiraft.nodes WHERE node_id = 2", '1'),
		"node 2 registered ($what)");
	sql("SELECT multiraft.submit(1, '\\x01'::bytea)");
	sql("SELECT count(*) FROM multiraft.log_entries(1)");
	sql("SELECT count(*) FROM multiraft.consume_events()");
	sql("SELECT multiraft.remove_node(2)");
	ok(poll_until($node, "SELECT count(*) FROM multiraft.nodes WHERE node_id = 2", '0'),
		"node 2 removed ($what)");
	my $ticks = sql("SELECT value FROM multiraft.stats WHERE name = 'ticks'");
	ok(poll_until($node, "SELECT value > $ticks + 100 FROM multiraft.stats WHERE name = 'ticks'", 't'),
		"the worker ticked on ($what)");
}
my $log_from = -s $node->logfile;
exercise('int || text planted');
is(sql("SELECT count(*) FROM public.trap_calls"), '0', 'no planted operator ran')
  or diag(sql("SELECT string_agg(who || ': ' || what, ', ') FROM public.trap_calls"));
is(sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"), 'f', 'mallory is no superuser');

# More operators make || ambiguous for unqualified SQL: the worker's rounds
# used to fail on it ("operator is not unique"), every second.
($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE mallory;
	CREATE FUNCTION public.trap_tb(a text, b bigint) RETURNS text LANGUAGE sql AS $$ SELECT a $$;
	CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = public.trap_tb);
	CREATE FUNCTION public.trap_bt(a bigint, b text) RETURNS text LANGUAGE sql AS $$ SELECT b $$;
	CREATE OPERATOR public.|| (LEFTARG = bigint, RIGHTARG = text, FUNCTION = public.trap_bt);
});
is($ret, 0, 'mallory plants more || operators') or diag($err);
exercise('more planted');
ok(!$node->log_contains(qr/multiraft: maintenance failed/, $log_from), 'the worker\'s rounds never failed');
is(sql("SELECT count(*) FROM public.trap_calls"), '0', 'and still no planted operator ran');

# add_node's dbname: a superuser's decision
sql("CREATE ROLE app_admin LOGIN IN ROLE multiraft_admin");
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE app_admin; SELECT multiraft.add_node(3, '$dir', 1, 'evil')");
like($err, qr/only a superuser may register node 3 under database "evil"/,
	'an admin cannot register a node under another database');
is(sql("SELECT count(*) FROM multiraft.nodes WHERE node_id = 3"), '0', '... and nothing is registered');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE app_admin; SELECT multiraft.add_node(3, '$dir', 1, 'postgres')");
is($ret, 0, 'an admin may name multiraft.database itself') or diag($err);
($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.add_node(4, '$dir', 1, 'evil')");
is($ret, 0, 'a superuser may name another database') or diag($err);

$node->stop;
done_testing();
