package directory

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/example/resetbot/internal/dstest"
	"github.com/example/resetbot/workflow"
)

// checkPassword fails unless pw meets every rule for acct.
func checkPassword(t *testing.T, pw string, length int, acct workflow.Account) {
	t.Helper()
	if len(pw) != length {
		t.Fatalf("%d characters, want %d", len(pw), length)
	}
	var upper, lower, digits, symbols int
	for _, c := range pw {
		switch {
		case strings.ContainsRune(PasswordUpper, c):
			upper++
		case strings.ContainsRune(PasswordLower, c):
			lower++
		case strings.ContainsRune(PasswordDigits, c):
			digits++
		case strings.ContainsRune(PasswordSymbols, c):
			symbols++
		default:
			t.Fatalf("character %q is outside the alphabet", c)
		}
	}
	if upper == 0 || lower == 0 || digits == 0 || symbols == 0 {
		t.Fatalf("a class is missing: %d upper, %d lower, %d digits, %d symbols", upper, lower, digits, symbols)
	}
	lo, hi := max(1, length/6), max(1, length/6)+1
	if digits < lo || digits > hi || symbols < lo || symbols > hi {
		t.Fatalf("%d digits and %d symbols, want %d to %d each", digits, symbols, lo, hi)
	}
	for _, part := range ForbiddenParts(acct) {
		if strings.Contains(strings.ToLower(pw), part) {
			t.Fatalf("contains %q", part)
		}
	}
}

func TestPasswordsMeetTheRules(t *testing.T) {
	p := NewPasswords()
	acct := workflow.Account{UserName: "jdoe", DisplayName: "Doe, Jane"}
	seen := map[string]bool{}
	for range 2000 {
		pw, err := p.New(20, acct)
		if err != nil {
			t.Fatal(err)
		}
		checkPassword(t, pw, 20, acct)
		seen[pw] = true
	}
	if len(seen) != 2000 {
		t.Errorf("only %d distinct passwords out of 2000", len(seen))
	}
	for _, n := range []int{8, 9, 12, 32, 64, 127} {
		for range 200 {
			pw, err := p.New(n, acct)
			if err != nil {
				t.Fatalf("length %d: %v", n, err)
			}
			checkPassword(t, pw, n, acct)
		}
	}
}

// The directory accepts what New makes, for the users and display names
// the policy knows.
func TestPasswordsAcceptedByDirectoryPolicy(t *testing.T) {
	for _, acct := range []workflow.Account{
		{UserName: "jdoe", DisplayName: "Doe, Jane"},
		{UserName: "ab", DisplayName: "Li Xi"},
		{UserName: "maria.garcia-lopez", DisplayName: "García-López, María José #IT"},
	} {
		for range 200 {
			pw, err := NewPasswords().New(20, acct)
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range dstest.DisplayNameTokens(acct.DisplayName) {
				if strings.Contains(strings.ToLower(pw), strings.ToLower(tok)) {
					t.Fatalf("%q contains display-name part %q", pw, tok)
				}
			}
		}
	}
}

func TestForbiddenParts(t *testing.T) {
	cases := []struct {
		acct workflow.Account
		want []string
	}{
		{workflow.Account{UserName: "JDoe", DisplayName: "Doe, Jane-Marie O'Neil_Jr #IT\tOps.x"},
			[]string{"jdoe", "doe", "jane", "marie", "o'neil", "ops"}},
		{workflow.Account{UserName: "ab", DisplayName: "Li Xi"}, nil},
		{workflow.Account{UserName: "bob"}, []string{"bob"}},
	}
	for _, c := range cases {
		if got := ForbiddenParts(c.acct); !slices.Equal(got, c.want) {
			t.Errorf("ForbiddenParts(%+v) = %q, want %q", c.acct, got, c.want)
		}
	}
}

// TestDisplayNameTokensExcluded uses a display name with so many 3-letter
// parts that a good share of raw generator output contains one, so the
// regeneration loop is exercised on many calls.
func TestDisplayNameTokensExcluded(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	letters := PasswordLower
	var parts []string
	for range 600 {
		parts = append(parts, string([]byte{letters[r.IntN(len(letters))], letters[r.IntN(len(letters))], letters[r.IntN(len(letters))]}))
	}
	acct := workflow.Account{UserName: "jdoe", DisplayName: strings.Join(parts, " ")}
	p := NewPasswords()

	forbidden, hits := ForbiddenParts(acct), 0
	for range 300 {
		raw, _ := p.gen.Generate(20, 3, 3, false, true)
		if containsAny(raw, forbidden) {
			hits++
		}
	}
	if hits < 30 {
		t.Fatalf("only %d of 300 raw passwords contain a part: the test does not exercise the loop", hits)
	}
	for range 300 {
		pw, err := p.New(20, acct)
		if err != nil {
			t.Fatal(err)
		}
		checkPassword(t, pw, 20, acct)
	}
}

func TestPasswordsImpossible(t *testing.T) {
	p := NewPasswords()
	for _, n := range []int{-1, 0, 7, 128, 1000} {
		if _, err := p.New(n, workflow.Account{UserName: "jdoe"}); workflow.ErrorCode(err) != workflow.CodeInvalidInput {
			t.Errorf("length %d: %v", n, err)
		}
	}

	// A random source stuck at zero makes the same one-class password every
	// time: the bounded loop gives up.
	_, err := newPasswords(zeroReader{}).New(20, workflow.Account{UserName: "jdoe"})
	if workflow.ErrorCode(err) != workflow.CodeInternal || !strings.Contains(err.Error(), "tries") {
		t.Errorf("stuck random source: %v", err)
	}

	// A failing random source is an error, not a panic or a weak password.
	_, err = newPasswords(failReader{}).New(20, workflow.Account{UserName: "jdoe"})
	if workflow.ErrorCode(err) != workflow.CodeInternal {
		t.Errorf("failing random source: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }
