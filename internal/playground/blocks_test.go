package playground

import (
	"encoding/json"
	"html/template"
	"os"
	"strings"
	"testing"
	"time"
)

func testRenderer() renderer {
	return renderer{
		names: func(id string) string { return map[string]string{"UAPP1": "Bob Jones"}[id] },
		loc:   time.UTC,
		button: func(b Button) template.HTML {
			return template.HTML(`[` + template.HTMLEscapeString(b.ActionID+"="+b.Value+":"+b.Text+":"+b.Style) + `]`)
		},
	}
}

func TestMrkdwn(t *testing.T) {
	r := testRenderer()
	for in, want := range map[string]string{
		"*Email:* a_b@c.com":            "<b>Email:</b> a_b@c.com",
		"_italic_ and ~gone~":           "<i>italic</i> and <s>gone</s>",
		"the account `alice`":           "the account <code>alice</code>",
		"```Xy7#kP2!*mQ9-vR_4=t*W8a```": "<pre>Xy7#kP2!*mQ9-vR_4=t*W8a</pre>",
		"<@UAPP1> approved":             `<span class="mention">@Bob Jones</span> approved`,
		"<!date^1795856400^{date_short_pretty} at {time}|2026-11-28 09:00 UTC>": "<time>Nov 28 at 09:00</time>",
		"<https://example.com/x?a=1&b=2|the page>":                              `<a href="https://example.com/x?a=1&amp;b=2" rel="noreferrer" target="_blank">the page</a>`,
		"a &lt;b&gt; &amp; c":                "a &lt;b&gt; &amp; c",
		"line one\nline two":                 "line one<br>line two",
		":key: :white_check_mark: :unknown:": "🔑 ✅ :unknown:",
		"<script>alert(1)</script>":          "&lt;script&gt;alert(1)&lt;/script&gt;",
		"\"quoted\" it's":                    "&#34;quoted&#34; it&#39;s",
	} {
		if got := string(r.mrkdwn(in)); got != want {
			t.Errorf("mrkdwn(%q)\n got %s\nwant %s", in, got, want)
		}
	}
}

// TestBlocksOfTheBotsMessages renders the golden messages of slackapp:
// every block the bot sends is drawn, with its text and buttons.
func TestBlocksOfTheBotsMessages(t *testing.T) {
	r := testRenderer()
	for name, want := range map[string][]string{
		"approval_pending": {"<b>Email:</b>", "[approve=Rabcdefghijklmnopqrstuvwx:Approve:primary]", "[deny=Rabcdefghijklmnopqrstuvwx:Deny:danger]", `<div class="context">`},
		"password":         {"<pre>Xy7#kP2!mQ9-vR4=tW8a</pre>", "🔑 Your temporary password for <code>alice</code> is:"},
		"reveal_approved":  {"[reveal=", "Reveal my temporary password"},
		"audit_parent":     {`<div class="section">`},
	} {
		b, err := os.ReadFile("../../slackapp/testdata/" + name + ".golden.json")
		if err != nil {
			t.Fatal(err)
		}
		var msg struct {
			Text   string          `json:"text"`
			Blocks json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatal(err)
		}
		got := string(r.blocks(msg.Blocks, msg.Text))
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: lacks %s\n%s", name, w, got)
			}
		}
		if strings.Contains(got, "does not draw") {
			t.Errorf("%s: a block was not drawn:\n%s", name, got)
		}
	}
	if got := string(r.blocks(nil, "*plain* <@UAPP1>")); got != `<div class="section"><b>plain</b> <span class="mention">@Bob Jones</span></div>` {
		t.Errorf("text only: %s", got)
	}
}

// TestModalAndHomeBlocks renders the bot's deny modal and a Home view from
// slackapp's golden files: the reason is a labelled text field of the
// modal's form, what the bot asked to fix shows under it, the Home header
// draws its emoji (plain_text with emoji), and its buttons are drawn.
func TestModalAndHomeBlocks(t *testing.T) {
	r := testRenderer()
	read := func(name string) json.RawMessage {
		b, err := os.ReadFile("../../slackapp/testdata/" + name + ".golden.json")
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Blocks json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v.Blocks
	}
	r.refused = map[string]string{"reason": "Say <why>"}
	modal := string(r.blocks(read("modal_deny"), ""))
	for _, w := range []string{`<label for="input.reason.reason">Reason (optional)</label>`, `<textarea id="input.reason.reason" name="input.reason.reason" maxlength="`,
		`<div class="refused">Say &lt;why&gt;</div>`, "The employee sees this"} {
		if !strings.Contains(modal, w) {
			t.Errorf("the deny modal lacks %s:\n%s", w, modal)
		}
	}
	home := string(r.blocks(read("home_everything"), ""))
	for _, w := range []string{`<div class="header">🔑 Password resets</div>`, "[approve=", "[deny="} {
		if !strings.Contains(home, w) {
			t.Errorf("the Home view lacks %s:\n%s", w, home)
		}
	}
	for name, got := range map[string]string{"modal": modal, "home": home} {
		if strings.Contains(got, "does not draw") {
			t.Errorf("%s: a block was not drawn:\n%s", name, got)
		}
	}
	if got := string(r.text(textObject{Type: "plain_text", Text: ":key: <b>"})); got != ":key: &lt;b&gt;" {
		t.Errorf("plain_text without emoji: %s", got)
	}
}
