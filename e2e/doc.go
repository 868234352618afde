// Package e2e tests mapdropd and mapdrop end to end, with a real Postfix
// delivering through them. It needs root and Postfix; without them the tests
// skip, or fail when env CI=true or MAPDROP_REQUIRE_POSTFIX=1.
//
// The tests build ./cmd/mapdropd and ./cmd/mapdrop once (testkit.Build) into
// a 0755 directory (or, with env MAPDROP_E2E_BINDIR=DIR, use DIR/mapdropd and
// DIR/mapdrop as they are). TestPostfix then sets up, once for all its
// subtests:
//
//   - a tables directory written from the shape of the repository's
//     testdata/ (virtual_mailbox_domains, virtual_mailbox, virtual_alias,
//     userdb, mailbox_command), with userdb homes under a temp directory and
//     the uid/gid of a dedicated pipe user;
//   - two "mapdropd serve" processes on those tables: "maps" answers
//     Postfix's own socketmap lookups and exports mailbox_command.cdb,
//     run with the README's "mapdropd serve" flags,
//     "deliver" answers the userdb lookups of the mapdrop processes Postfix
//     runs, so stopping it makes deliveries fail while Postfix still accepts
//     mail;
//   - one Postfix instance on Debian's stock master.cf (chroots as
//     shipped, see internal/postfixtest), configured with the README's own
//     blocks.
//
// README.md marks its configuration blocks with "<!-- e2e:NAME -->" lines;
// the tests read them from README.md and use them verbatim, replacing only
// /run/mapdrop/mapdropd.sock, the ports 10027 and 10028, /usr/local/bin,
// /var/lib/mapdrop, /etc/mapdrop/tables and user=vmail by the test's own
// (readmeSubst). TestREADMEConsistent requires every marked block to be
// used by a test, the map lines to be the same in every section, and no
// main.cf line naming a server to be left unmarked. The blocks:
//
//	serve                       the "mapdropd serve" command of the maps server
//	maps                        proxy:socketmap:unix: map lines (TestStockChroot, via direct-main.cf TestPostfix)
//	maps-chroot-fail            plain socketmap:unix:, its 451 reply and log line (TestStockChroot)
//	maps-inet, maps-tcp         the TCP alternatives (TestStockChroot)
//	direct-main.cf              virtual domains delivered by the mapdrop transport (TestPostfix)
//	direct-master.cf            the mapdrop pipe(8) service (TestPostfix)
//	direct-master.cf-extension  its second line in maildrop's form, as service mapdropx (TestPostfix)
//	local-mailbox_command       mailbox_command (TestPostfix)
//	local-mailbox_command_maps  the cdb export as mailbox_command_maps (TestPostfix)
//	mailbox_command-table       the table line, for users mdtest-lb and mdtest-ld (TestPostfix)
//	local-forward               ~/.forward of mdtest-lc (TestPostfix)
//
// Besides the README's lines, TestPostfix's main.cf has mydestination =
// local.test, a transport_maps sending user3@someother.domain to mapdropx
// and mdtest-ld to local2 (a local(8) asking a socketmap for
// mailbox_command_maps, which local(8) refuses), and MAPDROP_SERVER in
// import_environment/export_environment so that the mapdrop processes
// pipe(8) and local(8) run ask the "deliver" server.
//
// Local users with homes in the temp directory: mdtest-la gets
// mailbox_command, mdtest-lb the exported cdb map, mdtest-lc a ~/.forward.
// The commands run mapdrop from three directories (the build directory,
// bin-maps, bin-fwd: symlinks), so the maillog's "delivered to command:"
// tells which configuration ran.
//
// The test users (mdtest-pipe, mdtest-la ... mdtest-ld) are created once and
// left on the machine; their home directories are repointed at each run, so
// two runs of this package must not overlap (run them under
// flock /tmp/mapdrop-postfix.lock).
package e2e
