package dotenv

import (
	"maps"
	"strings"
	"testing"
)

func noEnv(string) (string, bool) { return "", false }

// TestParseComposeRules: the rules of Docker Compose's .env files (its
// documentation's "env file syntax" examples), one line each.
func TestParseComposeRules(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`VAR=VAL`, "VAL"},
		{`VAR="VAL"`, "VAL"},
		{`VAR='VAL'`, "VAL"},
		{`VAR=VAL # comment`, "VAL"},
		{`VAR=VAL# not a comment`, "VAL# not a comment"},
		{`VAR="VAL # not a comment"`, "VAL # not a comment"},
		{`VAR="VAL" # comment`, "VAL"},
		{`VAR='$OTHER'`, "$OTHER"},
		{`VAR='${OTHER}'`, "${OTHER}"},
		{`VAR='Let\'s go!'`, "Let's go!"},
		{`VAR="{\"hello\": \"json\"}"`, `{"hello": "json"}`},
		{`VAR="some\tvalue"`, "some\tvalue"},
		{`VAR='some\tvalue'`, `some\tvalue`},
		{`VAR=some\tvalue`, `some\tvalue`},
		{`VAR="a\\b\nc"`, "a\\b\nc"},
		{"VAR='SOME\nVALUE'", "SOME\nVALUE"},
		{"VAR=\"SOME\nVALUE\"", "SOME\nVALUE"},
		{`export VAR=VAL`, "VAL"},
		{`VAR: VAL`, "VAL"},
		{`  VAR  =  VAL  `, "VAL"},
		{`VAR=`, ""},
		{`VAR=""`, ""},
		{`VAR=a=b=c`, "a=b=c"},
		{`VAR=one two;three,four`, "one two;three,four"},
		{`VAR=pa$$word`, "pa$word"},
		{`VAR="pa$$word"`, "pa$word"},
		{`VAR='pa$$word'`, "pa$$word"},
		{`VAR=${UNSET:-fallback}`, "fallback"},
		{`VAR=${SET:-fallback}`, "from-env"},
		{`VAR=${SET:+alt}`, "alt"},
		{`VAR=${UNSET:+alt}`, ""},
		{`VAR=$SET/x`, "from-env/x"},
		{`VAR="${SET}-${UNSET}"`, "from-env-"},
		{"VAR=a\r\n", "a"},
	} {
		got, err := Parse([]byte(tc.line), func(k string) (string, bool) {
			if k == "SET" {
				return "from-env", true
			}
			return "", false
		})
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if got["VAR"] != tc.want || len(got) != 1 {
			t.Errorf("%q: got %q (%v), want %q", tc.line, got["VAR"], got, tc.want)
		}
	}
}

// TestParseFile: a whole file: comments, blank lines, a key alone,
// references to the lines above, and the environment first.
func TestParseFile(t *testing.T) {
	src := "\xef\xbb\xbf# settings\n\nA=1\n  # indented comment\nB=${A}2\nINHERITED\nC='multi\nline' # comment\nD=\"x\" \nHOME_DIR=$HOME/data\n"
	got, err := Parse([]byte(src), func(k string) (string, bool) {
		if k == "HOME" {
			return "/home/u", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "12", "C": "multi\nline", "D": "x", "HOME_DIR": "/home/u/data"}
	if !maps.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestParseErrors: what Compose refuses is refused, with the line.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"A=1\nB='open\nC=3\n", "line 2: B: the quoted value 'open is never closed"},
		{"A=1\n\nB=\"x\" y\n", `line 3: B: unexpected "y" after the closing quote`},
		{"A B=1\n", `line 1: unexpected character ' ' in variable name "A B"`},
		{"=1\n", "line 1: no variable name"},
		{"A=1\nB=${NEEDED:?set NEEDED first}\n", "line 2: B: NEEDED: set NEEDED first"},
		{"A=cost $ 5\n", `line 1: A: "$ " is not a variable reference`},
		{"A='x'\nB=\"multi\nline\"\nC=\"${D:?missing}\"\n", "line 4: C: D: missing"},
	} {
		_, err := Parse([]byte(tc.src), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, err, tc.want)
		}
	}
}
