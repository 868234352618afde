package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/metrics"
	"github.com/mapdrop/mapdrop/tables/etcdsource"
	"github.com/mapdrop/mapdrop/tables/reload"
	"github.com/mapdrop/mapdrop/tables/store"
)

// etcdFlags are serve's flags for maps from etcd.
type etcdFlags struct {
	endpoints    string
	prefix       string
	cache        string
	startTimeout time.Duration
	sec          etcdSecurity
	client       clientv3.Config // by prepare
}

func (ef *etcdFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&ef.endpoints, "etcd", "", "also serve the maps pushed to the etcd cluster at these comma-separated client `URLS` (mapdropd push)")
	fs.StringVar(&ef.prefix, "etcd-prefix", defaultEtcdPrefix, "etcd key `PREFIX` of the maps")
	fs.StringVar(&ef.cache, "etcd-cache", "", "keep a copy of the etcd maps in `DIR`, served at startup when the cluster is down")
	fs.DurationVar(&ef.startTimeout, "etcd-start-timeout", 5*time.Second, "at startup, wait this long, `D`, for the etcd cluster before serving from -etcd-cache")
	ef.sec.register(fs)
}

// prepare checks the flags that secure the connection to etcd and reads
// their files (see etcdSecurity), before serve starts anything.
func (ef *etcdFlags) prepare(log *slog.Logger) error {
	if !ef.enabled() {
		if ef.sec.given() {
			return failure.New(failure.Usage, "-etcd-cacert, -etcd-cert, -etcd-key, -etcd-user and -etcd-password-file need -etcd")
		}
		return nil
	}
	var err error
	ef.client, err = ef.sec.config(splitList(ef.endpoints), func(w string) { log.Warn(w) })
	return err
}

// enabled reports whether -etcd was given.
func (ef *etcdFlags) enabled() bool { return ef.endpoints != "" }

// startEtcd loads the etcd maps into st (from the cluster or the cache)
// and returns the source, which the caller runs. A map name that the files
// give too is refused (Permanent: exit 78). rl, if not nil, is the
// reloader of the table files: a file that appeared at runtime with an
// etcd map's name (refused by the store while etcd serves it) is loaded
// when the etcd map is removed.
func (ef *etcdFlags) startEtcd(st *store.Store, cfg reload.Config, rl *reload.Reloader, met *metrics.Metrics, log *slog.Logger) (*etcdsource.Source, error) {
	files := reload.Names(cfg)
	scfg := etcdsource.Config{
		Endpoints:    ef.client.Endpoints,
		TLS:          ef.client.TLS,
		Username:     ef.client.Username,
		Password:     ef.client.Password,
		Prefix:       ef.prefix,
		CacheDir:     ef.cache,
		Matches:      cfg.Matches,
		Reserved:     func(name string) bool { return files[name] },
		Logger:       log.With("source", "etcd"),
		StartTimeout: ef.startTimeout,
	}
	if met != nil {
		met.EnableSource()
		scfg.OnState = met.SourceState
		scfg.OnResync = func(int64) { met.SourceResync() }
		// Lookups of a map count under its name only once the metrics
		// know it; a switch counts as a successful load.
		scfg.OnMap = func(name string, entries int) { met.Loaded(name, entries, nil) }
		scfg.OnEntries = met.Entries
	}
	scfg.OnRemove = func(name string) {
		if met != nil {
			// A map no longer served leaves /metrics. (A removed map
			// file keeps serving its last good table, and its series.)
			met.Removed(name)
		}
		if rl != nil {
			rl.LoadName(name)
		}
	}
	src, err := etcdsource.New(scfg, st)
	if err != nil {
		return nil, err
	}
	if err := src.Start(context.Background()); err != nil {
		src.Close()
		if rerr := etcdRefusal(ef.client, err); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	if src.FromCache() {
		// Why the cluster did not answer, when it is a refusal.
		if rerr := tlsRefusal(ef.client); rerr != nil {
			log.Error("etcd refuses mapdropd: serving from the cache until this is fixed", "err", rerr)
		}
	}
	return src, nil
}

// etcdExplain is the explanation's line about the etcd revision that
// answers, or "" for a map from a file.
func etcdExplain(x store.Explanation) string {
	if !x.Incremental {
		return ""
	}
	return fmt.Sprintf("%s %d (map last changed at revision %d)\n", etcdRevisionLine, x.Revision, x.Changed)
}

// etcdRevisionLine starts the explanation line that names the etcd
// revision; "mapdropd query" looks for it.
const etcdRevisionLine = "source: etcd revision"

// revisionOf reads the etcd revision from an explanation text: 0 when the
// map does not come from etcd.
func revisionOf(text string) int64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, etcdRevisionLine+" "); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return 0
}

// etcdStatus is the part of systemd's STATUS= about etcd.
func etcdStatus(src *etcdsource.Source) string {
	if src == nil {
		return ""
	}
	state := "connected"
	switch {
	case src.FromCache():
		state = "SERVING FROM CACHE"
	case !src.Connected():
		state = "unreachable"
	}
	return fmt.Sprintf("; etcd %s at revision %d", state, src.Revision())
}
