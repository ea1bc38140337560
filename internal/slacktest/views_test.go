package slacktest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func modal(meta string, input bool) slack.ModalViewRequest {
	v := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "cb", PrivateMetadata: meta,
		Title: slack.NewTextBlockObject(slack.PlainTextType, "A form", false, false),
		Close: slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false)}
	v.Blocks.BlockSet = []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, "Why?", false, false), nil, nil)}
	if input {
		v.Blocks.BlockSet = append(v.Blocks.BlockSet, slack.NewInputBlock("reason", slack.NewTextBlockObject(slack.PlainTextType, "Reason", false, false), nil,
			slack.NewPlainTextInputBlockElement(nil, "reason")))
	}
	return v
}

// TestViewsOpen: a trigger opens one modal, within 3 seconds of being
// issued, once; views.open names each refusal as Slack does.
func TestViewsOpen(t *testing.T) {
	s := newServer(t)
	api, ctx := botClient(s), context.Background()
	now := time.Now()
	s.clock = func() time.Time { return now }
	s.mu.Lock()
	t1, t2 := s.newTriggerLocked("U1"), s.newTriggerLocked("U1")
	s.mu.Unlock()
	withSubmit := modal("meta", true)
	withSubmit.Submit = slack.NewTextBlockObject(slack.PlainTextType, "Send", false, false)
	if _, err := api.OpenViewContext(ctx, t1, modal("meta", true)); err == nil || err.Error() != "invalid_arguments" {
		t.Fatalf("an input without a submit: %v", err)
	}
	v, err := api.OpenViewContext(ctx, t1, withSubmit)
	if err != nil || v.ID == "" {
		t.Fatalf("views.open = %+v, %v", v, err)
	}
	got := s.Views("U1")
	if len(got) != 1 || got[0].Type != "modal" || got[0].CallbackID != "cb" || got[0].PrivateMetadata != "meta" || got[0].Title != "A form" ||
		!strings.Contains(string(got[0].Blocks), `"block_id":"reason"`) {
		t.Fatalf("views %+v", got)
	}
	if _, err := api.OpenViewContext(ctx, t1, modal("again", false)); err == nil || err.Error() != "exchanged_trigger_id" {
		t.Fatalf("a used trigger: %v", err)
	}
	now = now.Add(TriggerLife + time.Millisecond)
	if _, err := api.OpenViewContext(ctx, t2, modal("late", false)); err == nil || err.Error() != "expired_trigger_id" {
		t.Fatalf("a late trigger: %v", err)
	}
	if _, err := api.OpenViewContext(ctx, "1.2.trigger", modal("x", false)); err == nil || err.Error() != "invalid_trigger_id" {
		t.Fatalf("an unknown trigger: %v", err)
	}
}

// TestViewsPublish: a Home view per user, the last one kept.
func TestViewsPublish(t *testing.T) {
	s := newServer(t)
	api, ctx := botClient(s), context.Background()
	home := func(text string) slack.HomeTabViewRequest {
		return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}}}
	}
	for _, text := range []string{"first", "second"} {
		if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home(text)}); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok := s.Home("U1"); !ok || v.Type != "home" || !strings.Contains(string(v.Blocks), "second") {
		t.Fatalf("home %+v", v)
	}
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "UNOBODY", View: home("x")}); err == nil {
		t.Fatal("a Home for nobody was published")
	}
	if len(s.Views("")) != 2 {
		t.Fatalf("views %d", len(s.Views("")))
	}
}
