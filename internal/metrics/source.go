package metrics

import "github.com/prometheus/client_golang/prometheus"

// sourceMetrics are the metrics of a map source that follows a cluster.
type sourceMetrics struct {
	connected prometheus.Gauge
	revision  prometheus.Gauge
	resyncs   prometheus.Counter
}

// EnableSource registers the source metrics (mapdropd_source_*), for a
// server that serves maps from etcd. Calling it again does nothing.
func (m *Metrics) EnableSource() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.src.Load() != nil {
		return
	}
	s := &sourceMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mapdropd_source_connected",
			Help: "1 while the etcd cluster answers, 0 while mapdropd serves its last revision without it.",
		}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mapdropd_source_revision",
			Help: "The etcd revision of the maps being served.",
		}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mapdropd_source_resyncs_total",
			Help: "Fresh snapshots of the etcd maps taken while running (watch revision compacted, reconnection after a start from the cache).",
		}),
	}
	m.reg.MustRegister(s.connected, s.revision, s.resyncs)
	m.src.Store(s)
}

// SourceState records the source's connection state and revision.
func (m *Metrics) SourceState(connected bool, revision int64) {
	s := m.src.Load()
	if s == nil {
		return
	}
	if connected {
		s.connected.Set(1)
	} else {
		s.connected.Set(0)
	}
	s.revision.Set(float64(revision))
}

// SourceResync counts one fresh snapshot.
func (m *Metrics) SourceResync() {
	if s := m.src.Load(); s != nil {
		s.resyncs.Inc()
	}
}
