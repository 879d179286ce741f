#!/usr/bin/perl
# The listening socket held the way systemd's tdc-milter.socket holds it, for the restart specs:
# binds 127.0.0.1:0 once, then (re)starts the daemon with it as fd 3, LISTEN_FDS=1 and LISTEN_PID set
# to the daemon's own pid (fork, then exec in the child, as systemd does), and respawns it whenever it
# exits. With "plain" it binds nothing: the daemon binds `listen` itself (the gap we compare against).
# Perl because Node can neither exec nor hand a listening socket to a child; perl-base is Essential on
# Debian. Usage: socket-holder.pl activate|plain COMMAND ARGS...  SIGTERM stops the daemon, then us.
use strict;
use warnings;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_REUSEADDR pack_sockaddr_in unpack_sockaddr_in inet_aton);
use Fcntl qw(F_SETFD);
use POSIX ();

my ($mode, @cmd) = @ARGV;
die "usage: $0 activate|plain COMMAND ARGS...\n" unless defined $mode && ($mode eq 'activate' || $mode eq 'plain') && @cmd;
$| = 1;

my $sock;
if ($mode eq 'activate') {
    socket($sock, PF_INET, SOCK_STREAM, 0) or die "holder: socket: $!\n";
    setsockopt($sock, SOL_SOCKET, SO_REUSEADDR, 1) or die "holder: setsockopt: $!\n";
    bind($sock, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "holder: bind: $!\n";
    listen($sock, 4096) or die "holder: listen: $!\n";
    my ($port) = unpack_sockaddr_in(getsockname($sock));
    print "holder: listening on 127.0.0.1:$port\n";
}

my $stop = 0;
my $child = 0;
$SIG{TERM} = sub { $stop = 1; kill 'TERM', $child if $child; };

while (!$stop) {
    my $pid = fork();
    die "holder: fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        if (defined $sock) {
            my $fd = fileno($sock);
            if ($fd == 3) {
                fcntl($sock, F_SETFD, 0) or die "holder: fcntl: $!\n";    # keep it across exec
            } else {
                POSIX::dup2($fd, 3) or die "holder: dup2: $!\n";        # dup2 clears close-on-exec
            }
            $ENV{LISTEN_FDS} = '1';
            $ENV{LISTEN_PID} = "$$";
            $ENV{LISTEN_FDNAMES} = 'milter';
        }
        exec { $cmd[0] } @cmd or die "holder: exec $cmd[0]: $!\n";
    }
    $child = $pid;
    print "holder: started daemon pid $pid\n";
    waitpid($pid, 0);
    my $status = $?;
    $child = 0;
    print "holder: daemon pid $pid exited with status " . ($status >> 8) . " signal " . ($status & 127) . "\n";
}
exit 0;
