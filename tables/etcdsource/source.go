// Package etcdsource serves maps from an etcd cluster (laid out as package
// etcdmaps says) into a store.Store, and keeps them current.
//
// # Following the cluster
//
// Start reads every key under the prefix at one revision R (a consistent
// snapshot, read in pages pinned to R) and installs every map whose pointer
// exists in one store.Apply at R. Run then watches the prefix from R+1.
// The events of one etcd revision (one transaction of a push, a pointer
// switch, one etcdctl put) are applied to the store as one Apply at that
// revision, so a lookup never sees part of a revision:
//
//   - an entry of a served version changes that one key of the served map
//     (store.Batch.Put/Delete: a path copy, not a rebuild);
//   - an entry of any other version goes into that version's tree, built in
//     memory as the push writes it, not served;
//   - a pointer that names a new version makes that version's tree the
//     whole map (store.Batch.SetMap); a deleted pointer removes the map
//     (INFO "etcd map removed", and OnRemove), as does a fresh snapshot
//     that no longer has its pointer.
//
// # Outages
//
// Every ProbeInterval a linearizable count of the pointers (it needs a
// quorum) checks that the cluster answers. When two in a row fail (each
// after ProbeTimeout), or the watch
// fails, the source logs once (WARN "etcd cluster unreachable"), reports
// connected=false through OnState, keeps serving what it has, and retries
// with exponential backoff (100 ms doubling up to MaxBackoff); when the
// cluster answers again it logs once (INFO "etcd reachable again") and
// watches from the last applied revision + 1. A watch whose start revision
// has been compacted away (WARN "watch revision compacted") and a pointer
// switch back to a version the source no longer has make it take a fresh
// snapshot and swap every map at once, as Start does.
//
// # Cache
//
// With CacheDir, the served maps are written to the cache (format in
// cache.go's comment: a manifest naming one file per map version, replaced
// atomically) after applied revisions: a writer goroutine always writes
// the newest applied state, so a burst of revisions costs one write. When
// the cluster does not answer at Start, the maps are served from the cache
// at its revision (ERROR "ETCD UNREACHABLE: SERVING MAPS FROM CACHE"), and
// Run takes a snapshot as soon as the cluster answers. With neither
// cluster nor cache, Start fails (a Temporary failure).
package etcdsource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/etcdmaps"
	"github.com/mapdrop/mapdrop/tables/store"
)

// Config says which cluster and prefix to follow.
type Config struct {
	Endpoints []string
	// TLS, if set, is the client's TLS configuration (https:// endpoints).
	TLS *tls.Config
	// Username and Password, if set, log in to etcd. The login needs the
	// cluster, so the client is made when the cluster first answers (see
	// Start), not by New.
	Username, Password string
	Prefix             string
	// CacheDir, if set, is where the served maps are cached (see the
	// package documentation). It must exist.
	CacheDir string
	// Matches overrides store.MatchForName for some maps.
	Matches map[string]store.Match
	// Reserved, if set, reports the names of maps that come from files:
	// such a map in etcd fails Start (a Permanent failure) and is ignored
	// (logged) when it appears later. (A map file that appears after Start
	// with the name of an etcd map cannot replace it: store.ReplaceTable
	// refuses to replace an incremental map.)
	Reserved func(name string) bool
	Logger   *slog.Logger
	// OnState, if set, is called whenever the connection state or the
	// applied revision changes, from one goroutine at a time.
	OnState func(connected bool, revision int64)
	// OnMap, if set, is called after a map is installed whole (from a
	// snapshot, a pointer switch or the cache), with its entries; calls
	// come from one goroutine at a time.
	OnMap func(name string, entries int)
	// OnEntries, if set, is called after keys of a served map were changed
	// in place (a single-key edit, an in-place push), with its new number
	// of entries; calls come from one goroutine at a time.
	OnEntries func(name string, entries int)
	// OnRemove, if set, is called after a served map was removed (its
	// pointer deleted, or missing from a fresh snapshot); calls come from
	// one goroutine at a time, the same as OnMap's.
	OnRemove func(name string)
	// OnResync, if set, is called after each fresh snapshot taken while
	// running (compaction, a version no longer known, reconnecting after a
	// start from the cache).
	OnResync func(revision int64)
	// StartTimeout bounds Start's wait for the cluster to answer before
	// it falls back to the cache (default 5s); a snapshot that has
	// started may take longer.
	StartTimeout time.Duration
	// ProbeInterval is the time between two probes (default 1s); a probe
	// fails after ProbeTimeout (default 2s).
	ProbeInterval, ProbeTimeout time.Duration
	// MaxBackoff bounds the time between reconnection attempts
	// (default 5s).
	MaxBackoff time.Duration
}

// Source follows the maps of one prefix of an etcd cluster into a store.
type Source struct {
	cfg    Config
	layout etcdmaps.Layout
	st     *store.Store
	log    *slog.Logger
	cli    *clientv3.Client // made by connect (Start, then Run)

	closeMu sync.Mutex
	closed  bool

	// Owned by Start, then Run.
	rev          int64
	ptrs         map[string]string                    // served map → version
	building     map[string]map[string]*store.TreeTxn // map → version → tree being written
	retired      map[string]map[string]bool           // versions that were served before
	ignored      map[string]bool                      // reserved names already logged
	needSnapshot bool
	connected    bool
	starting     bool

	revision  atomic.Int64
	isConn    atomic.Bool
	resyncs   atomic.Int64
	fromCache atomic.Bool

	cacheMu   sync.Mutex
	cacheJob  *cacheJob
	cacheWake chan struct{}
	cached    map[string]cachedMap // what the cache holds (cache writer only)
}

// cacheJob is the state to write to the cache.
type cacheJob struct {
	rev  int64
	maps map[string]cachedMap // file names are NAME.CHANGEDREV.map
}

// errResync asks for a fresh snapshot.
var errResync = errors.New("resync")

// New checks cfg and returns a source for st. It connects to nothing yet.
func New(cfg Config, st *store.Store) (*Source, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, failure.New(failure.Usage, "etcd: no endpoints")
	}
	if cfg.Prefix == "" {
		return nil, failure.New(failure.Usage, "etcd: empty prefix")
	}
	if cfg.CacheDir != "" {
		if fi, err := os.Stat(cfg.CacheDir); err != nil || !fi.IsDir() {
			return nil, failure.Perm("etcd cache %s: not a directory", cfg.CacheDir)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 5 * time.Second
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 2 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, failure.New(failure.Usage, "etcd: a user needs a password, and a password a user")
	}
	return &Source{
		cfg:       cfg,
		layout:    etcdmaps.NewLayout(cfg.Prefix),
		st:        st,
		log:       cfg.Logger,
		ptrs:      map[string]string{},
		building:  map[string]map[string]*store.TreeTxn{},
		retired:   map[string]map[string]bool{},
		ignored:   map[string]bool{},
		cacheWake: make(chan struct{}, 1),
		cached:    map[string]cachedMap{},
	}, nil
}

// connect makes the client unless it exists. With a login it waits for
// the cluster to answer the login, at most until ctx's deadline; without
// one it returns at once.
func (s *Source) connect(ctx context.Context) error {
	if s.cli != nil {
		return nil
	}
	cfg := clientv3.Config{
		Endpoints:            s.cfg.Endpoints,
		TLS:                  s.cfg.TLS,
		Username:             s.cfg.Username,
		Password:             s.cfg.Password,
		Logger:               zap.NewNop(),
		DialTimeout:          s.cfg.StartTimeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		MaxCallRecvMsgSize:   1 << 30,
	}
	if d, ok := ctx.Deadline(); ok {
		cfg.DialTimeout = max(time.Until(d), time.Millisecond)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		cli.Close()
		return errors.New("etcd source closed")
	}
	s.cli = cli
	return nil
}

// Close closes the connection to the cluster.
func (s *Source) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	s.closed = true
	if s.cli == nil {
		return nil
	}
	return s.cli.Close()
}

// Revision is the revision of the last applied snapshot or event.
func (s *Source) Revision() int64 { return s.revision.Load() }

// Connected reports whether the cluster answered the last probe.
func (s *Source) Connected() bool { return s.isConn.Load() }

// FromCache reports whether the maps come from the cache and the cluster
// has not answered since the start.
func (s *Source) FromCache() bool { return s.fromCache.Load() }

// Resyncs is the number of fresh snapshots taken while running.
func (s *Source) Resyncs() int64 { return s.resyncs.Load() }

// Maps returns the names of the maps the source serves now.
func (s *Source) Maps() []string {
	var names []string
	for _, n := range s.st.Names() {
		if ok, _ := s.st.Incremental(n); ok {
			names = append(names, n)
		}
	}
	return names
}

// Start loads every map from a snapshot of the cluster, or from the cache
// when the cluster does not answer within StartTimeout. It fails when it
// can do neither (Temporary), or when a map comes from both etcd and
// files (Permanent). Call it once, before Run.
func (s *Source) Start(ctx context.Context) error {
	s.starting = true
	defer func() { s.starting = false }()
	// StartTimeout bounds the wait for the cluster to answer, not the
	// snapshot, which takes seconds for millions of entries.
	pctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	err := s.connect(pctx)
	if err == nil {
		_, err = s.cli.Get(pctx, s.layout.PointerPrefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	}
	cancel()
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
		err = s.loadSnapshot(sctx)
		cancel()
	}
	if err == nil {
		s.setState(true)
		s.log.Info("etcd maps loaded", "revision", s.rev, "maps", len(s.ptrs), "endpoints", s.cfg.Endpoints)
		return nil
	}
	if failure.KindOf(err) == failure.Permanent {
		return err
	}
	if s.cfg.CacheDir == "" {
		return failure.Wrap(failure.Temporary, err, "etcd cluster %v unreachable and no -etcd-cache", s.cfg.Endpoints)
	}
	rev, maps, cerr := readCache(s.cfg.CacheDir, s.layout.Prefix())
	if cerr != nil {
		return failure.Wrap(failure.Temporary, err, "etcd cluster %v unreachable, and the cache is unusable (%v)", s.cfg.Endpoints, cerr)
	}
	var b store.Batch
	for _, name := range sortedNames(maps) {
		if s.cfg.Reserved != nil && s.cfg.Reserved(name) {
			return failure.Perm("map %s comes from both the tables files and etcd (cache %s)", name, s.cfg.CacheDir)
		}
		b.SetMap(name, s.match(name), maps[name].tree)
		s.ptrs[name] = maps[name].version
	}
	if err := s.st.Apply(rev, &b); err != nil {
		return err
	}
	for name, m := range maps {
		s.onMap(name, m.tree.Len())
	}
	s.rev = rev
	s.cacheMu.Lock()
	s.cached = maps
	s.cacheMu.Unlock()
	s.needSnapshot = true
	s.fromCache.Store(true)
	s.setState(false)
	s.log.Error("ETCD UNREACHABLE: SERVING MAPS FROM CACHE", "cache", s.cfg.CacheDir, "revision", rev, "maps", len(maps), "endpoints", s.cfg.Endpoints, "err", err)
	return nil
}

// Run follows the cluster until ctx is done, then returns nil.
func (s *Source) Run(ctx context.Context) error {
	if s.cfg.CacheDir != "" {
		go s.cacheWriter(ctx)
		s.queueCache()
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if s.needSnapshot {
			sctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
			err := s.loadSnapshot(sctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				s.disconnected(err, backoff)
				sleep(ctx, backoff)
				backoff = min(2*backoff, s.cfg.MaxBackoff)
				continue
			}
			s.needSnapshot = false
			s.fromCache.Store(false)
			s.resyncs.Add(1)
			s.log.Info("etcd snapshot taken: every map swapped", "revision", s.rev, "maps", len(s.ptrs))
			if s.cfg.OnResync != nil {
				s.cfg.OnResync(s.rev)
			}
			s.reconnected()
			backoff = 100 * time.Millisecond
		}
		err := s.follow(ctx, func() { backoff = 100 * time.Millisecond })
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, errResync):
			s.needSnapshot = true
		default:
			s.disconnected(err, backoff)
			sleep(ctx, backoff)
			backoff = min(2*backoff, s.cfg.MaxBackoff)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// disconnected logs the first failure of a run of them.
func (s *Source) disconnected(err error, retry time.Duration) {
	if s.connected {
		s.log.Warn("etcd cluster unreachable: serving the maps as of the last revision; reconnecting", "revision", s.rev, "err", err)
	} else {
		s.log.Debug("etcd still unreachable", "revision", s.rev, "retry", retry, "err", err)
	}
	s.setState(false)
}

// reconnected logs the end of an outage.
func (s *Source) reconnected() {
	if !s.connected {
		s.log.Info("etcd reachable again", "revision", s.rev)
	}
	s.setState(true)
}

func (s *Source) setState(connected bool) {
	changed := s.connected != connected || s.revision.Load() != s.rev
	s.connected = connected
	s.isConn.Store(connected)
	s.revision.Store(s.rev)
	if changed && s.cfg.OnState != nil {
		s.cfg.OnState(connected, s.rev)
	}
}

func (s *Source) match(name string) store.Match {
	if m, ok := s.cfg.Matches[name]; ok {
		return m
	}
	return store.MatchForName(name)
}

// reserved reports (and logs once) a map name that comes from files.
func (s *Source) reserved(name string) bool {
	if s.cfg.Reserved == nil || !s.cfg.Reserved(name) {
		return false
	}
	if !s.ignored[name] {
		s.ignored[name] = true
		s.log.Error("etcd map ignored: a tables file gives a map of the same name", "map", name)
	}
	return true
}

// snapshotPage is the number of keys read per request of a snapshot.
// etcd 3.4 collects every key of a range before it applies the limit, so a
// page costs as much as the rest of the range: large pages, few requests.
const snapshotPage = 50000

// snapshotTimeout bounds reading one snapshot.
const snapshotTimeout = 10 * time.Minute

// loadSnapshot reads the whole prefix at one revision and swaps every map.
func (s *Source) loadSnapshot(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	err := s.connect(cctx)
	cancel()
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "etcd snapshot")
	}
	ptrs := map[string]string{}
	building := map[string]map[string]*store.TreeTxn{}
	prefix := s.layout.Prefix()
	end := clientv3.GetPrefixRangeEnd(prefix)
	start := prefix
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(snapshotPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, start, opts...)
		if err != nil {
			return failure.Wrap(failure.Temporary, err, "etcd snapshot")
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			kind, name, ver, k := s.layout.Parse(string(kv.Key))
			switch kind {
			case etcdmaps.PointerKey:
				ptrs[name] = string(kv.Value)
			case etcdmaps.EntryKey:
				vs := building[name]
				if vs == nil {
					vs = map[string]*store.TreeTxn{}
					building[name] = vs
				}
				x := vs[ver]
				if x == nil {
					x = store.NewTree().Txn()
					vs[ver] = x
				}
				x.Put(k, string(kv.Value))
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	var b store.Batch
	for _, name := range sortedNames(ptrs) {
		if s.cfg.Reserved != nil && s.cfg.Reserved(name) {
			if s.starting {
				return failure.Perm("map %s comes from both the tables files and etcd (%s)", name, s.layout.Pointer(name))
			}
			s.reserved(name)
			delete(ptrs, name)
			continue
		}
		tree := store.NewTree()
		if x := building[name][ptrs[name]]; x != nil {
			tree = x.Commit()
			delete(building[name], ptrs[name])
		}
		b.SetMap(name, s.match(name), tree)
	}
	var removed []string
	for _, name := range sortedNames(s.ptrs) {
		if _, ok := ptrs[name]; !ok {
			b.RemoveMap(name)
			removed = append(removed, name)
		}
	}
	if err := s.st.Apply(rev, &b); err != nil {
		return err
	}
	s.rev, s.ptrs, s.building, s.retired = rev, ptrs, building, map[string]map[string]bool{}
	for _, name := range removed {
		s.removed(name)
	}
	for name := range ptrs {
		if tree, _, _, ok := s.st.Tree(name); ok {
			s.onMap(name, tree.Len())
		}
	}
	s.queueCache()
	// Reading a big snapshot leaves as much garbage as the maps it built
	// (the pages of the responses, the replaced trees): give it back now
	// rather than run at twice the memory until the scavenger does.
	debug.FreeOSMemory()
	return nil
}

// follow watches from s.rev+1 and applies every revision, until the watch
// or a probe fails (an error), or a resync is needed (errResync). ok is
// called whenever the cluster answers.
func (s *Source) follow(ctx context.Context, ok func()) error {
	wctx, cancel := context.WithCancelCause(clientv3.WithRequireLeader(ctx))
	defer cancel(nil)
	// The probe.
	go func() {
		t := time.NewTicker(s.cfg.ProbeInterval)
		defer t.Stop()
		failed := 0
		for {
			pctx, pcancel := context.WithTimeout(wctx, s.cfg.ProbeTimeout)
			_, err := s.cli.Get(pctx, s.layout.PointerPrefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
			pcancel()
			if wctx.Err() != nil {
				return
			}
			// One failure may be a request sent to a member that just
			// died, before the client moved on: two in a row are an outage.
			if err == nil {
				failed = 0
			} else {
				failed++
			}
			if failed >= 2 {
				cancel(fmt.Errorf("probe: %w", err))
				return
			}
			if failed == 1 {
				continue // at once
			}
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	// The first probe must answer before the source says it is connected.
	pctx, pcancel := context.WithTimeout(wctx, s.cfg.ProbeTimeout)
	_, err := s.cli.Get(pctx, s.layout.PointerPrefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	pcancel()
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	s.reconnected()
	ok()
	wch := s.cli.Watch(wctx, s.layout.Prefix(), clientv3.WithPrefix(), clientv3.WithRev(s.rev+1))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			s.log.Warn("watch revision compacted: taking a fresh snapshot", "revision", s.rev, "compacted", resp.CompactRevision)
			return errResync
		}
		if err := resp.Err(); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		evs := resp.Events
		for len(evs) > 0 {
			rev := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == rev {
				n++
			}
			if err := s.apply(rev, evs[:n]); err != nil {
				return err
			}
			evs = evs[n:]
		}
		ok()
	}
	if err := context.Cause(wctx); err != nil && ctx.Err() == nil {
		return err
	}
	return errors.New("watch closed")
}

// apply applies the events of one revision as one store transaction.
func (s *Source) apply(rev int64, evs []*clientv3.Event) error {
	var b store.Batch
	switched := map[string]int{} // maps installed whole: their entries
	inPlace := map[string]bool{} // maps whose keys changed in place
	removed := map[string]bool{} // maps no longer served
	for _, ev := range evs {
		kind, name, ver, k := s.layout.Parse(string(ev.Kv.Key))
		del := ev.Type == mvccpb.DELETE
		switch kind {
		case etcdmaps.PointerKey:
			if s.reserved(name) {
				continue
			}
			old, served := s.ptrs[name]
			if del {
				delete(switched, name)
				delete(inPlace, name)
				if served {
					b.RemoveMap(name)
					delete(s.ptrs, name)
					s.retire(name, old)
					removed[name] = true
				}
				continue
			}
			delete(removed, name)
			ver := string(ev.Kv.Value)
			if served && old == ver {
				continue
			}
			tree := store.NewTree()
			if x := s.building[name][ver]; x != nil {
				tree = x.Commit()
				delete(s.building[name], ver)
			} else if s.retired[name][ver] {
				s.log.Warn("etcd map switched back to a version no longer held: taking a fresh snapshot", "map", name, "version", ver)
				return errResync
			}
			if served {
				s.retire(name, old)
			}
			s.ptrs[name] = ver
			b.SetMap(name, s.match(name), tree)
			switched[name] = tree.Len()
			delete(inPlace, name)
		case etcdmaps.EntryKey:
			if cur, served := s.ptrs[name]; served && cur == ver {
				if del {
					b.Delete(name, k)
				} else {
					b.Put(name, k, string(ev.Kv.Value))
				}
				if _, whole := switched[name]; !whole {
					inPlace[name] = true
				}
				continue
			}
			if s.retired[name][ver] {
				continue
			}
			vs := s.building[name]
			x := vs[ver]
			if del {
				if x != nil {
					x.Delete(k)
				}
				continue
			}
			if vs == nil {
				vs = map[string]*store.TreeTxn{}
				s.building[name] = vs
			}
			if x == nil {
				x = store.NewTree().Txn()
				vs[ver] = x
			}
			x.Put(k, string(ev.Kv.Value))
		}
	}
	if err := s.st.Apply(rev, &b); err != nil {
		s.log.Error("cannot apply an etcd revision: taking a fresh snapshot", "revision", rev, "err", err)
		return errResync
	}
	s.rev = rev
	for name := range removed {
		s.removed(name)
	}
	for name, n := range switched {
		s.log.Info("etcd map switched", "map", name, "version", s.ptrs[name], "entries", n, "revision", rev)
		s.onMap(name, n)
	}
	if s.cfg.OnEntries != nil {
		for name := range inPlace {
			if tree, _, _, ok := s.st.Tree(name); ok {
				s.cfg.OnEntries(name, tree.Len())
			}
		}
	}
	s.setState(true)
	if b.Len() > 0 {
		s.queueCache()
	}
	return nil
}

func (s *Source) onMap(name string, entries int) {
	if s.cfg.OnMap != nil {
		s.cfg.OnMap(name, entries)
	}
}

// removed logs and reports a map that the store no longer serves.
func (s *Source) removed(name string) {
	s.log.Info("etcd map removed", "map", name, "revision", s.rev)
	if s.cfg.OnRemove != nil {
		s.cfg.OnRemove(name)
	}
}

// retire forgets the tree of a version that is no longer served.
func (s *Source) retire(name, ver string) {
	if s.retired[name] == nil {
		s.retired[name] = map[string]bool{}
	}
	s.retired[name][ver] = true
	delete(s.building[name], ver)
}

// queueCache hands the served state to the cache writer.
func (s *Source) queueCache() {
	if s.cfg.CacheDir == "" {
		return
	}
	job := &cacheJob{rev: s.rev, maps: map[string]cachedMap{}}
	for name, ver := range s.ptrs {
		tree, _, _, ok := s.st.Tree(name)
		if !ok {
			continue
		}
		_, changed := s.st.Incremental(name)
		job.maps[name] = cachedMap{version: ver, file: fmt.Sprintf("%s.%d.map", name, changed), tree: tree}
	}
	s.cacheMu.Lock()
	s.cacheJob = job
	s.cacheMu.Unlock()
	select {
	case s.cacheWake <- struct{}{}:
	default:
	}
}

// cacheWriter writes the newest queued state until ctx is done.
func (s *Source) cacheWriter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.cacheWake:
		}
		s.cacheMu.Lock()
		job := s.cacheJob
		s.cacheJob = nil
		s.cacheMu.Unlock()
		if job == nil {
			continue
		}
		if err := s.writeCache(job); err != nil {
			s.log.Error("cannot write the etcd cache", "dir", s.cfg.CacheDir, "revision", job.rev, "err", err)
		}
	}
}

// writeCache writes the maps of job that the cache does not hold yet,
// then the manifest, then removes what it no longer names.
func (s *Source) writeCache(job *cacheJob) error {
	s.cacheMu.Lock()
	have := s.cached
	s.cacheMu.Unlock()
	for _, name := range sortedNames(job.maps) {
		m := job.maps[name]
		if have[name].file == m.file {
			if _, err := os.Stat(s.cfg.CacheDir + "/" + m.file); err == nil {
				continue
			}
		}
		if err := writeMapFile(s.cfg.CacheDir, m.file, m.tree); err != nil {
			return err
		}
	}
	if err := writeManifest(s.cfg.CacheDir, s.layout.Prefix(), job.rev, job.maps); err != nil {
		return err
	}
	s.cacheMu.Lock()
	s.cached = job.maps
	s.cacheMu.Unlock()
	removeUnreferenced(s.cfg.CacheDir, job.maps)
	s.log.Debug("etcd cache written", "revision", job.rev, "maps", len(job.maps))
	return nil
}
