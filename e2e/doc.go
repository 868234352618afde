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
//     "deliver" answers the userdb lookups of the mapdrop processes Postfix
//     runs, so stopping it makes deliveries fail while Postfix still accepts
//     mail;
//   - one Postfix instance configured as in Postfix's MAILDROP_README direct
//     delivery example, plus what the indirect ways through local(8) need.
//
// The Postfix configuration, in short:
//
//	recipient_delimiter     = +
//	virtual_mailbox_domains = socketmap:unix:MAPS:virtual_mailbox_domains
//	virtual_mailbox_maps    = socketmap:unix:MAPS:virtual_mailbox
//	virtual_alias_maps      = socketmap:unix:MAPS:virtual_alias
//	virtual_transport       = mapdrop
//	mapdrop_destination_recipient_limit = 1
//	transport_maps          = texthash:...  (user3@someother.domain → mapdropx:)
//	mydestination           = local.test
//	mailbox_command         = MAPDROP -s unix:DELIVER -d ${USER}
//	mailbox_command_maps    = cdb:EXPORT/mailbox_command
//
//	mapdrop  unix - n n - - pipe flags=ODRhu user=mdtest-pipe
//	  argv=MAPDROP -s unix:DELIVER -d ${recipient}
//	mapdropx unix - n n - - pipe flags=ODRhu user=mdtest-pipe
//	  argv=MAPDROP -s unix:DELIVER -d ${user}@${domain} ${extension} ${recipient} ${user} ${nexthop}
//	local2   unix - n n - - local -o mailbox_command_maps=socketmap:unix:MAPS:mailbox_command
//
// Local users have homes in the temp directory: mdtest-la gets
// mailbox_command, mdtest-lb the exported cdb map, mdtest-lc a ~/.forward
// with "|MAPDROP -s unix:DELIVER -d ${USER} fwd", and mdtest-ld is routed to
// local2, whose socketmap local(8) refuses for security-sensitive data.
//
// The test users (mdtest-pipe, mdtest-la ... mdtest-ld) are created once and
// left on the machine; their home directories are repointed at each run, so
// two runs of this package must not overlap.
package e2e
