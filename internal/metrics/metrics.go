// Package metrics exports mapdropd's Prometheus metrics. It implements
// server.Observer for the lookup server and takes the reloader's load
// results, and serves them in the Prometheus text format on /metrics.
//
// Metrics (the names are a contract: dashboards and alerts use them):
//
//	mapdropd_lookups_total{map,result}       counter; result found|notfound|temp|perm,
//	                                         one per lookup answered, as the client was told
//	mapdropd_lookup_duration_seconds         histogram; server-side time per lookup,
//	                                         first byte of the request to reply written
//	mapdropd_reloads_total{map,result}       counter; result ok|error, one per load attempt
//	mapdropd_map_entries{map}                gauge; entries of the table being served
//	mapdropd_map_last_reload_success_timestamp_seconds{map}
//	                                         gauge; Unix time of the last successful load
//	mapdropd_connections_open                gauge; connections holding a slot
//	mapdropd_connections_rejected_total      counter; connections closed unserved
//	                                         because of the connection limits
//	mapdropd_connections_evicted_total       counter; idle or stalled connections
//	                                         closed to admit a new one
//	mapdropd_map_served_from_last_good{map}  gauge; 1 while the map is served from
//	                                         its last good copy (-state) because its
//	                                         file did not load at startup, else 0
//	mapdropd_map_load_held_back{map}         gauge; 1 while the newest file of the
//	                                         map is held back as cut short or emptied,
//	                                         waiting for "mapdropd confirm", else 0
//
// and, with maps from etcd (EnableSource):
//
//	mapdropd_source_connected                gauge; 1 while the etcd cluster answers, else 0
//	mapdropd_source_revision                 gauge; the etcd revision being served
//	mapdropd_source_resyncs_total            counter; fresh snapshots taken while running
//	                                         (watch revision compacted, reconnection after
//	                                         a start from the cache)
//
// plus the standard Go runtime (go_*) and process (process_*) collectors.
//
// The label map takes only the names of maps the reloader or the etcd
// source reported (loaded or failed to load) and not removed since; a
// lookup naming any other map counts under map="(unknown)", so a client
// cannot create label values. Every known map has all its label
// combinations from the start (at zero), so that rate() and absent-series
// alerts work before the first failure.
//
// A map that is no longer served (an etcd map whose pointer was deleted:
// Removed) loses every series labelled with its name, counters included,
// as Prometheus expects of a thing that is gone; if it comes back, its
// series start again from zero. A map whose file was removed is still
// served (from its last good table) and keeps its series.
//
// Counting a lookup does not allocate: the counters of each map are
// resolved once, when the map becomes known, and found through an
// immutable name → counters view behind an atomic pointer.
package metrics

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/tables/reload"
)

// UnknownMap is the map label of lookups in maps that mapdropd does not
// have.
const UnknownMap = "(unknown)"

// Metrics holds mapdropd's metrics in their own registry. Create it with
// New; it is safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	lookups      *prometheus.CounterVec
	duration     prometheus.Histogram
	reloads      *prometheus.CounterVec
	entries      *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec
	connsOpen    prometheus.Gauge
	connsReject  prometheus.Counter
	connsEvicted prometheus.Counter
	stale        *prometheus.GaugeVec
	held         *prometheus.GaugeVec

	src     atomic.Pointer[sourceMetrics] // set by EnableSource
	mu      sync.Mutex                    // serialises adding maps
	maps    atomic.Pointer[map[string]*mapCounters]
	unknown *mapCounters
}

// mapCounters are one map's lookup counters, indexed by server.Result.
type mapCounters [server.NumResults]prometheus.Counter

var _ server.Observer = (*Metrics)(nil)

// New returns the metrics, registered with the Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mapdropd_lookups_total",
			Help: "Lookups answered, by map and result (found, notfound, temp, perm) as the client was told.",
		}, []string{"map", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mapdropd_lookup_duration_seconds",
			Help: "Server-side time per lookup, from the request's first byte to its reply written.",
			// From 10µs (a lookup from memory) to 1s (RequestTimeout is 10s).
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, 1},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mapdropd_reloads_total",
			Help: "Loads of a map's file, by map and result (ok, error: the previous table keeps serving).",
		}, []string{"map", "result"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mapdropd_map_entries",
			Help: "Entries in the table being served, by map.",
		}, []string{"map"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mapdropd_map_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful load of the map's file.",
		}, []string{"map"}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mapdropd_connections_open",
			Help: "Client connections being served.",
		}),
		connsReject: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mapdropd_connections_rejected_total",
			Help: "Connections closed unserved because of -max-conns or -max-conns-per-uid.",
		}),
		connsEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mapdropd_connections_evicted_total",
			Help: "Idle or stalled connections closed to admit a new one at -max-conns or -max-conns-per-uid.",
		}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mapdropd_map_served_from_last_good",
			Help: "1 while the map is served from its last good copy (-state) because its file did not load at startup, else 0.",
		}, []string{"map"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mapdropd_map_load_held_back",
			Help: "1 while the newest file of the map is held back as cut short or emptied, waiting for mapdropd confirm, else 0.",
		}, []string{"map"}),
	}
	m.reg.MustRegister(m.lookups, m.duration, m.reloads, m.entries, m.lastSuccess,
		m.connsOpen, m.connsReject, m.connsEvicted, m.stale, m.held,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	empty := map[string]*mapCounters{}
	m.maps.Store(&empty)
	m.unknown = m.counters(UnknownMap)
	return m
}

// counters resolves the lookup counters of a map label.
func (m *Metrics) counters(name string) *mapCounters {
	var c mapCounters
	for r := range server.NumResults {
		c[r] = m.lookups.WithLabelValues(name, r.String())
	}
	return &c
}

// addMap makes name a known map, with every series at zero.
func (m *Metrics) addMap(name string) {
	if name == UnknownMap {
		return
	}
	if _, ok := (*m.maps.Load())[name]; ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.maps.Load()
	if _, ok := old[name]; ok {
		return
	}
	next := make(map[string]*mapCounters, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = m.counters(name)
	m.reloads.WithLabelValues(name, "ok")
	m.reloads.WithLabelValues(name, "error")
	m.stale.WithLabelValues(name)
	m.held.WithLabelValues(name)
	m.maps.Store(&next)
}

// Lookup counts one lookup answered; see server.Observer.
func (m *Metrics) Lookup(mapName string, r server.Result, d time.Duration) {
	c := (*m.maps.Load())[mapName]
	if c == nil {
		c = m.unknown
	}
	if r < server.NumResults {
		c[r].Inc()
	}
	m.duration.Observe(d.Seconds())
}

// ConnOpened counts a connection admitted.
func (m *Metrics) ConnOpened() { m.connsOpen.Inc() }

// ConnClosed counts an admitted connection that ended.
func (m *Metrics) ConnClosed() { m.connsOpen.Dec() }

// ConnRejected counts a connection closed unserved.
func (m *Metrics) ConnRejected() { m.connsReject.Inc() }

// ConnEvicted counts a connection closed to make room.
func (m *Metrics) ConnEvicted() { m.connsEvicted.Inc() }

// Loaded records one load attempt of map name, as the reloader reports
// it: entries is the size of the new table when err is nil; otherwise the
// previous table (if any) keeps serving and only the error is counted. A
// *reload.HeldBack error (a file that looks cut short or emptied) also
// sets mapdropd_map_load_held_back until the next attempt.
func (m *Metrics) Loaded(name string, entries int, err error) {
	m.addMap(name)
	var hb *reload.HeldBack
	if errors.As(err, &hb) {
		m.held.WithLabelValues(name).Set(1)
	} else {
		m.held.WithLabelValues(name).Set(0)
	}
	if err != nil {
		m.reloads.WithLabelValues(name, "error").Inc()
		return
	}
	m.reloads.WithLabelValues(name, "ok").Inc()
	m.stale.WithLabelValues(name).Set(0)
	m.entries.WithLabelValues(name).Set(float64(entries))
	m.lastSuccess.WithLabelValues(name).Set(float64(time.Now().UnixNano()) / 1e9)
}

// Entries records the size of map name after its entries changed in
// place (an etcd map's single-key edit), which is not a load.
func (m *Metrics) Entries(name string, entries int) {
	m.addMap(name)
	m.entries.WithLabelValues(name).Set(float64(entries))
}

// Stale records that map name is served from its last good copy because
// its file did not load at startup (the reloader's OnStale hook); the next
// successful load of its file ends it.
func (m *Metrics) Stale(name, copyPath string) {
	m.addMap(name)
	m.stale.WithLabelValues(name).Set(1)
}

// Removed forgets map name, which is no longer served (an etcd map whose
// pointer was deleted): every series labelled map=NAME is deleted, and
// lookups naming it count under map="(unknown)" until it is reported
// again. Removing a map the metrics do not know, or UnknownMap, does
// nothing. Calls for one map must not race with each other (the etcd
// source makes its calls from one goroutine at a time).
func (m *Metrics) Removed(name string) {
	if name == UnknownMap {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.maps.Load()
	if _, ok := old[name]; ok {
		next := make(map[string]*mapCounters, len(old)-1)
		for k, v := range old {
			if k != name {
				next[k] = v
			}
		}
		// A lookup that found the old counters just before the swap
		// increments a series that is no longer exported: it is lost
		// with the rest of the map's series.
		m.maps.Store(&next)
	}
	labels := prometheus.Labels{"map": name}
	m.lookups.DeletePartialMatch(labels)
	m.reloads.DeletePartialMatch(labels)
	for _, g := range []*prometheus.GaugeVec{m.entries, m.lastSuccess, m.stale, m.held} {
		g.DeletePartialMatch(labels)
	}
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the registry holding the metrics, for tests and for
// adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
