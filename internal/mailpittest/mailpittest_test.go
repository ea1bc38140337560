package mailpittest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadEnv(t *testing.T) {
	full := `# written by scripts/mailpit.sh
MAILPIT_SMTP_URL=smtp://127.0.0.1:1
MAILPIT_SMTP_API=http://127.0.0.1:2
MAILPIT_SMTPS_URL=smtps://127.0.0.1:3
MAILPIT_SMTPS_API=http://127.0.0.1:4
MAILPIT_PLAIN_URL=smtp://127.0.0.1:5
MAILPIT_PLAIN_API=http://127.0.0.1:6
MAILPIT_CHAOS_URL=smtp://127.0.0.1:7
MAILPIT_CHAOS_API=http://127.0.0.1:8

MAILPIT_CA_FILE=/tmp/x/ca.pem
MAILPIT_USERNAME=resetbot
MAILPIT_PASSWORD=0123abcd
`
	path := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := LoadEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	if e.STARTTLS != (Server{"smtp://127.0.0.1:1", "http://127.0.0.1:2"}) || e.TLS.SMTPURL != "smtps://127.0.0.1:3" ||
		e.Plain.API != "http://127.0.0.1:6" || e.Chaos.SMTPURL != "smtp://127.0.0.1:7" ||
		e.CAFile != "/tmp/x/ca.pem" || e.Username != "resetbot" || e.Password != "0123abcd" {
		t.Fatalf("%+v", e)
	}

	partial := strings.ReplaceAll(strings.ReplaceAll(full, "MAILPIT_CHAOS_API=http://127.0.0.1:8\n", ""), "MAILPIT_PASSWORD=0123abcd\n", "")
	if err := os.WriteFile(path, []byte(partial), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEnv(path); err == nil || !strings.Contains(err.Error(), "MAILPIT_CHAOS_API, MAILPIT_PASSWORD missing") {
		t.Fatalf("partial env file: %v", err)
	}
	if _, err := LoadEnv(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("no error for a missing file")
	}
}
