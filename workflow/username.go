package workflow

import (
	"strings"
	"unicode/utf8"
)

// forbiddenUserNameChars are the characters ResetUserPassword's UserName
// must not contain.
const forbiddenUserNameChars = `\"/[]:;|=,+*?<>@`

// ValidateUserName checks name against the ResetUserPassword API's rules:
// 1 to 64 characters, none of \ " / [ ] : ; | = , + * ? < > @, and (our rule)
// no control characters or surrounding spaces.
// Errors: CodeInvalidUserName.
func ValidateUserName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case name == "":
		return Errorf(CodeInvalidUserName, "the account name is empty")
	case !utf8.ValidString(name):
		return Errorf(CodeInvalidUserName, "the account name is not valid UTF-8")
	case n > 64:
		return Errorf(CodeInvalidUserName, "the account name has %d characters, more than 64", n)
	case strings.TrimSpace(name) != name:
		return Errorf(CodeInvalidUserName, "the account name %q starts or ends with a space", name)
	}
	if i := strings.IndexAny(name, forbiddenUserNameChars); i >= 0 {
		return Errorf(CodeInvalidUserName, "the account name %q contains %q, which the directory does not allow", name, name[i])
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return Errorf(CodeInvalidUserName, "the account name %q contains a control character", name)
		}
	}
	return nil
}

// ValidDirectoryID reports whether id has the shape of a Directory Service
// directory ID: "d-" and 10 lower-case hex digits.
func ValidDirectoryID(id string) bool {
	if len(id) != 12 || !strings.HasPrefix(id, "d-") {
		return false
	}
	for _, c := range id[2:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Redact returns s with every occurrence of secret, in any ASCII case,
// replaced by [REDACTED], in case a lower layer echoed it.
func Redact(s, secret string) string {
	if secret == "" {
		return s
	}
	var b strings.Builder
	for {
		i := indexFold(s, secret)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString("[REDACTED]")
		s = s[i+len(secret):]
	}
}

// indexFold is strings.Index ignoring ASCII case.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
