// Package postfixtest runs throwaway Postfix instances and test users for
// end-to-end tests (internal/testkit runs mapdropd). It needs root and a Postfix
// installation (Debian's postfix, postfix-cdb); Require decides whether a
// missing one fails or skips the test.
//
// An instance is one directory, mode 0755 so that unprivileged delivery
// users can traverse it, laid out as:
//
//	DIR/conf/main.cf      generated: the settings below plus Config.MainCF
//	DIR/conf/master.cf    generated: the services below plus Config.MasterCF
//	DIR/queue/            queue_directory (subdirectories made by "postfix check")
//	DIR/data/             data_directory, owned by the postfix user
//	DIR/maillog           maillog_file, written by the postlog service
//
// The generated main.cf follows what real Postfix 3.7 needs to run as a
// second instance without syslog, DNS or a chroot:
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
// Extra lines in Config.MainCF are appended, so a later setting overrides an
// earlier one as Postfix itself reads main.cf. The generated master.cf runs
// every service with the chroot column "n", smtpd on 127.0.0.1:PORT with a
// free PORT, and the postlog unix-dgram service; Config.MasterCF is appended.
// Before "postfix start" the instance is checked with "postfix -c DIR check",
// which creates the queue subdirectories.
//
// Postfix processes left as zombies after "postfix stop" (there is no init
// reaping them in a container) are harmless.
package postfixtest
