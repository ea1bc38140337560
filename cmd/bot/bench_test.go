package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

// BenchmarkFullFlow measures one whole request through the real bot, Redis
// and the test servers: /reset-password, Approve, Reveal, completed (chat
// synced).
func BenchmarkFullFlow(b *testing.B) {
	w := newWorld(b)
	w.vars["REQUEST_LIMIT"] = "1000000"
	w.vars["LOG_LEVEL"] = "info"
	w.start()
	for b.Loop() {
		id := idRe.FindString(w.command(employee, ""))
		m := w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
		w.click(approver1, slackapp.ActionApprove, id, m)
		reveal := w.messageFor(slacktest.DMChannel(employee), id, slackapp.ActionReveal)
		w.click(employee, slackapp.ActionReveal, id, reveal)
		w.waitStatus(id, workflow.StatusCompleted)
	}
}

// BenchmarkAck measures how long the bot takes to ack an envelope (Slack
// allows 3 s) while it is busy with others: 20 commands at a time.
func BenchmarkAck(b *testing.B) {
	w := newWorld(b)
	w.vars["LOG_LEVEL"] = "info"
	w.start()
	var delays []time.Duration
	for b.Loop() {
		var envs []string
		for range 20 {
			envs = append(envs, w.slack.SlashCommand(employee, "status"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		for _, e := range envs {
			if _, err := w.slack.WaitAck(ctx, e); err != nil {
				b.Fatal(err)
			}
			d, _ := w.slack.AckDelay(e)
			delays = append(delays, d)
		}
		cancel()
	}
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "p50-ack-ms")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds())/1000, "p99-ack-ms")
	b.ReportMetric(float64(delays[len(delays)-1].Microseconds())/1000, "max-ack-ms")
}
