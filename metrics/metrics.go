// Package metrics exposes the bot's Prometheus metrics. Labels carry only
// event kinds, statuses, error codes and Slack method names: never a user,
// an account, a request ID or a secret.
package metrics

import (
	"cmp"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/example/resetbot/workflow"
)

// Metrics holds the bot's collectors in their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	events      *prometheus.CounterVec
	outcomes    *prometheus.CounterVec
	toDecision  prometheus.Histogram
	toReveal    prometheus.Histogram
	toComplete  prometheus.Histogram
	directory   *prometheus.CounterVec
	created     *prometheus.CounterVec
	unlocks     *prometheus.CounterVec
	slackCalls  *prometheus.CounterVec
	connections prometheus.Counter
}

var _ workflow.Metrics = (*Metrics)(nil)

// buckets suit waits measured in seconds to tens of minutes: a person
// deciding or clicking, or a reset going through.
var buckets = []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600}

// New returns Metrics with Go and process collectors registered.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		events: counters("resetbot_request_events_total",
			"Request events saved, by kind (requested, approved, completed, failed, ...) and error code.", "kind", "code"),
		outcomes: counters("resetbot_requests_total",
			"Requests that ended, by outcome (completed, failed, denied, expired, cancelled) and code (why a request failed).", "outcome", "code"),
		toDecision: histogram("resetbot_time_to_decision_seconds", "From the request to the approver's decision."),
		toReveal:   histogram("resetbot_time_to_reveal_seconds", "From the approval to the employee's first click on Reveal."),
		toComplete: histogram("resetbot_time_to_completion_seconds", "From the request to the password shown to the employee."),
		directory: counters("resetbot_directory_calls_total",
			"ResetUserPassword calls, by result (ok, or the error code: invalid_password, directory_unavailable, ...).", "result"),
		created: counters("resetbot_requests_created_total",
			"Requests created, by action (reset, unlock) and by whom they were asked (employee, or helpdesk on the employee's behalf).", "action", "asked_by"),
		unlocks: counters("resetbot_unlocks_total",
			"Attempts to end an account's lockout (lockoutTime=0), by the action that made them (unlock, or reset: a reset of a locked account) and result (ok, or the error code).", "action", "result"),
		slackCalls: counters("resetbot_slack_calls_total",
			"Slack Web API calls, by method and result (ok, rate_limited, or Slack's error code).", "method", "result"),
		connections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resetbot_slack_connections_total",
			Help: "Socket Mode connections made; more than one per replica means reconnects.",
		}),
	}
	m.Registry.MustRegister(m.events, m.outcomes, m.toDecision, m.toReveal, m.toComplete, m.directory,
		m.created, m.unlocks, m.slackCalls, m.connections,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Saved implements workflow.Metrics.
func (m *Metrics) Saved(r *workflow.Request, before int) {
	for _, ev := range r.Events[min(max(before, 0), len(r.Events)):] {
		m.events.WithLabelValues(string(ev.Kind), string(ev.Code)).Inc()
		switch ev.Kind {
		case workflow.EventRequested:
			by := "employee"
			if r.Agent != "" {
				by = "helpdesk"
			}
			m.created.WithLabelValues(string(r.Action.Name()), by).Inc()
		case workflow.EventApproved, workflow.EventDenied:
			m.toDecision.Observe(seconds(r.CreatedAt, ev.At))
		case workflow.EventRevealed:
			if r.RevealTries == 1 {
				m.toReveal.Observe(seconds(r.DecidedAt, ev.At))
			}
		case workflow.EventCompleted:
			m.toComplete.Observe(seconds(r.CreatedAt, ev.At))
		}
	}
	if r.Status.Terminal() && before < len(r.Events) {
		m.outcomes.WithLabelValues(string(r.Status), string(r.Failure)).Inc()
	}
}

// DirectoryCall implements workflow.Metrics.
func (m *Metrics) DirectoryCall(code workflow.Code) {
	m.directory.WithLabelValues(string(cmp.Or(code, "ok"))).Inc()
}

// Unlock implements workflow.Metrics.
func (m *Metrics) Unlock(during workflow.Action, code workflow.Code) {
	m.unlocks.WithLabelValues(string(during.Name()), string(cmp.Or(code, "ok"))).Inc()
}

// SlackCall counts one Slack call of method with its result.
func (m *Metrics) SlackCall(method, result string) {
	m.slackCalls.WithLabelValues(method, result).Inc()
}

// Connected counts a Socket Mode connection.
func (m *Metrics) Connected() { m.connections.Inc() }

// Gauge registers a gauge whose value f reads at each scrape.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

func counters(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func histogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

func seconds(from, to time.Time) float64 { return max(to.Sub(from), 0).Seconds() }
