package etcdmaps

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/reload"
)

// Map is one map file read for a push.
type Map struct {
	Name    string
	Path    string
	Entries []mapfile.Entry // file order, keys folded and unique
}

// Read reads the maps named by paths, as "mapdropd check" does: a file is
// the map named by its base name, a directory holds a map per map file (as
// a tables directory). errs has every error, each "FILE:LINE: REASON" or
// "FILE: REASON"; when it is not empty, maps is nil. warnings are the
// duplicate keys, which do not stop a push.
func Read(paths ...string) (maps []Map, errs, warnings []error) {
	seen := map[string]string{}
	var nameErrs []error
	// The entries pushed are those of the text that was checked.
	opts := reload.CheckOptions{OnMap: func(name, path string, entries []mapfile.Entry) {
		if !reload.IsMapFileName(name) {
			nameErrs = append(nameErrs, failure.New(failure.Invalid, "%s: %q is not a map name ([a-z0-9_.-]+, not a backup or editor file)", path, name))
			return
		}
		if other, dup := seen[name]; dup {
			nameErrs = append(nameErrs, failure.New(failure.Invalid, "%s: map %s is also given by %s", path, name, other))
			return
		}
		seen[name] = path
		maps = append(maps, Map{Name: name, Path: path, Entries: entries})
	}}
	_, _, errs, warnings = reload.CheckWith(opts, paths...)
	if len(errs) == 0 {
		errs = nameErrs
	}
	if len(errs) > 0 {
		return nil, errs, warnings
	}
	sort.Slice(maps, func(i, j int) bool { return maps[i].Name < maps[j].Name })
	return maps, nil, warnings
}

// Result is what Push did to one map.
type Result struct {
	Name     string
	Version  string // the version now served
	Old      string // the version served before, "" for a new map
	Entries  int
	Revision int64 // the etcd revision at which the new contents became the served ones
	// InPlace says the served version was changed in place (Version ==
	// Old), Changed keys put or deleted in one transaction; with InPlace
	// and Changed 0 the map was already as pushed, and Revision is the
	// revision it was read at.
	InPlace bool
	Changed int
}

// ErrConflict is the error of a push that lost against another push of the
// same map: nothing it wrote is served. It is a Temporary failure: pushing
// again is safe.
var ErrConflict = failure.Temp("another push changed a map's pointer while this push was writing: nothing switched, push again")

// PushOptions tune Push.
type PushOptions struct {
	// InFlight is the number of write transactions sent at once
	// (default 32).
	InFlight int
	// BeforeSwitch, if set, is called after every new version is written
	// and before the pointers switch (tests make a conflict with it).
	BeforeSwitch func()
	// Full writes a new version even when the differences would fit in
	// one transaction.
	Full bool
}

// Push writes maps into etcd under layout l, as the package documentation
// says, and returns what it did to each map, all switched at one revision.
// Nothing is switched when any write fails, and then the results are nil;
// results come with an error only when the maps were switched and
// deleting their old versions failed afterwards. An entry too big for one
// etcd request is refused before anything is written.
func Push(ctx context.Context, cli *clientv3.Client, l Layout, maps []Map, opt PushOptions) ([]Result, error) {
	if opt.InFlight <= 0 {
		opt.InFlight = 32
	}
	for _, m := range maps {
		if !reload.ValidName(m.Name) {
			return nil, failure.New(failure.Invalid, "%s: %q is not a map name", m.Path, m.Name)
		}
		prefix := len(l.VersionPrefix(m.Name, newVersion()))
		for _, e := range m.Entries {
			if n := prefix + len(e.Key) + len(e.Value); n > MaxTxnBytes {
				return nil, failure.New(failure.Invalid, "%s:%d: entry of %d bytes is too big for etcd (at most %d)", m.Path, e.Line, n, MaxTxnBytes)
			}
		}
	}
	results := make([]Result, len(maps))
	modRevs := make([]int64, len(maps))
	for i, m := range maps {
		resp, err := cli.Get(ctx, l.Pointer(m.Name))
		if err != nil {
			return nil, unavailable(err)
		}
		results[i] = Result{Name: m.Name, Version: newVersion(), Entries: len(m.Entries)}
		if len(resp.Kvs) > 0 {
			results[i].Old = string(resp.Kvs[0].Value)
			modRevs[i] = resp.Kvs[0].ModRevision
		}
	}
	if !opt.Full {
		done, err := pushInPlace(ctx, cli, l, maps, results, modRevs)
		if err != nil {
			return nil, err // nothing changed: no results to report
		}
		if done {
			return results, nil
		}
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, r := range results {
			cli.Delete(dctx, l.VersionPrefix(r.Name, r.Version), clientv3.WithPrefix())
		}
	}
	for i, m := range maps {
		if err := writeVersion(ctx, cli, l, m, results[i].Version, opt.InFlight); err != nil {
			cleanup()
			return nil, err
		}
	}
	if opt.BeforeSwitch != nil {
		opt.BeforeSwitch()
	}
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	for i, r := range results {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(l.Pointer(r.Name)), "=", modRevs[i]))
		puts = append(puts, clientv3.OpPut(l.Pointer(r.Name), r.Version))
	}
	resp, err := cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	if err != nil {
		// The switch may or may not have happened: leave the new versions.
		return nil, unavailable(err)
	}
	if !resp.Succeeded {
		cleanup()
		return nil, ErrConflict
	}
	for i := range results {
		results[i].Revision = resp.Header.Revision
	}
	// The old versions are no longer served: delete them, and leftovers of
	// pushes that died. A failure here leaves garbage, not a wrong map.
	for _, r := range results {
		if r.Old != "" && r.Old != r.Version {
			if _, err := cli.Delete(ctx, l.VersionPrefix(r.Name, r.Old), clientv3.WithPrefix()); err != nil {
				return results, unavailable(err)
			}
		}
		if err := deleteLeftovers(ctx, cli, l, r.Name, r.Version, time.Hour); err != nil {
			return results, err
		}
	}
	return results, nil
}

// pushInPlace changes the served versions of maps in place, in one
// transaction, when every map exists and all their differences (keys to
// put or delete) fit in one transaction; done is false when they do not,
// and nothing was written. The transaction compares every pointer with the
// ModRevision read before, and every key of each served version with the
// revision its contents were read at: a concurrent push or edit makes it
// fail with ErrConflict.
func pushInPlace(ctx context.Context, cli *clientv3.Client, l Layout, maps []Map, results []Result, modRevs []int64) (done bool, err error) {
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	size := 0
	changed := make([]int, len(maps))
	var readRev int64
	for i, m := range maps {
		if results[i].Old == "" {
			return false, nil
		}
		vp := l.VersionPrefix(m.Name, results[i].Old)
		cur, rev, ok, err := readVersion(ctx, cli, vp, len(m.Entries)+MaxOpsPerTxn)
		if err != nil || !ok {
			return false, err
		}
		readRev = max(readRev, rev)
		before := len(ops)
		for _, e := range m.Entries {
			if v, ok := cur[e.Key]; !ok || v != e.Value {
				ops = append(ops, clientv3.OpPut(vp+e.Key, e.Value))
				size += len(vp) + len(e.Key) + len(e.Value)
			}
			delete(cur, e.Key)
			if len(ops) > MaxOpsPerTxn || size > MaxTxnBytes {
				return false, nil
			}
		}
		for k := range cur {
			ops = append(ops, clientv3.OpDelete(vp+k))
			size += len(vp) + len(k)
		}
		if len(ops) > MaxOpsPerTxn || size > MaxTxnBytes {
			return false, nil
		}
		changed[i] = len(ops) - before
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(l.Pointer(m.Name)), "=", modRevs[i]),
			clientv3.Compare(clientv3.ModRevision(vp), "<", rev+1).WithPrefix())
	}
	for i := range results {
		results[i].Version, results[i].InPlace, results[i].Changed, results[i].Revision = results[i].Old, true, changed[i], readRev
	}
	if len(ops) == 0 {
		return true, nil
	}
	resp, err := cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return true, unavailable(err)
	}
	if !resp.Succeeded {
		return true, ErrConflict
	}
	for i := range results {
		results[i].Revision = resp.Header.Revision
	}
	return true, nil
}

// readPage is the number of keys read per request. etcd 3.4 collects
// every key of a range before it applies the limit, so a page costs as much
// as the rest of the range: large pages, few requests (20 for a million
// keys).
const readPage = 50000

// readVersion reads the entries under prefix vp at one revision. ok is
// false (and the map incomplete) when there are more than limit.
func readVersion(ctx context.Context, cli *clientv3.Client, vp string, limit int) (entries map[string]string, rev int64, ok bool, err error) {
	entries = map[string]string{}
	end := clientv3.GetPrefixRangeEnd(vp)
	start := vp
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(readPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := cli.Get(ctx, start, opts...)
		if err != nil {
			return nil, 0, false, unavailable(err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			entries[string(kv.Key[len(vp):])] = string(kv.Value)
		}
		if len(entries) > limit {
			return nil, rev, false, nil
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return entries, rev, true, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// writeVersion writes the entries of m under version ver, in transactions
// of at most MaxOpsPerTxn puts and MaxTxnBytes bytes, inFlight at once.
func writeVersion(ctx context.Context, cli *clientv3.Client, l Layout, m Map, ver string, inFlight int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []clientv3.Op)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for w := 0; w < inFlight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ops := range batches {
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	var ops []clientv3.Op
	size := 0
	send := func() bool {
		if len(ops) == 0 {
			return true
		}
		select {
		case batches <- ops:
		case <-ctx.Done():
			return false
		}
		ops, size = nil, 0
		return true
	}
	prefix := l.VersionPrefix(m.Name, ver)
	for _, e := range m.Entries {
		n := len(prefix) + len(e.Key) + len(e.Value)
		if len(ops) == MaxOpsPerTxn || size+n > MaxTxnBytes {
			if !send() {
				break
			}
		}
		ops = append(ops, clientv3.OpPut(prefix+e.Key, e.Value))
		size += n
	}
	send()
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return unavailable(fmt.Errorf("map %s: writing version %s: %w", m.Name, ver, firstErr))
	}
	return ctx.Err()
}

// deleteLeftovers deletes the versions of map name other than keep that
// were made more than age ago (a version id starts with its time).
func deleteLeftovers(ctx context.Context, cli *clientv3.Client, l Layout, name, keep string, age time.Duration) error {
	mp := l.MapPrefix(name)
	end := prefixEnd(mp)
	start := mp
	for {
		resp, err := cli.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(1), clientv3.WithKeysOnly())
		if err != nil {
			return unavailable(err)
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		_, _, ver, _ := l.Parse(string(resp.Kvs[0].Key))
		if ver == "" {
			return nil
		}
		vp := l.VersionPrefix(name, ver)
		if t, ok := versionTime(ver); ver != keep && ok && time.Since(t) > age {
			if _, err := cli.Delete(ctx, vp, clientv3.WithPrefix()); err != nil {
				return unavailable(err)
			}
		}
		start = prefixEnd(vp)
	}
}

// newVersion returns a new version id: the time in nanoseconds, 16 hex
// digits, then 8 random hex digits.
func newVersion() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%016x%08x", time.Now().UnixNano(), binary.BigEndian.Uint32(b[:]))
}

// versionTime is the time a version id was made.
func versionTime(ver string) (time.Time, bool) {
	if len(ver) < 16 {
		return time.Time{}, false
	}
	n, err := strconv.ParseUint(ver[:16], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(n)), true
}

// unavailable wraps an etcd client error as a Temporary failure.
func unavailable(err error) error {
	return failure.Wrap(failure.Temporary, err, "etcd")
}
