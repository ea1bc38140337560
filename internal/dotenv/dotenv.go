// Package dotenv reads .env files the way Docker Compose does: the bot's
// settings (config.WithEnvFile), scripts/run.sh, and the env files the
// test scripts write for the tests (Samba AD, Mailpit, Redis Sentinel and
// Cluster), so that one dialect serves them all.
package dotenv

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Parse reads a .env file the way Docker Compose does (its env_file and
// the project's .env), so that one file means the same to `bot`, to
// scripts/run.sh and to `docker compose`. No shell is involved:
//
//   - one KEY=value a line; blank lines and lines starting with # are
//     skipped; `export ` before the key and `KEY: value` are accepted; a key
//     alone (no =) takes its value from the environment, so it sets nothing
//     here;
//   - unquoted values run to the end of the line, without the spaces around
//     them, and without a comment that starts with " #"; spaces, ;, = and
//     commas are part of the value (LDAP_BIND_DN=CN=svc,OU=Service Accounts,...);
//   - 'single quotes' keep every character as it is (a \' is a quote), and
//     may span lines;
//   - "double quotes" may span lines and understand \n, \r, \t, \\ and \"
//     (before any other character a backslash is dropped);
//   - after a closing quote only a comment may follow;
//   - unquoted and double-quoted values interpolate ${NAME}, $NAME,
//     ${NAME:-default}, ${NAME-default}, ${NAME:+alt}, ${NAME+alt},
//     ${NAME:?error} and ${NAME?error}, from lookup first and then from
//     the lines above; $$ is a $.
//
// lookup is the real environment (found: set and not empty; nil: none).
// The result maps every key the file sets to its value.
func Parse(data []byte, lookup func(string) (string, bool)) (map[string]string, error) {
	p := &envParser{lookup: lookup, vars: map[string]string{}}
	src := string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	src = strings.ReplaceAll(src, "\r\n", "\n")
	p.line = 1
	for {
		src = p.skip(src)
		if src == "" {
			return p.vars, nil
		}
		var err error
		if src, err = p.statement(src); err != nil {
			return nil, err
		}
	}
}

type envParser struct {
	lookup func(string) (string, bool)
	vars   map[string]string
	line   int
}

var exportPrefix = regexp.MustCompile(`^export[ \t]+`)

// skip drops blank lines, comment lines and leading spaces.
func (p *envParser) skip(src string) string {
	for {
		src = strings.TrimLeft(src, " \t")
		switch {
		case strings.HasPrefix(src, "\n"):
			p.line++
			src = src[1:]
		case strings.HasPrefix(src, "#"):
			_, rest, found := strings.Cut(src, "\n")
			if !found {
				return ""
			}
			p.line++
			src = rest
		default:
			return src
		}
	}
}

// statement reads one KEY=value and returns what follows it.
func (p *envParser) statement(src string) (string, error) {
	src = exportPrefix.ReplaceAllString(src, "")
	end := strings.IndexAny(src, "=:\n")
	if end < 0 {
		end = len(src)
	}
	key := strings.TrimSpace(src[:end])
	if key == "" {
		return "", fmt.Errorf("line %d: no variable name before %q", p.line, firstLine(src))
	}
	for _, r := range key {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("_.-[]", r) {
			return "", fmt.Errorf("line %d: unexpected character %q in variable name %q", p.line, r, key)
		}
	}
	if end == len(src) || src[end] == '\n' {
		// A key alone: its value comes from the environment.
		return src[end:], nil
	}
	rest := strings.TrimLeft(src[end+1:], " \t")
	if rest != "" && (rest[0] == '\'' || rest[0] == '"') {
		return p.quoted(key, rest)
	}
	value, rest, found := strings.Cut(rest, "\n")
	value, _, _ = strings.Cut(value, " #")
	value = strings.TrimRightFunc(value, unicode.IsSpace)
	v, err := p.interpolate(value)
	if err != nil {
		return "", fmt.Errorf("line %d: %s: %v", p.line, key, err)
	}
	p.vars[key] = v
	if found {
		p.line++
	}
	return rest, nil
}

// quoted reads a quoted value that starts src.
func (p *envParser) quoted(key, src string) (string, error) {
	quote, start := src[0], p.line
	var b strings.Builder
	escaped := false
	for i := 1; i < len(src); i++ {
		c := src[i]
		if c == '\n' {
			p.line++
		}
		switch {
		case c == quote && !escaped:
			value := b.String()
			if quote == '"' {
				var err error
				if value, err = p.interpolate(unescape(value)); err != nil {
					return "", fmt.Errorf("line %d: %s: %v", start, key, err)
				}
			}
			p.vars[key] = value
			after, rest, found := strings.Cut(src[i+1:], "\n")
			if after = strings.TrimSpace(after); after != "" && !strings.HasPrefix(after, "#") {
				return "", fmt.Errorf("line %d: %s: unexpected %q after the closing quote (quote the whole value, or start a comment with #)", p.line, key, after)
			}
			if found {
				p.line++
			}
			return rest, nil
		case c == '\\' && !escaped:
			escaped = true
		case escaped && c == quote:
			escaped = false
			b.WriteByte(c)
		case escaped:
			escaped = false
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("line %d: %s: the quoted value %s is never closed", start, key, firstLine(src))
}

var backslashPair = regexp.MustCompile(`\\.`)

// unescape applies the escapes of a double-quoted value: \n, \r, \t and
// \\; a backslash before any other character but $ is dropped.
func unescape(s string) string {
	return backslashPair.ReplaceAllStringFunc(s, func(m string) string {
		switch m[1] {
		case 'n':
			return "\n"
		case 'r':
			return "\r"
		case 't':
			return "\t"
		case '$':
			return m
		}
		return m[1:]
	})
}

var reference = regexp.MustCompile(`\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])((?:[^{}]|\{[^{}]*\})*))?\}|(.?))`)

// interpolate replaces the references to variables in v.
func (p *envParser) interpolate(v string) (string, error) {
	var err error
	out := reference.ReplaceAllStringFunc(v, func(m string) string {
		g := reference.FindStringSubmatch(m)
		switch {
		case g[1] != "":
			return "$"
		case g[2] != "":
			val, _ := p.get(g[2])
			return val
		case g[3] != "":
			val, set := p.get(g[3])
			op, arg := g[4], g[5]
			nonEmpty := set && val != ""
			present := set
			if strings.HasPrefix(op, ":") {
				present = nonEmpty
			}
			switch strings.TrimPrefix(op, ":") {
			case "-":
				if !present {
					val, _ = p.interpolateArg(arg, &err)
				}
			case "+":
				val = ""
				if present {
					val, _ = p.interpolateArg(arg, &err)
				}
			case "?":
				if !present && err == nil {
					msg, _ := p.interpolateArg(arg, &err)
					err = fmt.Errorf("%s: %s", g[3], msg)
				}
			}
			return val
		}
		if err == nil {
			err = fmt.Errorf("%q is not a variable reference; write $$ for a $, or quote the value with '", m)
		}
		return m
	})
	return out, err
}

func (p *envParser) interpolateArg(arg string, errp *error) (string, bool) {
	v, err := p.interpolate(arg)
	if err != nil && *errp == nil {
		*errp = err
	}
	return v, err == nil
}

// get looks name up in the environment first, then in the lines above.
func (p *envParser) get(name string) (string, bool) {
	if p.lookup != nil {
		if v, ok := p.lookup(name); ok {
			return v, true
		}
	}
	v, ok := p.vars[name]
	return v, ok
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
