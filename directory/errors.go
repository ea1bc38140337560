package directory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/directoryservice/types"
	"github.com/aws/smithy-go"

	"github.com/example/resetbot/workflow"
)

// maxDetail caps how much of a server-provided text goes into a message.
const maxDetail = 300

// exceptionCodes maps the modelled exceptions of ResetUserPassword and
// DescribeDirectories, matched with errors.As, to codes and operator hints.
var exceptionCodes = []struct {
	is   func(error) bool
	code workflow.Code
	hint string
}{
	{isA[*types.UserDoesNotExistException], workflow.CodeUserDoesNotExist,
		"the account does not exist in the directory"},
	{isA[*types.InvalidPasswordException], workflow.CodeInvalidPassword,
		"the directory's password policy refused the new password"},
	{isA[*types.DirectoryUnavailableException], workflow.CodeDirectoryUnavailable,
		"the directory is unavailable; try again later"},
	{isA[*types.UnsupportedOperationException], workflow.CodeUnsupportedOperation,
		"the directory does not allow resetting this account (protected group, or outside the directory's managed OU)"},
	{isA[*types.EntityDoesNotExistException], workflow.CodeDirectoryDoesNotExist,
		"check DIRECTORY_ID and the AWS region"},
	{isA[*types.ClientException], workflow.CodeDirectoryClient, ""},
	{isA[*types.ServiceException], workflow.CodeDirectoryService,
		"Directory Service had an internal error"},
}

// throttlingCodes are the error codes of throttling, beyond the SDK's own
// list (retry.DefaultThrottleErrorCodes).
var throttlingCodes = map[string]bool{
	"ThrottlingException": true, "Throttling": true, "TooManyRequestsException": true,
	"RequestLimitExceeded": true, "RequestThrottled": true, "RequestThrottledException": true,
	"ThrottledException": true, "SlowDown": true, "LimitExceededException": true,
}

// accessDeniedCodes are the error codes of IAM and request signing failures.
var accessDeniedCodes = map[string]bool{
	"AccessDeniedException": true, "AccessDenied": true, "UnauthorizedOperation": true,
	"UnauthorizedException": true, "NotAuthorized": true, "AuthFailure": true,
	"UnrecognizedClientException": true, "InvalidClientTokenId": true,
	"InvalidSignatureException": true, "SignatureDoesNotMatch": true,
	"IncompleteSignature": true, "MissingAuthenticationToken": true,
	"MissingAuthenticationTokenException": true, "ExpiredToken": true,
	"ExpiredTokenException": true, "RequestExpired": true,
	"InvalidAccessKeyId": true, "OptInRequired": true,
}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// apiErrorCode returns the AWS error code in err's chain, or "".
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// mapError turns an SDK error from the operation described by what into a
// *workflow.Error with one operator line: the exception, AWS's message, HTTP
// status, request ID, attempts and a hint. secret, if not empty, is removed
// from everything the server or the SDK said; should the line still contain
// it (say, across pieces), the server-provided text is left out altogether.
//
// A call that changes nothing (readOnly: DescribeDirectories) is described
// as such: a timeout or a broken connection leaves nothing uncertain there,
// and no hint speaks of resetting.
func mapError(ctx context.Context, what string, err error, secret string, readOnly bool) error {
	code, line := classify(ctx, err, redactor(secret))
	if readOnly {
		code, line = classifyRead(ctx, err, code, line, redactor(secret))
	}
	msg := "Directory Service " + what + " failed: " + line
	if secret != "" {
		if workflow.Redact(msg, secret) != msg {
			msg = "Directory Service " + what + " failed with " + string(code) +
				" (details withheld: the answer repeated the password)"
		}
	}
	e := &workflow.Error{Code: code, Message: msg}
	// Keep context errors inspectable with errors.Is; they hold no secret.
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e.Err = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		e.Err = context.Canceled
	}
	return e
}

// classify returns the code of err and its description, with every text
// that comes from the server or the SDK passed through clean.
func classify(ctx context.Context, err error, clean func(string) string) (workflow.Code, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, hint := apiCode(err, ae)
		line := clean(ae.ErrorCode())
		if m := clean(ae.ErrorMessage()); m != "" {
			line += ": " + m
		}
		line += " (" + strings.Join(responseFacts(err, clean), ", ") + ")"
		if hint != "" {
			line += "; " + hint
		}
		return code, line
	}

	// The rest are not answers from the service: describe the cause without
	// the SDK's "operation error Directory Service: Op," prefix, which the
	// caller's line already says.
	text := err.Error()
	var oe *smithy.OperationError
	if errors.As(err, &oe) && oe.Err != nil {
		text = oe.Err.Error()
	}
	var ce *credentialsError
	var ue *url.Error
	var ne net.Error
	var de *smithy.DeserializationError
	switch {
	case errors.As(err, &ce):
		// The providers' own words can hold paths, profile names or
		// partial keys: a fixed text instead.
		return workflow.CodeDirectoryAccessDenied, "no usable AWS credentials: the SDK's chain (environment, profile, web identity, container or instance role) gave none" +
			"; give the bot an IAM role or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY allowed to call Directory Service"
	case notSent(err):
		return workflow.CodeDirectoryUnavailable, "could not reach Directory Service, so nothing was changed: " + clean(text)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return workflow.CodeDirectoryUncertain, "no answer before the deadline, so the password may or may not have changed (" + clean(text) + ")"
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return workflow.CodeDirectoryUncertain, "the call was cancelled before Directory Service answered, so the password may or may not have changed"
	case errors.As(err, &ue), errors.As(err, &ne):
		return workflow.CodeDirectoryUncertain, "the connection to Directory Service failed mid-call, so the password may or may not have changed: " + clean(text)
	case errors.As(err, &de):
		return workflow.CodeDirectoryService, "unreadable answer from Directory Service: " + clean(text)
	}
	return workflow.CodeDirectoryUnavailable, "the call did not complete: " + clean(text)
}

// classifyRead rewords what classify said for a call that changes nothing:
// no "may or may not have changed", no reset wording.
func classifyRead(ctx context.Context, err error, code workflow.Code, line string, clean func(string) string) (workflow.Code, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return code, line // the service answered: its exception says it all
	}
	text := err.Error()
	var oe *smithy.OperationError
	if errors.As(err, &oe) && oe.Err != nil {
		text = oe.Err.Error()
	}
	switch {
	case code != workflow.CodeDirectoryUncertain && !notSent(err):
		return code, line
	case notSent(err):
		return code, "could not reach Directory Service: " + clean(text)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return workflow.CodeDirectoryUnavailable, "no answer from Directory Service before the deadline (" + clean(text) + ")"
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return workflow.CodeDirectoryUnavailable, "the call was cancelled before Directory Service answered"
	}
	return workflow.CodeDirectoryUnavailable, "the connection to Directory Service failed mid-call: " + clean(text)
}

// notSent reports whether err shows that the request never left: the
// connection could not be made (a DNS failure, a refused or unreachable
// address).
func notSent(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	return errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial"
}

// apiCode maps an AWS API error to a code and an operator hint.
func apiCode(err error, ae smithy.APIError) (workflow.Code, string) {
	for _, m := range exceptionCodes {
		if m.is(err) {
			return m.code, m.hint
		}
	}
	name := ae.ErrorCode()
	status := 0
	var hs interface{ HTTPStatusCode() int }
	if errors.As(err, &hs) {
		status = hs.HTTPStatusCode()
	}
	_, sdkThrottle := retry.DefaultThrottleErrorCodes[name]
	switch {
	case throttlingCodes[name] || sdkThrottle || status == 429:
		return workflow.CodeDirectoryThrottled, "Directory Service is throttling the bot's calls; try again later"
	case accessDeniedCodes[name] || status == 401 || status == 403:
		return workflow.CodeDirectoryAccessDenied,
			"the bot's IAM identity needs ds:ResetUserPassword and ds:DescribeDirectories on this directory, and valid credentials"
	case name == "DirectoryUnavailableException":
		return workflow.CodeDirectoryUnavailable, "the directory is unavailable; try again later"
	case name == "ServiceException" || status >= 500 || ae.ErrorFault() == smithy.FaultServer:
		return workflow.CodeDirectoryService, "Directory Service had an internal error"
	}
	return workflow.CodeDirectoryClient, ""
}

// responseFacts lists the HTTP status, request ID and attempts of err.
func responseFacts(err error, clean func(string) string) []string {
	var facts []string
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		if re.Response != nil {
			facts = append(facts, fmt.Sprintf("HTTP %d", re.HTTPStatusCode()))
		}
		if id := clean(re.ServiceRequestID()); id != "" {
			facts = append(facts, "request ID "+id)
		}
	}
	if !slices.ContainsFunc(facts, func(f string) bool { return strings.HasPrefix(f, "request ID ") }) {
		facts = append(facts, "no request ID")
	}
	var me *retry.MaxAttemptsError
	if errors.As(err, &me) {
		facts = append(facts, fmt.Sprintf("after %d attempts", me.Attempt))
	}
	return facts
}

// redactor returns a function that makes server-provided text fit for one
// log line: without secret (replaced before anything else, so that
// truncation cannot leave a piece of it), valid UTF-8, without control
// characters, at most maxDetail characters.
func redactor(secret string) func(string) string {
	return func(s string) string { return clean(workflow.Redact(s, secret)) }
}

// clean makes text fit for one log line: valid UTF-8, no control
// characters, at most maxDetail characters.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxDetail {
		s = string([]rune(s)[:maxDetail]) + "..."
	}
	return s
}
