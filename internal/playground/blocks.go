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
	// An input block's (modals).
	Label    *textObject `json:"label"`
	Hint     *textObject `json:"hint"`
	Element  *input      `json:"element"`
	Optional bool        `json:"optional"`
}

// input is an input block's element: a plain-text input.
type input struct {
	Type      string `json:"type"`
	ActionID  string `json:"action_id"`
	Multiline bool   `json:"multiline"`
	MaxLength int    `json:"max_length"`
}

type textObject struct {
	Type  string `json:"type"` // mrkdwn or plain_text
	Text  string `json:"text"`
	Emoji bool   `json:"emoji"` // plain_text: shortcodes drawn as emoji
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
	names   func(id string) string
	loc     *time.Location
	button  func(b Button) template.HTML
	refused map[string]string // an input's message to fix it, by block ID
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
				b.WriteString(`<div class="header">` + string(r.text(*bl.Text)) + `</div>`)
			}
		case "input":
			b.WriteString(string(r.input(bl)))
		default:
			b.WriteString(`<div class="unknown">(a ` + html.EscapeString(bl.Type) + ` block the playground does not draw)</div>`)
		}
	}
	return template.HTML(b.String())
}

// input renders an input block as a labelled text field of the modal's
// form, named "input.BLOCK.ACTION" (postView reads it back).
func (r renderer) input(bl block) template.HTML {
	if bl.Element == nil || bl.Element.Type != "plain_text_input" {
		return `<div class="unknown">(an input the playground does not draw)</div>`
	}
	e := html.EscapeString
	name := "input." + bl.BlockID + "." + bl.Element.ActionID
	label := ""
	if bl.Label != nil {
		label = bl.Label.Text
	}
	var b strings.Builder
	b.WriteString(`<div class="input"><label for="` + e(name) + `">` + e(label) + `</label>`)
	attrs := ` id="` + e(name) + `" name="` + e(name) + `"`
	if bl.Element.MaxLength > 0 {
		attrs += ` maxlength="` + strconv.Itoa(bl.Element.MaxLength) + `"`
	}
	if bl.Element.Multiline {
		b.WriteString(`<textarea` + attrs + ` rows="3"></textarea>`)
	} else {
		b.WriteString(`<input type="text"` + attrs + `>`)
	}
	if msg := r.refused[bl.BlockID]; msg != "" {
		b.WriteString(`<div class="refused">` + e(msg) + `</div>`)
	}
	if bl.Hint != nil {
		b.WriteString(`<div class="context">` + e(bl.Hint.Text) + `</div>`)
	}
	b.WriteString(`</div>`)
	return template.HTML(b.String())
}

func (r renderer) text(t textObject) template.HTML {
	if t.Type == "plain_text" {
		s := strings.ReplaceAll(html.EscapeString(t.Text), "\n", "<br>")
		if t.Emoji {
			s = shortcodes(s)
		}
		return template.HTML(s)
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
	"alarm_clock": "⏰", "arrow_up": "⬆️", "crescent_moon": "🌙", "email": "📧", "information_source": "ℹ️", "unlock": "🔓",
	"hourglass": "⌛", "hourglass_flowing_sand": "⏳", "key": "🔑", "large_blue_circle": "🔵",
	"large_green_circle": "🟢", "large_yellow_circle": "🟡", "leftwards_arrow_with_hook": "↩️",
	"lock": "🔒", "no_entry": "⛔", "no_entry_sign": "🚫", "red_circle": "🔴", "rotating_light": "🚨",
	"warning": "⚠️", "white_check_mark": "✅", "white_circle": "⚪", "x": "❌",
}

// shortcodes replaces the :emoji: shortcodes the bot uses with their
// characters (in mrkdwn, and in plain_text with emoji set).
func shortcodes(s string) string {
	return emojiRe.ReplaceAllStringFunc(s, func(m string) string {
		if e, ok := emoji[m[1:len(m)-1]]; ok {
			return e
		}
		return m
	})
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
	s = shortcodes(s)
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
