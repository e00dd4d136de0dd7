package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callvault/callvault/diskspace"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are callvault's Prometheus collectors, on their own registry so
// tests can make as many servers as they like.
type Metrics struct {
	Registry        *prometheus.Registry
	Ingests         *prometheus.CounterVec
	IngestBytes     *prometheus.CounterVec
	IngestErrors    *prometheus.CounterVec
	RequestDuration *prometheus.HistogramVec
}

// NewMetrics registers callvault's collectors and the Go runtime's.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Ingests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callvault_ingests_total", Help: "Recordings stored, by source.",
		}, []string{"source"}),
		IngestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callvault_ingest_bytes_total", Help: "Bytes of audio stored, by source.",
		}, []string{"source"}),
		IngestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callvault_ingest_errors_total", Help: "Recordings refused or failed, by source and error code.",
		}, []string{"source", "code"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "callvault_http_request_duration_seconds", Help: "HTTP request duration by route and status (audio routes: the whole stream).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "status"}),
	}
	m.Registry.MustRegister(m.Ingests, m.IngestBytes, m.IngestErrors, m.RequestDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchSpace exports the free-space monitor's last reading: free and total
// bytes of the fullest watched filesystem, and its level (0 ok, 1 low, 2
// critical: new recordings refused, 3 unknown: also refused).
func (m *Metrics) watchSpace(space interface{ Status() diskspace.Status }) {
	levels := map[diskspace.Level]float64{diskspace.LevelOK: 0, diskspace.LevelLow: 1, diskspace.LevelCritical: 2, diskspace.LevelUnknown: 3}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callvault_disk_free_bytes",
			Help: "Free bytes on the fullest filesystem holding callvault's data."},
			func() float64 { return float64(space.Status().Free) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callvault_disk_total_bytes",
			Help: "Size of the fullest filesystem holding callvault's data."},
			func() float64 { return float64(space.Status().Total) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callvault_disk_level",
			Help: "Free-space level: 0 ok, 1 low (alerting), 2 critical (new recordings refused), 3 unknown (refused)."},
			func() float64 { return levels[space.Status().Level] }),
	)
}

// Ingested implements archive.Observer.
func (m *Metrics) Ingested(source string, bytes int64) {
	m.Ingests.WithLabelValues(source).Inc()
	m.IngestBytes.WithLabelValues(source).Add(float64(bytes))
}

// IngestFailed implements archive.Observer.
func (m *Metrics) IngestFailed(source, code string) {
	m.IngestErrors.WithLabelValues(source, code).Inc()
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// instrument records latency under the route pattern (never the raw path,
// which would carry ids).
func (m *Metrics) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		m.RequestDuration.WithLabelValues(route, strconv.Itoa(sw.status)).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
