# A node restored from an old copy of its data directory: it lost log entries
# it had acknowledged, which Raft's stable-storage assumption rules out and
# operators do anyway.  The leader, whose progress says the node holds them,
# probes where it believes the node's log ends; the node rejects the probe.  The
# leader used to probe the same index again at once, for good — a message storm
# between the two workers, the node never catching up (docs/sim-findings.md,
# finding 17).  Now the rejection lowers the leader's view of the node's log and
# the node is repaired like any lagging one.  (Whether the leader probes or, having
# quiesced and compacted meanwhile, starts afresh with a snapshot depends on
# timing; test_follower_that_lost_acknowledged_entries_is_repaired covers the probe
# deterministically.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use File::Path qw(rmtree);
use Test::More;
use MultiraftTest;

my @n = start_cluster_with_group(80);
sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }
my $old = sql(0, "SELECT multiraft.submit(80, '\\x01'::bytea, 'old')");
ok(poll_until($n[2], "SELECT applied_index >= $old FROM multiraft.status(80)", 't'),
	'node 3 applied the first command');

# The copy: node 3's data directory as of now.
$n[2]->stop;
my $copy = PostgreSQL::Test::Utils::tempdir() . '/node3-copy';
PostgreSQL::Test::RecursiveCopy::copypath($n[2]->data_dir, $copy);
$n[2]->start;

# Node 3 acknowledges more entries (node 2 is down: every commit needs node 3).
$n[1]->stop;
my $last;
$last = sql(0, "SELECT multiraft.submit(80, '\\x02'::bytea, 'new-$_')") for 1 .. 20;
ok(poll_until($n[2], "SELECT applied_index >= $last FROM multiraft.status(80)", 't'),
	"node 3 acknowledged and applied up to $last");
$n[1]->start;

# Node 3 comes back from the copy, without the entries after $old.
$n[2]->stop('immediate');
rmtree($n[2]->data_dir);
PostgreSQL::Test::RecursiveCopy::copypath($copy, $n[2]->data_dir);
chmod 0700, $n[2]->data_dir;
$n[2]->start;
ok(sql(2, "SELECT count(*) FROM multiraft.log WHERE group_id = 80 AND log_index > $old") == 0,
	'node 3 restarted without them');

my $after = sql(0, "SELECT multiraft.submit(80, '\\x03'::bytea, 'after')");
ok(poll_until($n[2], "SELECT applied_index >= $after FROM multiraft.status(80)", 't'),
	'node 3 is repaired and applies the next command');
# Exactly-once on node 3: each lost command is announced again once, unless the
# leader had compacted them away (it quiesced after node 3 left) and sent a
# snapshot, which covers them; never twice.
is(sql(2, "SELECT count(*) = count(DISTINCT command_id)
                  AND (count(*) = 20 OR EXISTS (SELECT 1 FROM multiraft.events
                         WHERE group_id = 80 AND event_type = 'snapshot_applied'
                           AND log_index > $old))
           FROM multiraft.events WHERE group_id = 80 AND command_id LIKE 'new-%'"),
	't', 'node 3 announces each lost command once, or a snapshot covers them');

$_->stop for @n;
done_testing();
