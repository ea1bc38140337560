package directory

import (
	"crypto/rand"
	"io"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/sethvargo/go-password/password"

	"github.com/example/resetbot/workflow"
)

// The character sets of temporary passwords. They are easy to read off a
// screen and to type on common keyboard layouts: no quotes, backslash,
// space, backtick, no dead keys (^ ~ on many European layouts), and none of
// the look-alikes I l 1 O 0.
const (
	PasswordLower   = "abcdefghijkmnopqrstuvwxyz"
	PasswordUpper   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	PasswordDigits  = "23456789"
	PasswordSymbols = "!#%*+-.=?@_"
)

// Password length limits: AD accepts 127 characters at most; below 8 there
// is too little room for all four classes and enough randomness.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 127
)

// maxPasswordTries bounds the regeneration loop. A try fails only when a
// class is missing or a forbidden name shows up, which for any real length
// and name is rare, so this is never reached unless the random source is
// broken.
const maxPasswordTries = 200

// Passwords makes temporary passwords with github.com/sethvargo/go-password
// (crypto/rand). It implements workflow.Passwords and is safe for concurrent
// use.
type Passwords struct {
	gen    *password.Generator
	reader io.Reader // the random source; crypto/rand.Reader outside tests
}

var _ workflow.Passwords = (*Passwords)(nil)

// NewPasswords returns a password maker using crypto/rand.
func NewPasswords() *Passwords { return newPasswords(rand.Reader) }

func newPasswords(r io.Reader) *Passwords {
	gen, err := password.NewGenerator(&password.GeneratorInput{
		LowerLetters: PasswordLower,
		UpperLetters: PasswordUpper,
		Digits:       PasswordDigits,
		Symbols:      PasswordSymbols,
		Reader:       r,
	})
	if err != nil { // NewGenerator never fails with non-empty sets
		panic(err)
	}
	return &Passwords{gen: gen, reader: r}
}

// New returns a random password of exactly length characters (8 to 127) with
// at least one upper-case letter, lower-case letter, digit and symbol, about
// a sixth of them digits and a sixth symbols, that contains neither acct's
// account name (when it has 3 or more characters) nor any 3+ character part
// of its display name, ignoring case: the complexity rules of Active
// Directory.
//
// Errors: CodeInvalidInput (length out of range), CodeInternal (the random
// source failed, or no acceptable password came out of the bounded loop).
func (p *Passwords) New(length int, acct workflow.Account) (string, error) {
	if length < MinPasswordLength || length > MaxPasswordLength {
		return "", workflow.Errorf(workflow.CodeInvalidInput,
			"a temporary password must have %d to %d characters, not %d", MinPasswordLength, MaxPasswordLength, length)
	}
	forbidden := ForbiddenParts(acct)
	for range maxPasswordTries {
		digits, err := p.count(length)
		if err != nil {
			return "", err
		}
		symbols, err := p.count(length)
		if err != nil {
			return "", err
		}
		pw, err := p.gen.Generate(length, digits, symbols, false, true)
		if err != nil {
			return "", workflow.Wrap(workflow.CodeInternal, err, "could not generate a password")
		}
		if hasAllClasses(pw) && !containsAny(pw, forbidden) {
			return pw, nil
		}
	}
	return "", workflow.Errorf(workflow.CodeInternal,
		"could not generate an acceptable %d-character password for %q in %d tries", length, acct.UserName, maxPasswordTries)
}

// count returns how many digits (or symbols) a password of length gets:
// length/6, plus one half of the time (3 or 4 for 20 characters).
func (p *Passwords) count(length int) (int, error) {
	n, err := rand.Int(p.reader, big.NewInt(2))
	if err != nil {
		return 0, workflow.Wrap(workflow.CodeInternal, err, "could not read random numbers")
	}
	return max(1, length/6) + int(n.Int64()), nil
}

// ForbiddenParts returns, lower-cased, what a password for acct must not
// contain under AD's complexity rules: the account name if it has 3 or more
// characters, and the parts of the display name split on , . - _ # tab and
// space that have 3 or more characters.
func ForbiddenParts(acct workflow.Account) []string {
	var out []string
	if utf8.RuneCountInString(acct.UserName) >= 3 {
		out = append(out, strings.ToLower(acct.UserName))
	}
	parts := strings.FieldsFunc(acct.DisplayName, func(c rune) bool {
		return strings.ContainsRune(",.-_# \t", c)
	})
	for _, part := range parts {
		if utf8.RuneCountInString(part) >= 3 {
			out = append(out, strings.ToLower(part))
		}
	}
	return out
}

// hasAllClasses reports whether pw has an upper-case and a lower-case
// letter, a digit and a symbol.
func hasAllClasses(pw string) bool {
	return strings.ContainsAny(pw, PasswordUpper) && strings.ContainsAny(pw, PasswordLower) &&
		strings.ContainsAny(pw, PasswordDigits) && strings.ContainsAny(pw, PasswordSymbols)
}

// containsAny reports whether pw contains one of parts (lower-cased),
// ignoring case.
func containsAny(pw string, parts []string) bool {
	lower := strings.ToLower(pw)
	for _, part := range parts {
		if strings.Contains(lower, part) {
			return true
		}
	}
	return false
}
