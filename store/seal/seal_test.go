package seal_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

func request() *workflow.Request {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	return &workflow.Request{
		ID: workflow.NewID(), Requester: "UALICE", Status: workflow.StatusApproved,
		Account:   workflow.Account{UserName: "alice", GUID: "a8b4cf38-c9f2-48b3-96f8-000000000001"},
		CreatedAt: at, DecideBy: at.Add(time.Hour), DecidedBy: "UBOSS",
		Events: []workflow.Event{{At: at, Kind: workflow.EventRequested, Actor: "UALICE"}},
	}
}

func key(t *testing.T, secret string) seal.Key {
	t.Helper()
	k, err := seal.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripIsDeterministic(t *testing.T) {
	k := key(t, strings.Repeat("k", 32))
	r := request()
	data, err := k.Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Open(r.ID, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("Open(Seal(r)) = %+v, want %+v", got, r)
	}
	again, err := k.Seal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("sealing the opened request gave other bytes:\n%s\n%s", again, data)
	}
}

// TestRefusesWhatThisKeyDidNotSeal changes a sealed record the ways a store
// writer could and expects CodeTampered every time.
func TestRefusesWhatThisKeyDidNotSeal(t *testing.T) {
	k := key(t, strings.Repeat("k", 32))
	r := request()
	data, err := k.Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	other := request()
	otherData, err := k.Seal(other)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := key(t, strings.Repeat("x", 32)).Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	for name, tampered := range map[string][]byte{
		"account":          bytes.Replace(data, []byte(`"alice"`), []byte(`"admin"`), 1),
		"status":           bytes.Replace(data, []byte(`"approved"`), []byte(`"pending"`), 1),
		"guid":             bytes.Replace(data, []byte(`000000000001`), []byte(`000000000002`), 1),
		"unsealed JSON":    plain,
		"another key":      foreign,
		"another record":   otherData, // a valid record stored under r's ID
		"no MAC":           append([]byte("rb1.."), plain...),
		"garbage MAC":      append([]byte("rb1.!!!."), plain...),
		"truncated":        data[:len(data)-1],
		"empty":            {},
		"version prefixed": append([]byte("rb2."), data[4:]...),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := k.Open(r.ID, tampered)
			if workflow.ErrorCode(err) != workflow.CodeTampered || got != nil {
				t.Errorf("Open = %v, %v; want CodeTampered", got, err)
			}
		})
	}
}

func TestNoKeyTrustsNothing(t *testing.T) {
	var k seal.Key
	r := request()
	if _, err := k.Seal(r); workflow.ErrorCode(err) != workflow.CodeInternal {
		t.Errorf("Seal without a key = %v, want CodeInternal", err)
	}
	sealed, err := key(t, strings.Repeat("k", 32)).Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(r.ID, sealed); workflow.ErrorCode(err) != workflow.CodeInternal {
		t.Errorf("Open without a key = %v, want CodeInternal", err)
	}
	if _, err := seal.New([]byte("short")); err == nil {
		t.Error("New accepted a 5-byte key")
	}
}

func TestDerive(t *testing.T) {
	r := request()
	a, b, c := seal.Derive("xapp-1-A-1-secret", "requests"), seal.Derive("xapp-1-A-1-secret", "requests"), seal.Derive("xapp-1-A-1-other", "requests")
	if !a.Valid() {
		t.Fatal("a derived key is not valid")
	}
	sealed, err := a.Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(r.ID, sealed); err != nil {
		t.Errorf("the same secret derived another key: %v", err)
	}
	if _, err := c.Open(r.ID, sealed); workflow.ErrorCode(err) != workflow.CodeTampered {
		t.Errorf("another secret opened the record: %v", err)
	}
	if _, err := seal.Derive("xapp-1-A-1-secret", "other use").Open(r.ID, sealed); workflow.ErrorCode(err) != workflow.CodeTampered {
		t.Errorf("another purpose opened the record: %v", err)
	}
}

func TestRequester(t *testing.T) {
	r := request()
	sealed, err := key(t, strings.Repeat("k", 32)).Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(r)
	for _, data := range [][]byte{sealed, plain} {
		if got := seal.Requester(data); got != "UALICE" {
			t.Errorf("Requester(%.20s...) = %q", data, got)
		}
	}
	if got := seal.Requester([]byte("rb1.x.{not json")); got != "" {
		t.Errorf("Requester(garbage) = %q", got)
	}
}
