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
