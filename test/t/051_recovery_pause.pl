# After a batch that cannot be persisted, the worker waits a second before it
# reloads its raft state: a persistent error costs one reload per second.  The
# wait ended at the first latch, and a receive backend sets it at every frame of
# a link that stays with it (multiraft.adopt_links = off, or TLS): the node
# reloaded every group at each heartbeat of its peers, 125 times in 10 s (found
# by a review).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my @n = start_cluster(2, 'multiraft.adopt_links' => 'off');
ok(poll_until($_, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves')
  for @n;
$n[0]->safe_psql('postgres', 'SELECT multiraft.create_group(1, ARRAY[1, 2])');
ok(poll_until($n[1], 'SELECT role FROM multiraft.status(1)', 'follower'), 'node 2 follows group 1');

# Every log row node 2 writes fails.
$n[1]->safe_psql('postgres', q{
	CREATE FUNCTION public.always_fail() RETURNS trigger LANGUAGE plpgsql
	  AS $$BEGIN RAISE EXCEPTION 'injected failure'; END$$;
	CREATE TRIGGER always_fail BEFORE INSERT ON multiraft.log
	  FOR EACH ROW EXECUTE FUNCTION public.always_fail();});
my $offset = -s $n[1]->logfile;
$n[0]->psql('postgres', "SELECT multiraft.submit(1, '\\x01'::bytea, 'fails-on-2', 10000)");
my $log = slurp_file($n[1]->logfile, $offset);
my $reloads = () = $log =~ /multiraft worker restored/g;
ok($log =~ /injected failure/, 'node 2 could not persist its batches');
cmp_ok($reloads, '<=', 20,
	"node 2 reloaded about once a second during the 10 s submit, not at each frame: $reloads");

$n[1]->safe_psql('postgres', 'DROP TRIGGER always_fail ON multiraft.log');
ok(poll_until($n[0], "SELECT multiraft.submit(1, '\\x02'::bytea, 'after', 30000) > 0", 't'),
	'once the failure is gone, the group commits again');
$_->stop for @n;
done_testing();
