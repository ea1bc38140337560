package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withMail returns valid() with the notice email set up; the CA file is
// a real PEM certificate.
func withMail(t *testing.T) map[string]string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(ca, testCAPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	m := valid()
	m["SMTP_URL"] = "smtp://mail.corp.example.com:587"
	m["SMTP_USERNAME"] = "resetbot"
	m["SMTP_PASSWORD"] = "smtp-secret-pw"
	m["SMTP_FROM"] = "Password reset <resetbot@corp.example.com>"
	m["SMTP_CA_FILE"] = ca
	m["HELPDESK_CONTACT"] = "+1 555 0100 or helpdesk@corp.example.com"
	return m
}

func TestMailSettings(t *testing.T) {
	c, err := Load(env(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPURL != "" || c.SMTPUsername != "" || c.SMTPPassword != "" || c.SMTPFrom != "" || c.SMTPCAFile != "" || c.HelpdeskContact != "" {
		t.Fatalf("no email by default: %+v", c)
	}

	m := withMail(t)
	c, err = Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPURL != m["SMTP_URL"] || c.SMTPUsername != "resetbot" || c.SMTPPassword.Value() != "smtp-secret-pw" ||
		c.SMTPFrom != m["SMTP_FROM"] || c.SMTPCAFile != m["SMTP_CA_FILE"] || c.HelpdeskContact != m["HELPDESK_CONTACT"] {
		t.Fatalf("%+v", c)
	}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c)
	js, _ := json.Marshal(c)
	for _, d := range []string{fmt.Sprintf("%v %+v %#v", c, c, c), string(js), logs.String()} {
		if strings.Contains(d, "smtp-secret-pw") {
			t.Errorf("the SMTP password is shown: %s", d)
		}
	}
	if !strings.Contains(logs.String(), `"smtp_url":"smtp://mail.corp.example.com:587"`) || !strings.Contains(logs.String(), `"smtp_password_set":true`) {
		t.Errorf("the start-up log lacks the email settings: %s", logs.String())
	}

	// The password from a file; smtps; no authentication; no CA file.
	pw := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pw, []byte("from-file-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m = withMail(t)
	delete(m, "SMTP_PASSWORD")
	delete(m, "SMTP_CA_FILE")
	m["SMTP_PASSWORD_FILE"] = pw
	m["SMTP_URL"] = "smtps://mail.corp.example.com"
	if c, err := Load(env(m)); err != nil || c.SMTPPassword.Value() != "from-file-pw" || c.SMTPCAFile != "" {
		t.Fatalf("%v %+v", err, c)
	}
	m = withMail(t)
	delete(m, "SMTP_USERNAME")
	delete(m, "SMTP_PASSWORD")
	if _, err := Load(env(m)); err != nil {
		t.Fatalf("a relay without authentication: %v", err)
	}
}

func TestBadMailSettings(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"plain smtp", map[string]string{"SMTP_URL": "smtp+plain://mail.corp.example.com"}, []string{"SMTP_URL must start with smtp:// (STARTTLS) or smtps://"}},
		{"credentials in the URL", map[string]string{"SMTP_URL": "smtp://resetbot:url-secret-pw@mail.corp.example.com"}, []string{"SMTP_URL must not hold credentials"}},
		{"no host", map[string]string{"SMTP_URL": "smtps://:465"}, []string{"SMTP_URL has no host"}},
		{"bad port", map[string]string{"SMTP_URL": "smtp://mail.corp.example.com:70000"}, []string{"SMTP_URL has a port that is not a number"}},
		{"no from", map[string]string{"SMTP_FROM": ""}, []string{"SMTP_FROM is required with SMTP_URL"}},
		{"two senders", map[string]string{"SMTP_FROM": "a@corp.example.com, b@corp.example.com"}, []string{`SMTP_FROM "a@corp.example.com, b@corp.example.com" is not one address`}},
		{"injected from", map[string]string{"SMTP_FROM": "Reset <a@corp.example.com>\nBcc: x@example.com"}, []string{"SMTP_FROM", "line breaks"}},
		{"user without password", map[string]string{"SMTP_PASSWORD": ""}, []string{"SMTP_USERNAME and SMTP_PASSWORD (or SMTP_PASSWORD_FILE) go together"}},
		{"password without user", map[string]string{"SMTP_USERNAME": ""}, []string{"SMTP_USERNAME and SMTP_PASSWORD (or SMTP_PASSWORD_FILE) go together"}},
		{"password twice", map[string]string{"SMTP_PASSWORD_FILE": "/x"}, []string{"set SMTP_PASSWORD or SMTP_PASSWORD_FILE, not both"}},
		{"missing CA file", map[string]string{"SMTP_CA_FILE": "/nonexistent/ca.pem"}, []string{"SMTP_CA_FILE: cannot read the CA file /nonexistent/ca.pem"}},
		{"no helpdesk contact", map[string]string{"HELPDESK_CONTACT": ""}, []string{"HELPDESK_CONTACT is required with SMTP_URL"}},
		{"helpdesk contact on two lines", map[string]string{"HELPDESK_CONTACT": "call 555\nBcc: x@example.com"}, []string{"HELPDESK_CONTACT must be one line"}},
		{"settings without SMTP_URL", map[string]string{"SMTP_URL": ""}, []string{"SMTP_USERNAME needs SMTP_URL", "SMTP_PASSWORD needs SMTP_URL", "SMTP_FROM needs SMTP_URL", "SMTP_CA_FILE needs SMTP_URL"}},
		{"every problem at once", map[string]string{"SMTP_URL": "smtp://u:url-secret-pw@mail.corp.example.com", "SMTP_FROM": "nobody", "SMTP_USERNAME": "", "HELPDESK_CONTACT": "", "SMTP_CA_FILE": "/nonexistent/ca.pem"},
			[]string{"SMTP_URL must not hold credentials", `SMTP_FROM "nobody"`, "go together", "HELPDESK_CONTACT is required", "SMTP_CA_FILE"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := withMail(t)
			for k, v := range tt.set {
				if v == "" {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			_, err := Load(env(m))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nlacks %q", err, w)
				}
			}
			if n := len(err.(*Error).Problems); n != max(len(tt.want), 1) && tt.name != "every problem at once" && tt.name != "injected from" {
				t.Errorf("%d problems, want %d: %v", n, len(tt.want), err)
			}
			for _, secret := range []string{"smtp-secret-pw", "url-secret-pw"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a password: %v", err)
				}
			}
		})
	}
}

// testCAPEM returns a self-signed CA certificate in PEM, for SMTP_CA_FILE.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test SMTP CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
