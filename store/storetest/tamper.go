package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

// Key is the state key the stores under test seal with.
var Key = seal.Derive("storetest", "requests")

// Tamper rewrites the stored bytes of request id with edit, behind the
// store's back, as whoever can write to the backend could.
type Tamper func(t *testing.T, id string, edit func(stored []byte) []byte)

// RunTampering checks that a store never hands out a request it did not
// write (workflow.CodeTampered, with a *workflow.Tampered cause), that it
// moves such a record aside so that no index leads to it again, and that
// the requester can then ask anew. open returns a new, empty store sealing
// with Key and a Tamper for it.
func RunTampering(t *testing.T, open func(t *testing.T) (workflow.Store, Tamper)) {
	edits := []struct {
		name string
		edit func(t *testing.T, s workflow.Store, tamper Tamper, r *workflow.Request) func([]byte) []byte
	}{
		{"account", replace(`"user_name":"jdoe"`, `"user_name":"Administrator"`)},
		{"status", replace(`"status":"pending"`, `"status":"approved"`)},
		{"approvers", replace(`"UAPPROVER1"`, `"UATTACKER"`)},
		{"unsealed JSON", func(t *testing.T, _ workflow.Store, _ Tamper, r *workflow.Request) func([]byte) []byte {
			plain, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			return func([]byte) []byte { return plain }
		}},
		{"another key", func(t *testing.T, _ workflow.Store, _ Tamper, r *workflow.Request) func([]byte) []byte {
			foreign, err := seal.Derive("someone else", "requests").Seal(r)
			if err != nil {
				t.Fatal(err)
			}
			return func([]byte) []byte { return foreign }
		}},
		{"another request's record", func(t *testing.T, s workflow.Store, tamper Tamper, _ *workflow.Request) func([]byte) []byte {
			other := NewRequest("UOTHER", base)
			if err := s.Create(t.Context(), other, noLimit); err != nil {
				t.Fatal(err)
			}
			var copied []byte
			tamper(t, other.ID, func(b []byte) []byte { copied = bytes.Clone(b); return b })
			return func([]byte) []byte { return copied }
		}},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s, tamper := open(t)
			testTampered(t, s, tamper, e.edit)
		})
	}
}

// replace returns an edit that replaces old with new in the stored bytes,
// and fails the test when they do not hold old.
func replace(old, new string) func(*testing.T, workflow.Store, Tamper, *workflow.Request) func([]byte) []byte {
	return func(t *testing.T, _ workflow.Store, _ Tamper, _ *workflow.Request) func([]byte) []byte {
		return func(b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("the stored record holds no %s: %s", old, b)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		}
	}
}

// testTampered tampers with an open request and checks every way the bot
// reads it.
func testTampered(t *testing.T, s workflow.Store, tamper Tamper, edit func(*testing.T, workflow.Store, Tamper, *workflow.Request) func([]byte) []byte) {
	ctx, user := t.Context(), "UEMPLOYEE"
	r := NewRequest(user, base)
	if err := s.Create(ctx, r, noLimit); err != nil {
		t.Fatal(err)
	}
	tamper(t, r.ID, edit(t, s, tamper, r))

	// The first read refuses it, whichever read it is; the record is
	// then out of every index.
	_, _, err := s.Standing(ctx, user, workflow.ActionReset, base.Add(-time.Hour))
	checkTampered(t, "Standing", err, r.ID)
	if got, err := s.Get(ctx, r.ID); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Errorf("Get after the refusal = %v, %v; want code %s (moved aside)", got, err, workflow.CodeNotFound)
	}
	called := false
	if _, err := s.Update(ctx, r.ID, func(*workflow.Request) error { called = true; return nil }); workflow.ErrorCode(err) != workflow.CodeNotFound || called {
		t.Errorf("Update after the refusal: %v (fn called: %v); want code %s without calling fn", err, called, workflow.CodeNotFound)
	}
	if got, err := s.Open(ctx, user); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Errorf("Open after the refusal = %v, %v; want code %s", got, err, workflow.CodeNoOpenRequest)
	}
	if ids, err := s.Due(ctx, base.Add(24*time.Hour), 0); err != nil || slices.Contains(ids, r.ID) {
		t.Errorf("Due after the refusal = %v, %v; want it without %s", ids, err, r.ID)
	}
	if err := s.Create(ctx, NewRequest(user, base.Add(time.Minute)), noLimit); err != nil {
		t.Errorf("the requester cannot ask anew after the refusal: %v", err)
	}

	// Every other read refuses it as well.
	for name, read := range map[string]func(id string) error{
		"Get":  func(id string) error { _, err := s.Get(ctx, id); return err },
		"Open": func(string) error { _, err := s.Open(ctx, "UREADER"); return err },
		"Update": func(id string) error {
			_, err := s.Update(ctx, id, func(*workflow.Request) error { return errors.New("fn must not run") })
			return err
		},
	} {
		r := NewRequest("UREADER", base)
		if err := s.Create(ctx, r, noLimit); err != nil {
			t.Fatal(err)
		}
		tamper(t, r.ID, replace(`"user_name":"jdoe"`, `"user_name":"krbtgt"`)(t, s, tamper, r))
		checkTampered(t, name, read(r.ID), r.ID)
		if _, err := s.Get(ctx, r.ID); workflow.ErrorCode(err) != workflow.CodeNotFound {
			t.Errorf("%s did not move the record aside: Get = %v", name, err)
		}
		if _, err := s.Open(ctx, "UREADER"); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
			t.Errorf("%s left the open index: Open = %v", name, err)
		}
	}
}

// checkTampered fails t unless err is CodeTampered with the cause naming id.
func checkTampered(t *testing.T, op string, err error, id string) {
	t.Helper()
	var cause *workflow.Tampered
	if workflow.ErrorCode(err) != workflow.CodeTampered || !errors.As(err, &cause) || cause.ID != id {
		t.Errorf("%s of a tampered record: %v; want code %s naming %s", op, err, workflow.CodeTampered, id)
	}
}
