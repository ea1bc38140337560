package accounts

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/example/resetbot/workflow"
)

// folder folds case the Unicode way (ß and ss, K and the Kelvin sign).
var folder = cases.Fold()

// Fold returns name in the form protected names are compared in: Unicode
// NFKC (full-width and other compatibility forms become plain letters),
// then case folding.
func Fold(name string) string {
	return folder.String(norm.NFKC.String(name))
}

// CheckName applies the rules every account name must pass, with or
// without a directory: the API's rules (workflow.ValidateUserName), no
// invisible or format characters (a zero-width space would make
// "administrator" look like another name to a list but not to AD), and no
// name ending in $ (computer, managed service and trust accounts).
//
// Errors: CodeInvalidUserName, CodeMachineAccount.
func CheckName(name string) error {
	if err := workflow.ValidateUserName(name); err != nil {
		return err
	}
	for _, c := range name {
		if invisible(c) {
			return workflow.Errorf(workflow.CodeInvalidUserName, "the account name %q contains the invisible character U+%04X", name, c)
		}
	}
	if strings.HasSuffix(Fold(name), "$") {
		return workflow.Errorf(workflow.CodeMachineAccount, "the account name %q ends in $: a computer, service or trust account", name)
	}
	return nil
}

// invisible reports whether c is a character a reader cannot see: controls,
// format characters (zero-width space and joiners, bidi marks, soft hyphen),
// private use, separators other than the plain space, variation selectors
// and other default-ignorable code points.
func invisible(c rune) bool {
	switch {
	case c == ' ':
		return false
	case unicode.In(c, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zs, unicode.Zl, unicode.Zp),
		unicode.In(c, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point),
		c == unicode.ReplacementChar:
		return true
	}
	return false
}
