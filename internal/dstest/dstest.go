// Package dstest is a small AWS Directory Service test server: a real HTTP
// server (httptest) that speaks the AWS JSON 1.1 protocol as the
// aws-sdk-go-v2 directoryservice client sends it, for the two operations the
// bot uses, ResetUserPassword and DescribeDirectories.
//
// It plays one directory with the users a test adds, applies the API's input
// rules and the default Active Directory password policy, records every call
// and can be told to fail or to be slow. Point the real SDK client at URL()
// (BaseEndpoint) with any static credentials.
//
// As the directory, the server legitimately sees the passwords it is sent;
// Calls and Password expose them to tests. Its error responses never contain
// a password unless a test asks for that with EchoPassword.
package dstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// TargetPrefix is the X-Amz-Target prefix of Directory Service operations.
const TargetPrefix = "DirectoryService_20150416."

// Operation names (the X-Amz-Target without TargetPrefix).
const (
	OpResetUserPassword   = "ResetUserPassword"
	OpDescribeDirectories = "DescribeDirectories"
)

// Directory describes the one directory the server plays. The JSON names are
// those of DescribeDirectories' DirectoryDescription.
type Directory struct {
	ID          string `json:"DirectoryId"`
	Name        string `json:"Name"`      // DNS name, e.g. corp.example.com
	ShortName   string `json:"ShortName"` // NetBIOS name, e.g. CORP
	Type        string `json:"Type"`      // SimpleAD, MicrosoftAD, ADConnector, SharedMicrosoftAD
	Stage       string `json:"Stage"`     // Active, Creating, Impaired, Failed, ...
	Description string `json:"Description,omitempty"`
	Edition     string `json:"Edition,omitempty"` // Standard, Enterprise
	Size        string `json:"Size,omitempty"`    // Small, Large (Simple AD, AD Connector)
}

// Policy is the password policy ResetUserPassword enforces, modelled on the
// default Active Directory policy.
type Policy struct {
	MinLength  int  // minimum number of characters (AD default 7)
	Complexity bool // at least 3 of upper, lower, digit, symbol; not the account name nor a 3+ character part of the display name
}

// DefaultPolicy is the default policy of AWS Managed Microsoft AD.
var DefaultPolicy = Policy{MinLength: 7, Complexity: true}

// Call is one request the server received.
type Call struct {
	Target      string // operation name without TargetPrefix, e.g. "ResetUserPassword" (the raw X-Amz-Target if it lacks the prefix)
	DirectoryID string // ResetUserPassword's DirectoryId, or DescribeDirectories' first DirectoryIds entry
	UserName    string
	NewPassword string // as sent: the server plays the directory and sees it
	At          time.Time
	Status      int    // HTTP status answered; 0 if the client went away first
	Exception   string // the exception answered, "" on success
}

// Server is a Directory Service test server. All methods are safe for
// concurrent use.
type Server struct {
	srv     *httptest.Server
	closing chan struct{}
	close   sync.Once

	mu        sync.Mutex
	dir       Directory
	policy    Policy
	users     map[string]string // lower-cased name -> name as added
	display   map[string]string // lower-cased name -> display name
	passwords map[string]string // lower-cased name -> password set by the last successful reset
	calls     []Call
	failNext  map[string][]string // operation -> queued exceptions
	failUser  map[string]string   // lower-cased name -> exception
	delay     time.Duration
	echo      bool
	seq       int
	backend   Backend
}

// Backend is a real directory that ResetUserPassword acts on instead of the
// server's own users and policy, e.g. a Samba AD domain controller in
// end-to-end tests. SetPassword sets user's password as ResetUserPassword
// does (and, like AWS, enables a disabled account) and returns "" on
// success or the exception to answer (UserDoesNotExistException,
// InvalidPasswordException, ...).
type Backend interface {
	SetPassword(user, password string) (exception string)
}

// SetBackend makes ResetUserPassword act on b after the API's own input
// checks; nil goes back to the server's own users.
func (s *Server) SetBackend(b Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backend = b
}

// New starts a server playing one Managed Microsoft AD directory with the ID
// directoryID, named corp.example.com (CORP), stage Active, with no users.
func New(directoryID string) *Server {
	s := &Server{
		closing: make(chan struct{}),
		dir: Directory{
			ID:        directoryID,
			Name:      "corp.example.com",
			ShortName: "CORP",
			Type:      "MicrosoftAD",
			Stage:     "Active",
			Edition:   "Standard",
		},
		policy:    DefaultPolicy,
		users:     map[string]string{},
		display:   map[string]string{},
		passwords: map[string]string{},
		failNext:  map[string][]string{},
		failUser:  map[string]string{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL returns the server's base URL, for the SDK's BaseEndpoint.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server; requests waiting on SetDelay end at once.
func (s *Server) Close() {
	s.close.Do(func() { close(s.closing) })
	s.srv.Close()
}

// Directory returns the directory the server plays.
func (s *Server) Directory() Directory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir
}

// SetDirectory replaces the directory the server plays (its ID included),
// e.g. to test a Simple AD, an Impaired stage or an AD Connector.
func (s *Server) SetDirectory(d Directory) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir = d
}

// SetPolicy replaces the password policy (DefaultPolicy to start with).
func (s *Server) SetPolicy(p Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
}

// SetMinLength sets the policy's minimum password length, e.g. 21 to refuse
// a 20-character password with InvalidPasswordException but accept a longer
// one.
func (s *Server) SetMinLength(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy.MinLength = n
}

// AddUser adds a user. Only added users exist; names match
// case-insensitively, like sAMAccountName in AD.
func (s *Server) AddUser(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(name)] = name
}

// SetDisplayName sets the display name of an added user, whose 3+ character
// parts the password policy then refuses.
func (s *Server) SetDisplayName(user, displayName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.display[strings.ToLower(user)] = displayName
}

// Calls returns every call received so far, in order of arrival.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// ResetCalls returns the ResetUserPassword calls received so far, in order.
func (s *Server) ResetCalls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Target == OpResetUserPassword {
			out = append(out, c)
		}
	}
	return out
}

// Password returns the password that the last successful reset set for user.
func (s *Server) Password(user string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.passwords[strings.ToLower(user)]
	return p, ok
}

// FailNext makes the next n ResetUserPassword calls fail with exception
// (e.g. "DirectoryUnavailableException", "ThrottlingException",
// "AccessDeniedException"), before any other check. Calls queue up:
// FailNext(a, 2) then FailNext(b, 1) fails two calls with a, then one with b.
func (s *Server) FailNext(exception string, n int) {
	s.FailNextOp(OpResetUserPassword, exception, n)
}

// FailNextOp is FailNext for any operation, e.g. OpDescribeDirectories.
func (s *Server) FailNextOp(op, exception string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext[op] = append(s.failNext[op], exception)
	}
}

// FailUser makes every reset of user fail with exception (after the input
// checks); "" removes the failure.
func (s *Server) FailUser(user, exception string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exception == "" {
		delete(s.failUser, strings.ToLower(user))
		return
	}
	s.failUser[strings.ToLower(user)] = exception
}

// SetDelay makes every call wait d before it is handled. A call whose client
// gives up meanwhile is recorded with Status 0 and has no effect.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// EchoPassword makes the server misbehave for leak tests: while on, every
// error answer to ResetUserPassword repeats the submitted NewPassword in its
// message, its request-ID header and an extra body field, so that a test can
// prove that the client never passes it on.
func (s *Server) EchoPassword(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echo = on
}

// apiError is an exception to answer.
type apiError struct {
	exception string
	message   string
}

// HTTPStatus returns the HTTP status AWS uses for an exception: 500 for
// ServiceException, 503 for ServiceUnavailable, 400 for the others.
func HTTPStatus(exception string) int {
	switch exception {
	case "ServiceException", "InternalFailure", "InternalServerError":
		return http.StatusInternalServerError
	case "ServiceUnavailable", "ServiceUnavailableException":
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// messages are the canned messages of the exceptions, modelled on AWS's.
var messages = map[string]string{
	"ClientException":               "A client exception has occurred.",
	"DirectoryUnavailableException": "The specified directory is unavailable or could not be found.",
	"EntityDoesNotExistException":   "The specified entity could not be found.",
	"InvalidPasswordException":      "The new password provided by the user does not meet the password complexity requirements defined in your directory.",
	"ServiceException":              "An exception has occurred in Directory Service.",
	"UnsupportedOperationException": "The operation is not supported for this user.",
	"UserDoesNotExistException":     "The user provided a username that does not exist in your directory.",
	"ThrottlingException":           "Rate exceeded",
	"AccessDeniedException":         "User is not authorized to perform: ds:ResetUserPassword on resource: directory",
}

func fail(exception string) *apiError {
	msg, ok := messages[exception]
	if !ok {
		msg = exception + " (injected by dstest)"
	}
	return &apiError{exception: exception, message: msg}
}

// serve handles one request: it checks the envelope, records the call, waits
// for the delay, and answers.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	target := r.Header.Get("X-Amz-Target")
	op, found := strings.CutPrefix(target, TargetPrefix)

	var in struct {
		DirectoryID  string   `json:"DirectoryId"`
		UserName     string   `json:"UserName"`
		NewPassword  string   `json:"NewPassword"`
		DirectoryIDs []string `json:"DirectoryIds"`
	}
	jsonErr := json.Unmarshal(body, &in)

	if !found {
		op = target // recorded as sent
	}
	call := Call{Target: op, DirectoryID: in.DirectoryID, UserName: in.UserName, NewPassword: in.NewPassword, At: at}
	if call.DirectoryID == "" && len(in.DirectoryIDs) > 0 {
		call.DirectoryID = in.DirectoryIDs[0]
	}
	s.mu.Lock()
	s.seq++
	requestID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
	idx := len(s.calls)
	s.calls = append(s.calls, call)
	delay := s.delay
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // Status stays 0
		case <-s.closing:
			return
		}
	}

	var (
		out  any
		aerr *apiError
	)
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		aerr = &apiError{"UnknownOperationException", "Only POST / is supported."}
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1"):
		aerr = &apiError{"SerializationException", "Content-Type must be application/x-amz-json-1.1."}
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		aerr = &apiError{"MissingAuthenticationTokenException", "Request is missing Authentication Token"}
	case !found:
		aerr = &apiError{"UnknownOperationException", "Missing or unknown X-Amz-Target."}
	case jsonErr != nil:
		aerr = &apiError{"SerializationException", "The request body is not valid JSON."}
	case op == OpResetUserPassword:
		aerr = s.resetUserPassword(in.DirectoryID, in.UserName, in.NewPassword)
		out = struct{}{}
	case op == OpDescribeDirectories:
		out, aerr = s.describeDirectories(in.DirectoryIDs)
	default:
		aerr = &apiError{"UnknownOperationException", "dstest does not implement " + op + "."}
	}

	s.mu.Lock()
	echo := s.echo && op == OpResetUserPassword && in.NewPassword != ""
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	status := http.StatusOK
	var payload []byte
	if aerr != nil {
		status = HTTPStatus(aerr.exception)
		msg := aerr.message
		if echo {
			msg += " (you sent " + in.NewPassword + ")"
			requestID += "-" + in.NewPassword
		}
		w.Header().Set("X-Amzn-ErrorType", aerr.exception+":http://internal.amazon.com/coral/com.amazonaws.directoryservice/")
		e := map[string]string{"__type": "com.amazonaws.directoryservice#" + aerr.exception, "Message": msg}
		if echo {
			e["NewPassword"] = in.NewPassword
		}
		payload, _ = json.Marshal(e)
	} else {
		payload, _ = json.Marshal(out)
	}
	w.Header().Set("X-Amzn-RequestId", requestID)
	w.WriteHeader(status)
	w.Write(payload)

	s.mu.Lock()
	s.calls[idx].Status = status
	if aerr != nil {
		s.calls[idx].Exception = aerr.exception
	}
	s.mu.Unlock()
}

var directoryIDPattern = regexp.MustCompile(`^d-[0-9a-f]{10}$`)

// forbiddenUserNameChars are the characters the API refuses in UserName.
const forbiddenUserNameChars = `\"/[]:;|=,+*?<>@`

// resetUserPassword applies ResetUserPassword's checks in the order the
// service does and sets the password on success.
func (s *Server) resetUserPassword(dirID, user, password string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()

	if q := s.failNext[OpResetUserPassword]; len(q) > 0 {
		s.failNext[OpResetUserPassword] = q[1:]
		return fail(q[0])
	}

	// The API's own input constraints. The messages name the field, never
	// its value.
	var bad []string
	if !directoryIDPattern.MatchString(dirID) {
		bad = append(bad, "Value at 'directoryId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^d-[0-9a-f]{10}$")
	}
	if n := utf8.RuneCountInString(user); n < 1 || n > 64 || strings.ContainsAny(user, forbiddenUserNameChars) {
		bad = append(bad, "Value at 'userName' failed to satisfy constraint: Member must have length between 1 and 64 and must not contain any of \\\"/[]:;|=,+*?<>@")
	}
	if n := utf8.RuneCountInString(password); n < 1 || n > 127 {
		bad = append(bad, "Value at 'newPassword' failed to satisfy constraint: Member must have length between 1 and 127")
	}
	if len(bad) > 0 {
		return &apiError{"ClientException", fmt.Sprintf("%d validation error(s) detected: %s", len(bad), strings.Join(bad, "; "))}
	}

	if dirID != s.dir.ID {
		return &apiError{"EntityDoesNotExistException", "Directory " + dirID + " does not exist."}
	}
	key := strings.ToLower(user)
	if exc, ok := s.failUser[key]; ok {
		return fail(exc)
	}
	if s.backend != nil {
		if exc := s.backend.SetPassword(user, password); exc != "" {
			return fail(exc)
		}
		s.passwords[key] = password
		return nil
	}
	if _, ok := s.users[key]; !ok {
		return fail("UserDoesNotExistException")
	}
	if !s.policy.accepts(password, user, s.display[key]) {
		return fail("InvalidPasswordException")
	}
	s.passwords[key] = password
	return nil
}

// describeDirectories answers DescribeDirectories.
func (s *Server) describeDirectories(ids []string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.failNext[OpDescribeDirectories]; len(q) > 0 {
		s.failNext[OpDescribeDirectories] = q[1:]
		return nil, fail(q[0])
	}
	for _, id := range ids {
		if !directoryIDPattern.MatchString(id) {
			return nil, &apiError{"InvalidParameterException", "Invalid directory identifier " + id + "."}
		}
		if id != s.dir.ID {
			return nil, &apiError{"EntityDoesNotExistException", "Directory " + id + " does not exist."}
		}
	}
	return map[string][]Directory{"DirectoryDescriptions": {s.dir}}, nil
}

// accepts reports whether password meets p for the account user with the
// given display name.
func (p Policy) accepts(password, user, displayName string) bool {
	if utf8.RuneCountInString(password) < p.MinLength {
		return false
	}
	if !p.Complexity {
		return true
	}
	var upper, lower, digit, symbol int
	for _, c := range password {
		switch {
		case unicode.IsUpper(c):
			upper = 1
		case unicode.IsLower(c):
			lower = 1
		case unicode.IsDigit(c):
			digit = 1
		case !unicode.IsLetter(c):
			symbol = 1
		}
	}
	if upper+lower+digit+symbol < 3 {
		return false
	}
	lp := strings.ToLower(password)
	if utf8.RuneCountInString(user) >= 3 && strings.Contains(lp, strings.ToLower(user)) {
		return false
	}
	for _, tok := range DisplayNameTokens(displayName) {
		if strings.Contains(lp, strings.ToLower(tok)) {
			return false
		}
	}
	return true
}

// DisplayNameTokens returns the parts of a display name that AD's complexity
// rule refuses in a password: the display name split on , . - _ # tab and
// space, keeping parts of 3 or more characters.
func DisplayNameTokens(displayName string) []string {
	parts := strings.FieldsFunc(displayName, func(c rune) bool {
		return strings.ContainsRune(",.-_# \t", c)
	})
	var out []string
	for _, p := range parts {
		if utf8.RuneCountInString(p) >= 3 {
			out = append(out, p)
		}
	}
	return out
}
