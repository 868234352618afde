package store

import (
	"strings"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/address"
	"github.com/mapdrop/mapdrop/format/key"
)

// Step is one of the lookup steps of the package documentation.
type Step int

// The lookup steps, in the order they are tried.
const (
	StepFull             Step = 1 // the key as given (folded)
	StepWithoutExtension Step = 2 // the address without its extension
	StepDomain           Step = 3 // the @domain catch-all
)

// String describes the step in a few words.
func (s Step) String() string {
	switch s {
	case StepFull:
		return "full key"
	case StepWithoutExtension:
		return "without extension"
	case StepDomain:
		return "@domain catch-all"
	}
	return "step?"
}

// Try is one key tried by a lookup.
type Try struct {
	Step Step
	Key  string // folded, as looked up
	Hit  bool
}

// Explanation says how Lookup answers a key: the keys it tries, in order,
// up to the first that is in the map.
type Explanation struct {
	Map   string
	Match Match
	Tries []Try
	// Found says whether a key matched; then Value is the answer Lookup
	// gives, Matched is the key of the entry that gave it, and Extension is
	// the extension copied into Value (alias and canonical maps, step 2),
	// or "".
	Found     bool
	Value     string
	Matched   string
	Extension string
	// Incremental says the map came from Apply (etcd), not from a file;
	// then Revision is the source revision the whole store was at when it
	// answered (Store.Revision), and Changed the revision that last
	// changed this map.
	Incremental bool
	Revision    int64
	Changed     int64
}

// Explain tells how Lookup(name, k) finds its answer, trying the same keys
// in the same order. An unknown map is a Permanent failure, as for Lookup.
func (s *Store) Explain(name, k string) (Explanation, error) {
	x := Explanation{Map: name}
	vw := s.view.Load()
	t := vw.tables[name]
	if t == nil {
		return x, failure.Perm("unknown map %s", name)
	}
	x.Match = t.match
	if t.tree != nil {
		x.Incremental, x.Revision, x.Changed = true, vw.rev, t.rev
	}
	if k == "" {
		return x, nil
	}
	try := func(step Step, k string) bool {
		v, ok := t.get(k)
		x.Tries = append(x.Tries, Try{Step: step, Key: k, Hit: ok})
		if ok {
			x.Found, x.Value, x.Matched = true, v, k
		}
		return ok
	}
	k = key.Fold(k)
	if try(StepFull, k) || t.match != Address {
		return x, nil
	}
	local, domain := k, ""
	if at := strings.LastIndexByte(k, '@'); at >= 0 {
		local, domain = k[:at], k[at:]
	}
	if n := address.ExtensionAt(local, s.delims); n > 0 {
		if try(StepWithoutExtension, local[:n]+domain) {
			if ext := local[n:]; ext != "" && t.propagate {
				x.Value, x.Extension = addExtension(x.Value, ext), ext
			}
			return x, nil
		}
	}
	if local != "" && len(domain) > 1 {
		try(StepDomain, domain)
	}
	return x, nil
}
