package playground

import (
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Button is a Block Kit button as the page shows it; the page posts it back
// as a click on the message that holds it.
type Button struct {
	ActionID, Value, Text, Style string
}

// block is the part of Block Kit the bot's messages use.
type block struct {
	Type     string       `json:"type"`
	BlockID  string       `json:"block_id"`
	Text     *textObject  `json:"text"`
	Fields   []textObject `json:"fields"`
	Elements []element    `json:"elements"`
}

type textObject struct {
	Type string `json:"type"` // mrkdwn or plain_text
	Text string `json:"text"`
}

type element struct {
	Type     string          `json:"type"` // button in actions; mrkdwn, plain_text in context
	Text     json.RawMessage `json:"text"`
	ActionID string          `json:"action_id"`
	Value    string          `json:"value"`
	Style    string          `json:"style"`
}

// renderer turns Block Kit and mrkdwn into HTML: names for user IDs, the
// time zone for dates, and the buttons' form.
type renderer struct {
	names  func(id string) string
	loc    *time.Location
	button func(b Button) template.HTML
}

// blocks renders a message: its blocks, or its text when it has none.
// What it cannot read it shows as text, never as raw HTML.
func (r renderer) blocks(raw json.RawMessage, fallback string) template.HTML {
	var bs []block
	if len(raw) == 0 || json.Unmarshal(raw, &bs) != nil || len(bs) == 0 {
		return `<div class="section">` + r.mrkdwn(fallback) + `</div>`
	}
	var b strings.Builder
	for _, bl := range bs {
		switch bl.Type {
		case "section":
			b.WriteString(`<div class="section">`)
			if bl.Text != nil {
				b.WriteString(string(r.text(*bl.Text)))
			}
			if len(bl.Fields) > 0 {
				b.WriteString(`<div class="fields">`)
				for _, f := range bl.Fields {
					b.WriteString(`<div class="field">` + string(r.text(f)) + `</div>`)
				}
				b.WriteString(`</div>`)
			}
			b.WriteString(`</div>`)
		case "context":
			b.WriteString(`<div class="context">`)
			for _, e := range bl.Elements {
				var t textObject
				if json.Unmarshal(e.Text, &t.Text) == nil || e.Type == "mrkdwn" || e.Type == "plain_text" {
					t.Type = e.Type
					b.WriteString(`<span>` + string(r.text(t)) + `</span>`)
				}
			}
			b.WriteString(`</div>`)
		case "actions":
			b.WriteString(`<div class="actions">`)
			for _, e := range bl.Elements {
				if e.Type != "button" {
					continue
				}
				var t textObject
				_ = json.Unmarshal(e.Text, &t)
				b.WriteString(string(r.button(Button{ActionID: e.ActionID, Value: e.Value, Text: t.Text, Style: e.Style})))
			}
			b.WriteString(`</div>`)
		case "divider":
			b.WriteString(`<hr>`)
		case "header":
			if bl.Text != nil {
				b.WriteString(`<div class="header">` + html.EscapeString(bl.Text.Text) + `</div>`)
			}
		default:
			b.WriteString(`<div class="unknown">(a ` + html.EscapeString(bl.Type) + ` block the playground does not draw)</div>`)
		}
	}
	return template.HTML(b.String())
}

func (r renderer) text(t textObject) template.HTML {
	if t.Type == "plain_text" {
		return template.HTML(strings.ReplaceAll(html.EscapeString(t.Text), "\n", "<br>"))
	}
	return r.mrkdwn(t.Text)
}

var (
	special  = regexp.MustCompile(`<([^<>]+)>`)
	preRe    = regexp.MustCompile("(?s)```(.+?)```")
	codeRe   = regexp.MustCompile("`([^`\n]+)`")
	boldRe   = regexp.MustCompile(`(^|[\s(])\*([^*\n]+)\*`)
	italicRe = regexp.MustCompile(`(^|[\s(])_([^_\n]+)_`)
	strikeRe = regexp.MustCompile(`(^|[\s(])~([^~\n]+)~`)
	emojiRe  = regexp.MustCompile(`:([a-z0-9_+-]+):`)
)

// emoji are the shortcodes the bot's messages use.
var emoji = map[string]string{
	"hourglass": "⌛", "hourglass_flowing_sand": "⏳", "key": "🔑", "large_blue_circle": "🔵",
	"large_green_circle": "🟢", "large_yellow_circle": "🟡", "leftwards_arrow_with_hook": "↩️",
	"lock": "🔒", "no_entry": "⛔", "no_entry_sign": "🚫", "red_circle": "🔴", "rotating_light": "🚨",
	"warning": "⚠️", "white_check_mark": "✅", "white_circle": "⚪", "x": "❌",
}

// mrkdwn renders Slack's mrkdwn: *bold*, _italic_, ~strike~, `code`,
// ```pre```, <@U...> mentions, <!date^...> dates, <url|text> links,
// :emoji: and line breaks. Slack's own escapes (&amp; &lt; &gt;) are
// undone before the text is escaped for HTML again.
func (r renderer) mrkdwn(s string) template.HTML {
	// Pull the <...> sequences out first: they hold | and characters that
	// the formatting below must not touch.
	s = strings.NewReplacer("\x00", "", "\x01", "").Replace(s)
	var specials []string
	s = special.ReplaceAllStringFunc(s, func(m string) string {
		specials = append(specials, r.special(m[1:len(m)-1]))
		return "\x00" + strconv.Itoa(len(specials)-1) + "\x00"
	})
	s = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
	s = html.EscapeString(s)
	var pres []string
	s = preRe.ReplaceAllStringFunc(s, func(m string) string {
		pres = append(pres, `<pre>`+strings.Trim(m[3:len(m)-3], "\n")+`</pre>`)
		return "\x01" + strconv.Itoa(len(pres)-1) + "\x01"
	})
	s = codeRe.ReplaceAllString(s, `<code>$1</code>`)
	s = boldRe.ReplaceAllString(s, `$1<b>$2</b>`)
	s = italicRe.ReplaceAllString(s, `$1<i>$2</i>`)
	s = strikeRe.ReplaceAllString(s, `$1<s>$2</s>`)
	s = emojiRe.ReplaceAllStringFunc(s, func(m string) string {
		if e, ok := emoji[m[1:len(m)-1]]; ok {
			return e
		}
		return m
	})
	s = strings.ReplaceAll(s, "\n", "<br>")
	s = regexp.MustCompile("\x01([0-9]+)\x01").ReplaceAllStringFunc(s, func(m string) string {
		i, _ := strconv.Atoi(strings.Trim(m, "\x01"))
		return pres[i]
	})
	s = regexp.MustCompile("\x00([0-9]+)\x00").ReplaceAllStringFunc(s, func(m string) string {
		i, _ := strconv.Atoi(strings.Trim(m, "\x00"))
		return specials[i]
	})
	return template.HTML(s)
}

// special renders what was inside <...>: a mention, a channel, a date, a
// link.
func (r renderer) special(in string) string {
	body, label, _ := strings.Cut(in, "|")
	switch {
	case strings.HasPrefix(body, "@"):
		return `<span class="mention">@` + html.EscapeString(r.names(body[1:])) + `</span>`
	case strings.HasPrefix(body, "#"):
		name := label
		if name == "" {
			name = body[1:]
		}
		return `<span class="mention">#` + html.EscapeString(name) + `</span>`
	case strings.HasPrefix(body, "!date^"):
		parts := strings.SplitN(body, "^", 4)
		if len(parts) >= 3 {
			if secs, err := strconv.ParseInt(parts[1], 10, 64); err == nil {
				return `<time>` + html.EscapeString(formatDate(time.Unix(secs, 0).In(r.loc), parts[2])) + `</time>`
			}
		}
		return html.EscapeString(label)
	case strings.HasPrefix(body, "!"):
		return `<span class="mention">@` + html.EscapeString(strings.TrimPrefix(body, "!")) + `</span>`
	case strings.HasPrefix(body, "http://") || strings.HasPrefix(body, "https://") || strings.HasPrefix(body, "mailto:"):
		text := label
		if text == "" {
			text = body
		}
		return fmt.Sprintf(`<a href="%s" rel="noreferrer" target="_blank">%s</a>`, html.EscapeString(body), html.EscapeString(text))
	}
	return html.EscapeString("<" + in + ">")
}

// formatDate fills Slack's date tokens.
func formatDate(t time.Time, format string) string {
	return strings.NewReplacer(
		"{date_short_pretty}", t.Format("Jan 2"),
		"{date_long_pretty}", t.Format("Monday, January 2"),
		"{date_short}", t.Format("Jan 2, 2006"),
		"{date_long}", t.Format("Monday, January 2, 2006"),
		"{date_num}", t.Format("2006-01-02"),
		"{date}", t.Format("January 2, 2006"),
		"{time_secs}", t.Format("15:04:05"),
		"{time}", t.Format("15:04"),
	).Replace(format)
}
