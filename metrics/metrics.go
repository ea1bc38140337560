// Package metrics exposes the bot's Prometheus metrics. Labels carry only
// event kinds and error codes, never user data or secrets.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/example/resetbot/workflow"
)

// Metrics holds the bot's collectors in their own registry.
type Metrics struct {
	Registry *prometheus.Registry
	events   *prometheus.CounterVec
}

var _ workflow.Metrics = (*Metrics)(nil)

// New returns Metrics with Go and process collectors registered.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resetbot_request_events_total",
			Help: "Request events saved, by kind (requested, approved, completed, failed, ...) and error code.",
		}, []string{"kind", "code"}),
	}
	m.Registry.MustRegister(m.events,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Event implements workflow.Metrics.
func (m *Metrics) Event(kind workflow.EventKind, code workflow.Code) {
	m.events.WithLabelValues(string(kind), string(code)).Inc()
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
