// Package seal signs the requests a store keeps, so that whoever can write
// to the store (a neighbour on a shared Redis, another application's
// credentials, a copied bbolt file) cannot change a request and have the
// bot act on it: not its account, not its status, not its approver.
//
// A sealed record is
//
//	rb1.<base64url HMAC-SHA256>.<JSON of the request>
//
// where the MAC covers a fixed label, the request's ID and the JSON. The key
// never goes to the store: it is STATE_KEY, or derived from a secret every
// replica already holds (see Derive). Open refuses a record whose MAC does
// not verify, whose ID is not the one it was read under, or that is not
// sealed at all, with workflow.CodeTampered.
//
// Sealing is deterministic: sealing a request that Open returned gives back
// the stored bytes, which the Redis store's compare-and-set relies on.
//
// What a seal does not stop: a store writer may put back an older sealed
// version of the same request (a replay), or delete records and indexes.
// The first is bounded by the request's own deadlines and by the checks at
// Reveal (the account is derived again from the requester); the second is
// a denial of service, which the store's access control must prevent
// (docs/security.md).
package seal

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/example/resetbot/workflow"
)

// MinKeyLen is the shortest key New accepts.
const MinKeyLen = 32

// prefix starts every sealed record; it names the format's version.
const prefix = "rb1."

// label separates this use of the key from any other.
const label = "resetbot request v1\x00"

// Key seals and opens requests. The zero Key has no key: Seal and Open then
// fail with workflow.CodeInternal, so that a store without a key never
// trusts anything.
type Key struct{ k []byte }

// New returns a Key for secret, which must have at least MinKeyLen bytes.
// Errors: workflow.CodeInternal for a short secret.
func New(secret []byte) (Key, error) {
	if len(secret) < MinKeyLen {
		return Key{}, workflow.Errorf(workflow.CodeInternal, "a state key needs at least %d bytes, not %d", MinKeyLen, len(secret))
	}
	return Key{k: bytes.Clone(secret)}, nil
}

// Derive returns a key derived from secret (HKDF-SHA256 with purpose as its
// info): a key the store never sees, from a secret every replica already
// has. A different secret or purpose gives an unrelated key.
func Derive(secret, purpose string) Key {
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, "resetbot state key: "+purpose, 32)
	if err != nil { // only for a length beyond 255*32 bytes
		panic(err)
	}
	return Key{k: k}
}

// Valid reports whether k holds a key.
func (k Key) Valid() bool { return len(k.k) >= MinKeyLen }

// Seal returns the sealed record of r. Errors: workflow.CodeInternal.
func (k Key) Seal(r *workflow.Request) ([]byte, error) {
	if !k.Valid() {
		return nil, workflow.Errorf(workflow.CodeInternal, "the store has no state key: it may not write requests")
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, workflow.Wrap(workflow.CodeInternal, err, "encode request")
	}
	out := make([]byte, 0, len(prefix)+44+len(data))
	out = append(out, prefix...)
	out = base64.RawURLEncoding.AppendEncode(out, k.mac(r.ID, data))
	out = append(out, '.')
	return append(out, data...), nil
}

// Open verifies the sealed record data, read under id, and returns its
// request. Errors: workflow.CodeTampered when data is not a record this key
// sealed for id; workflow.CodeInternal without a key.
func (k Key) Open(id string, data []byte) (*workflow.Request, error) {
	if !k.Valid() {
		return nil, workflow.Errorf(workflow.CodeInternal, "the store has no state key: it may not read requests")
	}
	rest, ok := bytes.CutPrefix(data, []byte(prefix))
	if !ok {
		return nil, tampered(id, data, "it is not sealed")
	}
	sum, body, ok := bytes.Cut(rest, []byte("."))
	got, err := base64.RawURLEncoding.DecodeString(string(sum))
	if !ok || err != nil || !hmac.Equal(got, k.mac(id, body)) {
		return nil, tampered(id, data, "it does not carry this key's signature")
	}
	var r workflow.Request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, workflow.Wrap(workflow.CodeInternal, err, "decode request "+id)
	}
	if r.ID != id {
		// Only this key made the MAC, which covers id: unreachable unless
		// the bot itself stored a request under another ID.
		return nil, tampered(id, data, "it holds request "+r.ID)
	}
	return &r, nil
}

// tampered is Open's error for a record it refuses.
func tampered(id string, data []byte, why string) error {
	return workflow.Wrap(workflow.CodeTampered, &workflow.Tampered{ID: id, Requester: Requester(data)}, "stored request refused: "+why)
}

// Requester returns the requester a record claims, verified or not, so
// that a store can drop the index that points at a record it refuses.
// It returns "" when data says nothing readable.
func Requester(data []byte) string {
	rest, ok := bytes.CutPrefix(data, []byte(prefix))
	if ok {
		if _, body, found := bytes.Cut(rest, []byte(".")); found {
			data = body
		}
	}
	var r struct {
		Requester string `json:"requester"`
	}
	if json.Unmarshal(data, &r) != nil {
		return ""
	}
	return r.Requester
}

// mac is the MAC of a request's JSON stored under id.
func (k Key) mac(id string, data []byte) []byte { return k.macWith(label, id, data) }

// macWith is the MAC of data stored under id, for the use lbl names.
func (k Key) macWith(lbl, id string, data []byte) []byte {
	m := hmac.New(sha256.New, k.k)
	m.Write([]byte(lbl))
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

// laneLabel separates delivery records from requests: a request's sealed
// record never opens as a lane's, nor the other way round.
const laneLabel = "resetbot lane v1\x00"

// SealLane returns the sealed record of a delivery lane: data (what the
// lane told whom, package delivery) bound to the lane's name, in the same
// format as a request's. Errors: workflow.CodeInternal without a key.
func (k Key) SealLane(lane string, data []byte) ([]byte, error) {
	if !k.Valid() {
		return nil, workflow.Errorf(workflow.CodeInternal, "the store has no state key: it may not write delivery records")
	}
	out := make([]byte, 0, len(prefix)+44+len(data))
	out = append(out, prefix...)
	out = base64.RawURLEncoding.AppendEncode(out, k.macWith(laneLabel, lane, data))
	out = append(out, '.')
	return append(out, data...), nil
}

// OpenLane verifies the sealed record of lane and returns its data.
// Errors: workflow.CodeTampered (with a *workflow.Tampered cause naming
// the lane) when it is not a record this key sealed for that lane;
// workflow.CodeInternal without a key.
func (k Key) OpenLane(lane string, sealed []byte) ([]byte, error) {
	if !k.Valid() {
		return nil, workflow.Errorf(workflow.CodeInternal, "the store has no state key: it may not read delivery records")
	}
	rest, ok := bytes.CutPrefix(sealed, []byte(prefix))
	if !ok {
		return nil, tamperedLane(lane, "it is not sealed")
	}
	sum, body, ok := bytes.Cut(rest, []byte("."))
	got, err := base64.RawURLEncoding.DecodeString(string(sum))
	if !ok || err != nil || !hmac.Equal(got, k.macWith(laneLabel, lane, body)) {
		return nil, tamperedLane(lane, "it does not carry this key's signature for this lane")
	}
	return body, nil
}

// tamperedLane is OpenLane's error for a record it refuses.
func tamperedLane(lane, why string) error {
	return workflow.Wrap(workflow.CodeTampered, &workflow.Tampered{ID: lane}, "stored delivery record refused: "+why)
}
