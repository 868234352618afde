// Package etcdmaps stores mapdrop's maps in an etcd cluster, and pushes map
// files into it so that a pushed map replaces the old one atomically.
//
// # Layout
//
// Under a prefix P (any string; a "/" is added when it does not end in
// one), with NAME a map name ([a-z0-9_.-]+, as a file in a tables
// directory) and VERSION a push's version id ([0-9a-f]+, no "/"):
//
//	P/ptr/NAME                 → VERSION, the version that is served
//	P/v/NAME/VERSION/KEY       → VALUE, one entry of that version
//
// KEY is folded with key.Fold (as mapfile parses it) and may contain any
// byte, "/" included: it is everything after the fourth "/"-separated field
// that follows P. A map is served when P/ptr/NAME exists and names a
// version; its contents are then exactly the keys under P/v/NAME/VERSION/
// at the same revision. Versions that no pointer names are not served: they
// are a push in progress, or left over by a push that died (Push deletes
// leftovers more than an hour old). A key under the served version may be
// changed directly (etcdctl put P/v/NAME/VERSION/KEY VALUE): servers apply
// it as a single-key change.
//
// # Push
//
// Push parses every file first with the strict parser (mapfile, and
// userdb's value rules for a map named userdb); any error and nothing is
// written. When every pushed map exists and all their differences from the
// served versions (keys to put or delete) fit in one transaction, Push
// applies them to the served versions in one transaction, which compares
// each pointer's ModRevision and the ModRevision of every key of the served
// versions with what it read (a conflict is ErrConflict): a single-key
// edit of a big map stays a single-key change, on etcd and on the servers.
// Otherwise, for each map, it writes a new version under a new VERSION
// in transactions of at most MaxOpsPerTxn puts and MaxTxnBytes bytes,
// several in flight; then it switches the pointers of all pushed maps in
// one transaction that compares each pointer's ModRevision with the one it
// read before writing (a concurrent push of the same map makes it fail:
// ErrConflict, and the new versions are deleted); then it deletes the
// versions the pointers named before. A reader that follows the pointer
// therefore sees the whole old map or the whole new one: the new keys are
// all written, at lower revisions, before the pointer names them, and the
// old keys are deleted only after it no longer does.
package etcdmaps

import (
	"strings"

	"github.com/mapdrop/mapdrop/tables/reload"
)

// MaxOpsPerTxn is the most operations Push puts in one etcd transaction
// (etcd's --max-txn-ops defaults to 128).
const MaxOpsPerTxn = 128

// MaxTxnBytes bounds the keys and values of one transaction, below etcd's
// default --max-request-bytes of 1.5 MiB.
const MaxTxnBytes = 1 << 20

// Layout names the keys of maps under one prefix.
type Layout struct {
	prefix string // ends in "/"
}

// NewLayout returns the layout under prefix p.
func NewLayout(p string) Layout {
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return Layout{prefix: p}
}

// Prefix is the layout's prefix, ending in "/".
func (l Layout) Prefix() string { return l.prefix }

// PointerPrefix is the prefix of every pointer key.
func (l Layout) PointerPrefix() string { return l.prefix + "ptr/" }

// Pointer is the pointer key of map name.
func (l Layout) Pointer(name string) string { return l.prefix + "ptr/" + name }

// MapPrefix is the prefix of every version of map name.
func (l Layout) MapPrefix(name string) string { return l.prefix + "v/" + name + "/" }

// VersionPrefix is the prefix of the entries of one version of map name.
func (l Layout) VersionPrefix(name, version string) string {
	return l.prefix + "v/" + name + "/" + version + "/"
}

// Entry is the key of entry k of a version of map name.
func (l Layout) Entry(name, version, k string) string {
	return l.VersionPrefix(name, version) + k
}

// Kind says what an etcd key is in the layout.
type Kind int

// The kinds of keys.
const (
	Other      Kind = iota // not part of the layout
	PointerKey             // P/ptr/NAME
	EntryKey               // P/v/NAME/VERSION/KEY
)

// Parse says what etcd key ek is: a pointer (with the map name), an entry
// (with map name, version and entry key), or Other.
func (l Layout) Parse(ek string) (kind Kind, name, version, k string) {
	rest, ok := strings.CutPrefix(ek, l.prefix)
	if !ok {
		return Other, "", "", ""
	}
	if n, ok := strings.CutPrefix(rest, "ptr/"); ok {
		if !reload.ValidName(n) {
			return Other, "", "", ""
		}
		return PointerKey, n, "", ""
	}
	rest, ok = strings.CutPrefix(rest, "v/")
	if !ok {
		return Other, "", "", ""
	}
	name, rest, ok = strings.Cut(rest, "/")
	if !ok || !reload.ValidName(name) {
		return Other, "", "", ""
	}
	version, k, ok = strings.Cut(rest, "/")
	if !ok || version == "" || k == "" {
		return Other, "", "", ""
	}
	return EntryKey, name, version, k
}

// prefixEnd is the end of the key range of every key starting with p.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}
