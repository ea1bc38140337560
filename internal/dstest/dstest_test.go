package dstest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const dirID = "d-0123456789"

// post sends one raw AWS JSON 1.1 request and decodes the answer.
func post(t *testing.T, ctx context.Context, s *Server, op string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", TargetPrefix+op)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/ds/aws4_request, SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

func reset(user, pw string) map[string]string {
	return map[string]string{"DirectoryId": dirID, "UserName": user, "NewPassword": pw}
}

func TestResetUserPassword(t *testing.T) {
	s := New(dirID)
	defer s.Close()
	s.AddUser("JDoe")
	s.SetDisplayName("jdoe", "Doe, Jane")
	ctx := context.Background()

	const good = "Xy7!abcdefgh"
	cases := []struct {
		name      string
		body      map[string]string
		status    int
		exception string
	}{
		{"success, name case-insensitive", reset("jdoe", good), 200, ""},
		{"unknown user", reset("nobody", good), 400, "UserDoesNotExistException"},
		{"unknown directory", map[string]string{"DirectoryId": "d-9999999999", "UserName": "jdoe", "NewPassword": good}, 400, "EntityDoesNotExistException"},
		{"bad directory ID", map[string]string{"DirectoryId": "d-XYZ", "UserName": "jdoe", "NewPassword": good}, 400, "ClientException"},
		{"bad user name", reset("a@b", good), 400, "ClientException"},
		{"user name too long", reset(strings.Repeat("a", 65), good), 400, "ClientException"},
		{"password too long", reset("jdoe", strings.Repeat("Aa1!", 32)), 400, "ClientException"},
		{"empty password", reset("jdoe", ""), 400, "ClientException"},
		{"too short", reset("jdoe", "Aa1!"), 400, "InvalidPasswordException"},
		{"two classes", reset("jdoe", "abcdefghIJKL"), 400, "InvalidPasswordException"},
		{"contains user name", reset("jdoe", "xxJDOE1!yy"), 400, "InvalidPasswordException"},
		{"contains display name part", reset("jdoe", "Xx1!jane"), 400, "InvalidPasswordException"},
		{"three classes are enough", reset("jdoe", "abcdefgh1234!"), 200, ""},
	}
	for _, c := range cases {
		status, h, out := post(t, ctx, s, OpResetUserPassword, c.body)
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%v)", c.name, status, c.status, out)
			continue
		}
		if h.Get("X-Amzn-RequestId") == "" {
			t.Errorf("%s: no request ID", c.name)
		}
		if c.exception == "" {
			if len(out) != 0 {
				t.Errorf("%s: body %v, want {}", c.name, out)
			}
			continue
		}
		if got := out["__type"]; got != "com.amazonaws.directoryservice#"+c.exception {
			t.Errorf("%s: __type %v, want %s", c.name, got, c.exception)
		}
		if got := h.Get("X-Amzn-ErrorType"); !strings.HasPrefix(got, c.exception+":") {
			t.Errorf("%s: X-Amzn-ErrorType %q", c.name, got)
		}
		msg, _ := out["Message"].(string)
		if msg == "" || (c.body["NewPassword"] != "" && strings.Contains(msg, c.body["NewPassword"])) {
			t.Errorf("%s: message %q is empty or contains the password", c.name, msg)
		}
	}

	if pw, ok := s.Password("JDOE"); !ok || pw != "abcdefgh1234!" {
		t.Errorf("Password = %q, %v", pw, ok)
	}
	calls := s.ResetCalls()
	if len(calls) != len(cases) || calls[0].Target != OpResetUserPassword || calls[0].NewPassword != good || calls[0].Status != 200 || calls[1].Exception != "UserDoesNotExistException" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestFailures(t *testing.T) {
	s := New(dirID)
	defer s.Close()
	s.AddUser("jdoe")
	s.AddUser("admin2")
	ctx := context.Background()
	const good = "Xy7!abcdefgh"

	s.FailNext("DirectoryUnavailableException", 2)
	s.FailNext("ServiceException", 1)
	s.FailUser("admin2", "UnsupportedOperationException")
	want := []struct {
		user      string
		status    int
		exception string
	}{
		{"jdoe", 400, "DirectoryUnavailableException"},
		{"jdoe", 400, "DirectoryUnavailableException"},
		{"jdoe", 500, "ServiceException"},
		{"admin2", 400, "UnsupportedOperationException"},
		{"jdoe", 200, ""},
	}
	for i, w := range want {
		status, _, out := post(t, ctx, s, OpResetUserPassword, reset(w.user, good))
		if status != w.status || (w.exception != "" && out["__type"] != "com.amazonaws.directoryservice#"+w.exception) {
			t.Errorf("call %d: %d %v, want %d %s", i, status, out, w.status, w.exception)
		}
	}

	// EchoPassword is the one way to get the password back in an error.
	s.EchoPassword(true)
	_, h, out := post(t, ctx, s, OpResetUserPassword, reset("nobody", good))
	if msg, _ := out["Message"].(string); !strings.Contains(msg, good) || !strings.Contains(h.Get("X-Amzn-RequestId"), good) {
		t.Errorf("echo: message %q, request ID %q", msg, h.Get("X-Amzn-RequestId"))
	}
}

func TestDescribeDirectories(t *testing.T) {
	s := New(dirID)
	defer s.Close()
	ctx := context.Background()

	status, _, out := post(t, ctx, s, OpDescribeDirectories, map[string]any{"DirectoryIds": []string{dirID}})
	dirs, _ := out["DirectoryDescriptions"].([]any)
	if status != 200 || len(dirs) != 1 {
		t.Fatalf("describe: %d %v", status, out)
	}
	d := dirs[0].(map[string]any)
	if d["DirectoryId"] != dirID || d["Type"] != "MicrosoftAD" || d["Stage"] != "Active" || d["ShortName"] != "CORP" || d["Name"] != "corp.example.com" {
		t.Errorf("directory = %v", d)
	}

	status, _, out = post(t, ctx, s, OpDescribeDirectories, map[string]any{"DirectoryIds": []string{"d-9999999999"}})
	if status != 400 || out["__type"] != "com.amazonaws.directoryservice#EntityDoesNotExistException" {
		t.Errorf("unknown directory: %d %v", status, out)
	}

	dir := s.Directory()
	dir.Type, dir.Stage, dir.Description = "SimpleAD", "Impaired", "lab"
	s.SetDirectory(dir)
	_, _, out = post(t, ctx, s, OpDescribeDirectories, map[string]any{})
	d = out["DirectoryDescriptions"].([]any)[0].(map[string]any)
	if d["Type"] != "SimpleAD" || d["Stage"] != "Impaired" || d["Description"] != "lab" {
		t.Errorf("after SetDirectory: %v", d)
	}
}

func TestEnvelopeAndDelay(t *testing.T) {
	s := New(dirID)
	defer s.Close()

	// Unsigned requests are refused like AWS does.
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", TargetPrefix+OpDescribeDirectories)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("X-Amzn-ErrorType"), "MissingAuthenticationTokenException") {
		t.Errorf("unsigned: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}

	// A slow server honours the client's context, and the call is recorded
	// without effect.
	s.AddUser("jdoe")
	s.SetDelay(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if status, _, _ := post(t, ctx, s, OpResetUserPassword, reset("jdoe", "Xy7!abcdefgh")); status != 0 {
		t.Errorf("status %d, want a client timeout", status)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Errorf("the delay did not honour the context")
	}
	s.SetDelay(0)
	time.Sleep(20 * time.Millisecond) // let the handler notice
	calls := s.ResetCalls()
	if len(calls) != 1 || calls[0].Status != 0 {
		t.Errorf("calls = %+v", calls)
	}
	if _, ok := s.Password("jdoe"); ok {
		t.Error("an abandoned call set the password")
	}
}
