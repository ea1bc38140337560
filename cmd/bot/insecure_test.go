package main

import (
	"context"
	"strings"
	"testing"
)

// TestLDAPPlainTextSaid: with LDAP_INSECURE=true (ldap:// without
// StartTLS), doctor and every start say in plain words that LDAP runs in
// plain text; with LDAPS neither does.
func TestLDAPPlainTextSaid(t *testing.T) {
	w := newADWorld(t)
	doctorRun := func() string {
		t.Helper()
		var out syncBuffer
		if err := run(context.Background(), []string{"bot", "doctor"}, func(k string) string { return w.vars[k] }, &out); err != nil {
			t.Fatalf("doctor: %v\n%s", err, out.String())
		}
		return out.String()
	}
	said := "LDAP runs in plain text: the bind password and every directory lookup cross the network unencrypted"

	out := doctorRun()
	if strings.Contains(out, "plain text") || strings.Contains(out, "PLAIN TEXT") || !strings.Contains(out, "ok    LDAP: "+w.env.LDAPSURL+": TLS") ||
		!strings.Contains(out, "everything looks right") {
		t.Errorf("doctor over LDAPS:\n%s", out)
	}
	b := w.start()
	if strings.Contains(b.logs.String(), "plain text") {
		t.Errorf("a start over LDAPS says plain text:\n%s", b.logs.String())
	}
	b.stop()

	w.vars["LDAP_URL"] = w.env.LDAPURL
	w.vars["LDAP_INSECURE"] = "true"
	out = doctorRun()
	for _, want := range []string{"  WARN  LDAP_INSECURE=true: " + said, "ok    LDAP: " + w.env.LDAPURL + ": PLAIN TEXT (LDAP_INSECURE=true, not encrypted)",
		"everything works, but read the warnings above"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "everything looks right") {
		t.Errorf("doctor says everything looks right over plain-text LDAP:\n%s", out)
	}
	for range 2 {
		b := w.start()
		line := logLine(b.logs.String(), said)
		if line == "" || !strings.Contains(line, `"level":"WARN"`) {
			t.Errorf("a start over plain-text LDAP does not warn that LDAP runs in plain text:\n%s", b.logs.String())
		}
		if start := logLine(b.logs.String(), `"msg":"starting"`); !strings.Contains(start, `"ldap_plain_text":true`) {
			t.Errorf("the start-up configuration does not say plain text: %s", start)
		}
		b.stop()
	}
}

// logLine returns the first line of logs that contains s, or "".
func logLine(logs, s string) string {
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
