// Package postfixtest runs throwaway Postfix instances and test users for
// end-to-end tests (internal/testkit runs mapdropd). It needs root and a Postfix
// installation (Debian's postfix, postfix-cdb); Require decides whether a
// missing one fails or skips the test.
//
// An instance is one directory, mode 0755 so that unprivileged delivery
// users can traverse it, laid out as:
//
//	DIR/conf/main.cf      generated: the settings below plus Config.MainCF
//	DIR/conf/master.cf    Debian's stock master.cf plus Config.MasterCF
//	DIR/queue/            queue_directory and the chroot (subdirectories made
//	                      by "postfix check", etc/ and lib/ by configure-instance.sh)
//	DIR/data/             data_directory, owned by the postfix user
//	DIR/maillog           maillog_file, written by the postlog service
//
// The generated main.cf follows what real Postfix 3.7 needs to run as a
// second instance without syslog or DNS:
//
//	compatibility_level = 3.6
//	queue_directory = DIR/queue, data_directory = DIR/data
//	maillog_file = DIR/maillog, maillog_file_prefixes = DIR
//	myhostname = mapdrop-test.localdomain, mydomain = localdomain
//	myorigin = $myhostname, mydestination = (empty unless overridden)
//	inet_interfaces = loopback-only, inet_protocols = ipv4
//	mynetworks = 127.0.0.0/8
//	disable_dns_lookups = yes, smtp_dns_support_level = disabled
//	alias_maps =, alias_database =
//
// Extra lines in Config.MainCF replace a default or an earlier extra line
// of the same name in place and are appended otherwise.
//
// master.cf is Debian's /usr/share/postfix/master.cf.dist (StockMasterCF) as
// shipped, chroot column included: smtpd, pickup, cleanup, trivial-rewrite,
// bounce, smtp and the others run chrooted in the queue directory; proxymap,
// qmgr, local, virtual, pipe and postlogd do not. The one change is the
// smtpd listener's name, "smtp" becoming 127.0.0.1:PORT with a free PORT.
// Config.MasterCF is appended after a guard: it may add services but not
// redefine a stock one (same name and type), and a service running a
// program the stock file chroots must have chroot "y". No test can turn a
// chroot off. Instance.Services (Postfix's own "postconf -M") and
// Instance.Chrooted (the root directory of the running processes, from
// /proc) let tests assert that the chroot is really on.
//
// Before "postfix start", Debian's configure-instance.sh runs with
// MAIL_CONFIG=DIR/conf, as Debian's postfix service runs it before each
// start: it copies etc/services, etc/hosts, etc/resolv.conf,
// etc/nsswitch.conf, etc/localtime and the NSS libraries into the chroot.
// Then "postfix -c DIR check" creates the queue subdirectories.
//
// Postfix processes left as zombies after "postfix stop" (there is no init
// reaping them in a container) are harmless.
package postfixtest
