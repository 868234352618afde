// Package doc holds the man pages mapdropd(8) and mapdrop(8), roff files
// generated from the binaries' own help text so that they cannot drift
// from it. Regenerate them after changing a usage message or a flag:
//
//	go generate ./doc
//
// which builds mapdropd and mapdrop and runs doc/gen; a test regenerates
// them and fails when the committed pages differ.
//
// # The help text the generator reads
//
// "PROGRAM -h" (and "mapdropd COMMAND -h") print, in this order and each
// optional:
//
//   - a first line "NAME - WHAT IT IS", the man page's NAME line;
//   - a line "usage: SYNOPSIS", more synopsis lines indented by spaces;
//   - paragraphs: lines of text separated by blank lines;
//   - sections: a line "title:" (lower case letters and spaces), then
//     items, each starting on a line indented by exactly two spaces with
//     its tag ("-flag ARG", "64", "/run/x"), its text after a tab on the
//     same line or on the following lines indented by four spaces and a tab
//     (the layout package flag's PrintDefaults uses); paragraphs may follow
//     the items.
//
// A section "commands:" lists subcommands, each item's first word a command
// whose own "-h" the generator runs; "flags:" becomes OPTIONS (or the
// flags of a command), "see also:" the SEE ALSO list of NAME(SECTION) items,
// any other title the man page section of that name in capitals.
package doc

//go:generate go run ./gen
