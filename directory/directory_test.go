package directory_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/directory"
	"github.com/example/resetbot/internal/dstest"
	"github.com/example/resetbot/workflow"
)

const (
	dirID    = "d-0123456789"
	password = "Tq7#mZ2@kP9!wX4%rB6+" // what the tests set; must never show in an error
)

// isolate keeps the developer's AWS environment out of a test: no profile,
// no endpoint, no credentials or retry settings, no instance metadata.
func isolate(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DIRECTORY_SERVICE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
		"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	} {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// options returns Options for the real SDK client against endpoint, with
// static fake credentials and fast retries.
func options(endpoint string) directory.Options {
	return directory.Options{
		DirectoryID:     dirID,
		Region:          "us-east-1",
		Endpoint:        endpoint,
		AccessKeyID:     "AKIDEXAMPLE",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		MaxAttempts:     4,
		MaxBackoff:      2 * time.Millisecond,
	}
}

func newClient(t *testing.T, o directory.Options) *directory.Client {
	t.Helper()
	c, err := directory.New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// setup starts a test directory with user jdoe and a client for it.
func setup(t *testing.T) (*dstest.Server, *directory.Client) {
	t.Helper()
	isolate(t)
	srv := dstest.New(dirID)
	t.Cleanup(srv.Close)
	srv.AddUser("jdoe")
	return srv, newClient(t, options(srv.URL()))
}

// checkNoSecret fails if err, in any rendering, contains secret.
func checkNoSecret(t *testing.T, what string, err error, secret string) {
	t.Helper()
	var we *workflow.Error
	if !errors.As(err, &we) {
		t.Errorf("%s: error %T is not a *workflow.Error", what, err)
		return
	}
	for _, s := range []string{err.Error(), we.Message, fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", we), fmt.Sprintf("%v", we.Err)} {
		if strings.Contains(strings.ToLower(s), strings.ToLower(secret)) {
			t.Errorf("%s: the password leaked into the error: %s", what, s)
		}
	}
}

func TestResetPasswordSuccess(t *testing.T) {
	srv, c := setup(t)
	pw, err := directory.NewPasswords().New(20, workflow.Account{UserName: "jdoe", DisplayName: "Doe, Jane"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ResetPassword(context.Background(), "jdoe", pw); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if got, ok := srv.Password("jdoe"); !ok || got != pw {
		t.Errorf("directory has %q, %v; want the generated password", got, ok)
	}
	calls := srv.ResetCalls()
	if len(calls) != 1 || calls[0].DirectoryID != dirID || calls[0].UserName != "jdoe" || calls[0].NewPassword != pw || calls[0].Status != 200 {
		t.Errorf("calls = %+v", calls)
	}
}

func TestErrorCodes(t *testing.T) {
	cases := []struct {
		exception string
		code      workflow.Code
		calls     int // attempts made with MaxAttempts 4
	}{
		{"UserDoesNotExistException", workflow.CodeUserDoesNotExist, 1},
		{"InvalidPasswordException", workflow.CodeInvalidPassword, 1},
		{"DirectoryUnavailableException", workflow.CodeDirectoryUnavailable, 4},
		{"UnsupportedOperationException", workflow.CodeUnsupportedOperation, 1},
		{"EntityDoesNotExistException", workflow.CodeDirectoryDoesNotExist, 1},
		{"ClientException", workflow.CodeDirectoryClient, 1},
		{"ServiceException", workflow.CodeDirectoryService, 4},
		{"ThrottlingException", workflow.CodeDirectoryThrottled, 4},
		{"TooManyRequestsException", workflow.CodeDirectoryThrottled, 4},
		{"RequestLimitExceeded", workflow.CodeDirectoryThrottled, 4},
		{"AccessDeniedException", workflow.CodeDirectoryAccessDenied, 1},
		{"UnauthorizedOperation", workflow.CodeDirectoryAccessDenied, 1},
		{"UnrecognizedClientException", workflow.CodeDirectoryAccessDenied, 1},
		{"ExpiredTokenException", workflow.CodeDirectoryAccessDenied, 1},
		{"SomethingNewException", workflow.CodeDirectoryClient, 1},
	}
	for _, tc := range cases {
		t.Run(tc.exception, func(t *testing.T) {
			srv, c := setup(t)
			srv.FailUser("jdoe", tc.exception)
			err := c.ResetPassword(context.Background(), "jdoe", password)
			if got := workflow.ErrorCode(err); got != tc.code {
				t.Fatalf("code %q, want %q (%v)", got, tc.code, err)
			}
			var we *workflow.Error
			errors.As(err, &we)
			for _, want := range []string{"ResetUserPassword", `"jdoe"`, dirID, tc.exception, "request ID 0000"} {
				if !strings.Contains(we.Message, want) {
					t.Errorf("message %q lacks %q", we.Message, want)
				}
			}
			if tc.calls > 1 && !strings.Contains(we.Message, fmt.Sprintf("after %d attempts", tc.calls)) {
				t.Errorf("message %q does not say how many attempts", we.Message)
			}
			if n := len(srv.ResetCalls()); n != tc.calls {
				t.Errorf("%d calls, want %d", n, tc.calls)
			}
			checkNoSecret(t, tc.exception, err, password)
		})
	}
}

// TestRealCauses reaches the codes through the directory's own checks rather
// than injected failures.
func TestRealCauses(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()

	err := c.ResetPassword(ctx, "nobody", password)
	if workflow.ErrorCode(err) != workflow.CodeUserDoesNotExist {
		t.Errorf("unknown user: %v", err)
	}
	err = c.ResetPassword(ctx, "jdoe", "xxjdoexx1A!")
	if workflow.ErrorCode(err) != workflow.CodeInvalidPassword {
		t.Errorf("password with the user name: %v", err)
	}
	checkNoSecret(t, "policy", err, "xxjdoexx1A!")

	other := options(srv.URL())
	other.DirectoryID = "d-abcdefabcd"
	err = newClient(t, other).ResetPassword(ctx, "jdoe", password)
	if workflow.ErrorCode(err) != workflow.CodeDirectoryDoesNotExist || !strings.Contains(err.Error(), "DIRECTORY_ID") {
		t.Errorf("unknown directory: %v", err)
	}
	if n := len(srv.ResetCalls()); n != 3 {
		t.Errorf("%d calls, want 3 (no retries)", n)
	}
}

func TestRetryDirectoryUnavailable(t *testing.T) {
	srv, c := setup(t)
	srv.FailNext("DirectoryUnavailableException", 2)
	if err := c.ResetPassword(context.Background(), "jdoe", password); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	calls := srv.ResetCalls()
	if len(calls) != 3 || calls[0].Exception != "DirectoryUnavailableException" || calls[1].Exception != "DirectoryUnavailableException" || calls[2].Status != 200 {
		t.Errorf("calls = %+v", calls)
	}
	for _, call := range calls {
		if call.NewPassword != password {
			t.Errorf("a retry sent another password")
		}
	}
	if got, _ := srv.Password("jdoe"); got != password {
		t.Errorf("password not set")
	}
}

func TestRetryServiceException(t *testing.T) {
	srv, c := setup(t)
	srv.FailNext("ServiceException", 1)
	if err := c.ResetPassword(context.Background(), "jdoe", password); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if n := len(srv.ResetCalls()); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestInvalidPasswordNotRetried(t *testing.T) {
	srv, c := setup(t)
	srv.SetMinLength(21)
	p := directory.NewPasswords()
	acct := workflow.Account{UserName: "jdoe"}
	short, _ := p.New(20, acct)
	err := c.ResetPassword(context.Background(), "jdoe", short)
	if workflow.ErrorCode(err) != workflow.CodeInvalidPassword {
		t.Fatalf("20 characters: %v", err)
	}
	checkNoSecret(t, "short", err, short)
	if n := len(srv.ResetCalls()); n != 1 {
		t.Errorf("%d calls, want 1 (InvalidPasswordException is not retried)", n)
	}
	long, _ := p.New(32, acct)
	if err := c.ResetPassword(context.Background(), "jdoe", long); err != nil {
		t.Errorf("32 characters: %v", err)
	}
}

func TestInputRefusedBeforeAnyCall(t *testing.T) {
	srv, c := setup(t)
	for _, name := range []string{"", " jdoe", "jdoe ", "j@doe", `dom\jdoe`, "a/b", "a,b", "x*", "a\tb", strings.Repeat("a", 65), "\xff"} {
		err := c.ResetPassword(context.Background(), name, password)
		if workflow.ErrorCode(err) != workflow.CodeInvalidUserName {
			t.Errorf("user name %q: %v", name, err)
		}
		checkNoSecret(t, "user name", err, password)
	}
	for _, pw := range []string{"", strings.Repeat("Aa1!", 32)} {
		err := c.ResetPassword(context.Background(), "jdoe", pw)
		if workflow.ErrorCode(err) != workflow.CodeInvalidPassword {
			t.Errorf("password of %d characters: %v", len(pw), err)
		}
		if pw != "" {
			checkNoSecret(t, "long password", err, pw)
		}
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d calls made, want none", n)
	}
}

func TestContextDeadline(t *testing.T) {
	srv, c := setup(t)
	srv.SetDelay(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.ResetPassword(ctx, "jdoe", password)
	// The request went out: AWS may have set the password.
	if workflow.ErrorCode(err) != workflow.CodeDirectoryUncertain || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "deadline") || !strings.Contains(err.Error(), "may or may not have changed") {
		t.Errorf("message %q does not say why", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
	checkNoSecret(t, "deadline", err, password)
}

func TestUnreachable(t *testing.T) {
	isolate(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := newClient(t, options(url))
	err := c.ResetPassword(context.Background(), "jdoe", password)
	if workflow.ErrorCode(err) != workflow.CodeDirectoryUnavailable || !strings.Contains(err.Error(), "could not reach") {
		t.Errorf("err = %v", err)
	}
	checkNoSecret(t, "unreachable", err, password)
}

func TestNoCredentials(t *testing.T) {
	srv, _ := setup(t)
	o := options(srv.URL())
	o.AccessKeyID, o.SecretAccessKey = "", ""
	err := newClient(t, o).ResetPassword(context.Background(), "jdoe", password)
	if workflow.ErrorCode(err) != workflow.CodeDirectoryAccessDenied || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("err = %v", err)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d calls made without credentials", n)
	}
	checkNoSecret(t, "credentials", err, password)
}

// TestPasswordNeverInErrors drives every error path with a server that
// repeats the password wherever it can.
func TestPasswordNeverInErrors(t *testing.T) {
	exceptions := []string{
		"UserDoesNotExistException", "InvalidPasswordException", "DirectoryUnavailableException",
		"UnsupportedOperationException", "EntityDoesNotExistException", "ClientException",
		"ServiceException", "ThrottlingException", "AccessDeniedException", "OddException",
	}
	for _, exc := range exceptions {
		srv, c := setup(t)
		srv.EchoPassword(true)
		srv.FailUser("jdoe", exc)
		err := c.ResetPassword(context.Background(), "jdoe", password)
		if err == nil {
			t.Fatalf("%s: no error", exc)
		}
		if !strings.Contains(err.Error(), exc) {
			t.Errorf("%s: the redacted message lost the exception: %v", exc, err)
		}
		checkNoSecret(t, exc, err, password)
	}

	// Hand-made hostile answers: the password in the error type, in a body
	// that is not JSON, in mixed case, and cut across a long message.
	hostile := []struct {
		name    string
		status  int
		headers map[string]string
		body    string
	}{
		{"password as error type", 400, nil, `{"__type":"com.amazonaws.directoryservice#` + password + `","Message":"x"}`},
		{"password in header type", 400, map[string]string{"X-Amzn-ErrorType": password}, `{}`},
		{"not JSON", 400, nil, `<html>` + password + `</html>`},
		{"success body not JSON", 200, nil, `oops ` + password},
		{"upper-cased", 400, nil, `{"__type":"ClientException","Message":"bad ` + strings.ToUpper(password) + `"}`},
		{"long message", 400, nil, `{"__type":"ClientException","Message":"` + strings.Repeat("x", 290) + password + `"}`},
		{"request ID", 500, map[string]string{"X-Amzn-RequestId": password}, `{"__type":"ServiceException","Message":"m"}`},
	}
	for _, h := range hostile {
		isolate(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range h.headers {
				w.Header().Set(k, v)
			}
			w.WriteHeader(h.status)
			fmt.Fprint(w, h.body)
		}))
		err := newClient(t, options(srv.URL)).ResetPassword(context.Background(), "jdoe", password)
		srv.Close()
		if err == nil {
			t.Errorf("%s: no error", h.name)
			continue
		}
		checkNoSecret(t, h.name, err, password)
	}
}

func TestDescribe(t *testing.T) {
	srv, c := setup(t)
	info, err := c.Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	want := directory.Info{ID: dirID, Name: "corp.example.com", ShortName: "CORP", Type: "MicrosoftAD", Stage: "Active"}
	if info != want {
		t.Errorf("info = %+v, want %+v", info, want)
	}

	other := options(srv.URL())
	other.DirectoryID = "d-abcdefabcd"
	_, err = newClient(t, other).Describe(context.Background())
	if workflow.ErrorCode(err) != workflow.CodeDirectoryDoesNotExist {
		t.Errorf("unknown directory: %v", err)
	}

	srv.FailNextOp(dstest.OpDescribeDirectories, "AccessDeniedException", 1)
	_, err = c.Describe(context.Background())
	if workflow.ErrorCode(err) != workflow.CodeDirectoryAccessDenied || !strings.Contains(err.Error(), "ds:DescribeDirectories") {
		t.Errorf("access denied: %v", err)
	}
}

// TestEndpointFromEnvironment checks that config.LoadDefaultConfig and the
// client honour AWS_ENDPOINT_URL_DIRECTORY_SERVICE (and AWS_ENDPOINT_URL)
// when Options.Endpoint is empty.
func TestEndpointFromEnvironment(t *testing.T) {
	for _, env := range []string{"AWS_ENDPOINT_URL_DIRECTORY_SERVICE", "AWS_ENDPOINT_URL"} {
		t.Run(env, func(t *testing.T) {
			srv, _ := setup(t)
			t.Setenv(env, srv.URL())
			c := newClient(t, options(""))
			if _, err := c.Describe(context.Background()); err != nil {
				t.Fatalf("Describe through %s: %v", env, err)
			}
			if n := len(srv.Calls()); n != 1 {
				t.Errorf("%d calls reached the server, want 1", n)
			}
		})
	}
}

// TestMaxAttemptsFromEnvironment checks that AWS_MAX_ATTEMPTS applies when
// Options.MaxAttempts is 0.
func TestMaxAttemptsFromEnvironment(t *testing.T) {
	srv, _ := setup(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
	o := options(srv.URL())
	o.MaxAttempts = 0
	srv.FailUser("jdoe", "DirectoryUnavailableException")
	newClient(t, o).ResetPassword(context.Background(), "jdoe", password)
	if n := len(srv.ResetCalls()); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	isolate(t)
	bad := map[string]func(*directory.Options){
		"directory ID":       func(o *directory.Options) { o.DirectoryID = "d-ABC" },
		"endpoint":           func(o *directory.Options) { o.Endpoint = "localhost:4566" },
		"key without secret": func(o *directory.Options) { o.SecretAccessKey = "" },
		"no region":          func(o *directory.Options) { o.Region = "" },
		"negative attempts":  func(o *directory.Options) { o.MaxAttempts = -1 },
	}
	for name, mod := range bad {
		o := options("http://127.0.0.1:1")
		mod(&o)
		_, err := directory.New(context.Background(), o)
		if workflow.ErrorCode(err) != workflow.CodeDirectoryMisconfigured {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), o.SecretAccessKey) && o.SecretAccessKey != "" {
			t.Errorf("%s: the secret key leaked: %v", name, err)
		}
	}
	t.Setenv("AWS_REGION", "eu-west-1")
	o := options("")
	o.Region = ""
	if _, err := directory.New(context.Background(), o); err != nil {
		t.Errorf("region from AWS_REGION: %v", err)
	}
}

// TestDescribeWordsReadOnly: DescribeDirectories changes nothing, so its
// errors never speak of a password that may have changed, nor of resets.
func TestDescribeWordsReadOnly(t *testing.T) {
	srv, c := setup(t)
	srv.SetDelay(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Describe(ctx)
	if workflow.ErrorCode(err) != workflow.CodeDirectoryUnavailable || !strings.Contains(err.Error(), "no answer from Directory Service before the deadline") {
		t.Errorf("deadline: %v", err)
	}
	srv.SetDelay(0)
	srv.FailNextOp(dstest.OpDescribeDirectories, "ServiceException", 4)
	_, err2 := c.Describe(context.Background())
	if workflow.ErrorCode(err2) != workflow.CodeDirectoryService {
		t.Errorf("service exception: %v", err2)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err3 := newClient(t, options(dead.URL)).Describe(context.Background())
	if workflow.ErrorCode(err3) != workflow.CodeDirectoryUnavailable || !strings.Contains(err3.Error(), "could not reach Directory Service") {
		t.Errorf("unreachable: %v", err3)
	}
	for _, e := range []error{err, err2, err3} {
		if e == nil {
			continue
		}
		for _, reset := range []string{"password", "reset", "changed"} {
			if strings.Contains(strings.ToLower(e.Error()), reset) {
				t.Errorf("a read-only call's error speaks of %q: %v", reset, e)
			}
		}
	}
}
