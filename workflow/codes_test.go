package workflow

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"
)

// TestCodesListsEveryCode keeps Codes, which the tables of words are
// checked against, in step with the constants.
func TestCodesListsEveryCode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Code" {
				for _, name := range vs.Names {
					consts = append(consts, name.Name)
				}
			}
		}
		return true
	})
	if len(consts) != len(Codes) {
		t.Fatalf("%d Code constants in errors.go, %d in Codes", len(consts), len(Codes))
	}
	seen := map[Code]bool{}
	for _, c := range Codes {
		if seen[c] {
			t.Errorf("%s twice in Codes", c)
		}
		seen[c] = true
	}
	if !slices.Contains(Codes, CodeDirectoryUncertain) {
		t.Error("Codes lacks a code")
	}
}
