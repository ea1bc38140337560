// Package directory is the AWS Directory Service adapter of the bot: it
// resets passwords with ResetUserPassword (workflow.Directory), describes the
// configured directory for the doctor command, and makes temporary passwords
// (workflow.Passwords).
//
// Every error it returns is a *workflow.Error whose Code names the cause and
// whose Message is one operator line that never contains the password.
package directory

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/directoryservice"
	"github.com/aws/smithy-go/logging"

	"github.com/example/resetbot/workflow"
)

// Defaults of Options.
const (
	DefaultMaxAttempts = 4
	DefaultMaxBackoff  = 5 * time.Second

	// attemptTimeout bounds one HTTP attempt when Options.HTTPClient is nil,
	// so that a silent connection is retried instead of eating the caller's
	// whole deadline.
	attemptTimeout = 20 * time.Second
)

// Options configure a Client.
type Options struct {
	// DirectoryID is the directory to act on: "d-" and 10 hex digits.
	DirectoryID string
	// Region is the AWS region; "" means the SDK's (AWS_REGION, profile).
	Region string
	// Endpoint overrides the Directory Service endpoint (the client's
	// BaseEndpoint), e.g. from AWS_ENDPOINT_URL_DIRECTORY_SERVICE or a test
	// server. "" leaves it to the SDK, which itself honours
	// AWS_ENDPOINT_URL_DIRECTORY_SERVICE and AWS_ENDPOINT_URL.
	Endpoint string
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials;
	// when AccessKeyID is "" the SDK's default chain is used (environment,
	// profile, web identity, ECS, EC2 instance role).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// MaxAttempts is the number of attempts per call, retries included
	// (0: AWS_MAX_ATTEMPTS if set, else DefaultMaxAttempts).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts (0: DefaultMaxBackoff).
	MaxBackoff time.Duration
	// HTTPClient is optional; nil means the SDK's client with a per-attempt
	// timeout.
	HTTPClient *http.Client
	// Log receives the SDK's own warnings (which it would otherwise print
	// on stderr as raw lines); nil discards them.
	Log *slog.Logger
}

// Client calls AWS Directory Service for one directory.
type Client struct {
	api         *directoryservice.Client
	directoryID string
}

var _ workflow.Directory = (*Client)(nil)

// Info describes the configured directory (DescribeDirectories).
type Info struct {
	ID        string
	Name      string // DNS name, e.g. corp.example.com
	ShortName string // NetBIOS name, e.g. CORP
	Type      string // SimpleAD, MicrosoftAD, ADConnector or SharedMicrosoftAD
	Stage     string // Active, Creating, Impaired, ...
}

// New returns a Client configured with o. It loads the SDK's configuration
// (config.LoadDefaultConfig) but makes no call.
//
// Errors: CodeDirectoryMisconfigured, for a bad directory ID, endpoint,
// credentials pair, or retry setting, a missing region, or an SDK
// configuration that cannot be loaded.
func New(ctx context.Context, o Options) (*Client, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx, o.loadOptions()...)
	if err != nil {
		return nil, misconfigured("could not load the AWS SDK configuration: %v", err)
	}
	if cfg.Region == "" {
		return nil, misconfigured("no AWS region: set AWS_REGION")
	}
	if cfg.Credentials != nil {
		cfg.Credentials = markCredentialErrors{cfg.Credentials}
	}
	maxAttempts := cmp.Or(o.MaxAttempts, max(cfg.RetryMaxAttempts, 0), DefaultMaxAttempts) // else AWS_MAX_ATTEMPTS or the profile's max_attempts
	maxBackoff := cmp.Or(o.MaxBackoff, DefaultMaxBackoff)
	api := directoryservice.NewFromConfig(cfg, func(so *directoryservice.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.Retryer = newRetryer(maxAttempts, maxBackoff)
		so.RetryMaxAttempts = 0 // already in the retryer; do not let the SDK wrap it
	})
	return &Client{api: api, directoryID: o.DirectoryID}, nil
}

func misconfigured(format string, args ...any) error {
	return workflow.Errorf(workflow.CodeDirectoryMisconfigured, format, args...)
}

// check refuses options that cannot work, before any configuration is
// loaded.
func (o Options) check() error {
	if !workflow.ValidDirectoryID(o.DirectoryID) {
		return misconfigured("directory ID %q is not valid: it must be d- followed by 10 lower-case hex digits", o.DirectoryID)
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return misconfigured("Directory Service endpoint %q is not an http(s) URL", o.Endpoint)
		}
	}
	if o.AccessKeyID != "" && o.SecretAccessKey == "" {
		return misconfigured("an AWS access key ID is set without its secret access key")
	}
	if o.MaxAttempts < 0 || o.MaxBackoff < 0 {
		return misconfigured("Directory Service retries: attempts (%d) and backoff (%s) must not be negative", o.MaxAttempts, o.MaxBackoff)
	}
	return nil
}

// loadOptions are the SDK configuration options o asks for.
func (o Options) loadOptions() []func(*config.LoadOptions) error {
	var load []func(*config.LoadOptions) error
	if o.Region != "" {
		load = append(load, config.WithRegion(o.Region))
	}
	if o.AccessKeyID != "" {
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)))
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	load = append(load, config.WithLogger(logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "AWS SDK: "+fmt.Sprintf(format, v...))
	})))
	if o.HTTPClient != nil {
		return append(load, config.WithHTTPClient(o.HTTPClient))
	}
	return append(load, config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(attemptTimeout)))
}

// DirectoryID returns the ID of the directory the client acts on.
func (c *Client) DirectoryID() string { return c.directoryID }

// ResetPassword sets the password of userName with ResetUserPassword. It
// checks userName (workflow.ValidateUserName) and the password length (1 to
// 127 characters) before any call. Transient failures (5xx, throttling,
// DirectoryUnavailableException, ServiceException, network) are retried; the
// request is idempotent since every attempt sets the same password.
//
// Errors: CodeInvalidUserName, CodeUserDoesNotExist, CodeInvalidPassword,
// CodeDirectoryUnavailable, CodeUnsupportedOperation,
// CodeDirectoryDoesNotExist, CodeDirectoryClient, CodeDirectoryService,
// CodeDirectoryThrottled, CodeDirectoryAccessDenied. The password is never
// part of an error.
func (c *Client) ResetPassword(ctx context.Context, userName, password string) error {
	if err := workflow.ValidateUserName(userName); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(password); !utf8.ValidString(password) || n < 1 || n > 127 {
		return workflow.Errorf(workflow.CodeInvalidPassword,
			"refused to reset the password of %q: the new password has %d characters, and the API accepts 1 to 127", userName, n)
	}
	_, err := c.api.ResetUserPassword(ctx, &directoryservice.ResetUserPasswordInput{
		DirectoryId: aws.String(c.directoryID),
		UserName:    aws.String(userName),
		NewPassword: aws.String(password),
	})
	if err != nil {
		return mapError(ctx, fmt.Sprintf("ResetUserPassword of %q in %s", userName, c.directoryID), err, password, false)
	}
	return nil
}

// Describe returns the configured directory as DescribeDirectories sees it.
//
// Errors: CodeDirectoryDoesNotExist (unknown ID), CodeDirectoryAccessDenied,
// CodeDirectoryThrottled, CodeDirectoryUnavailable, CodeDirectoryClient,
// CodeDirectoryService.
func (c *Client) Describe(ctx context.Context) (Info, error) {
	out, err := c.api.DescribeDirectories(ctx, &directoryservice.DescribeDirectoriesInput{
		DirectoryIds: []string{c.directoryID},
	})
	if err != nil {
		return Info{}, mapError(ctx, "DescribeDirectories of "+c.directoryID, err, "", true)
	}
	for _, d := range out.DirectoryDescriptions {
		if aws.ToString(d.DirectoryId) == c.directoryID {
			return Info{
				ID:        c.directoryID,
				Name:      aws.ToString(d.Name),
				ShortName: aws.ToString(d.ShortName),
				Type:      string(d.Type),
				Stage:     string(d.Stage),
			}, nil
		}
	}
	return Info{}, workflow.Errorf(workflow.CodeDirectoryDoesNotExist,
		"Directory Service DescribeDirectories of %s: the directory is not in the answer; check DIRECTORY_ID and the region", c.directoryID)
}

// newRetryer is the SDK's standard retryer with maxAttempts and maxBackoff
// that also retries DirectoryUnavailableException and ServiceException, and
// never retries the client exceptions of ResetUserPassword, whatever their
// HTTP status.
func newRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = maxAttempts
		so.MaxBackoff = maxBackoff
		so.Retryables = append([]retry.IsErrorRetryable{neverRetry}, so.Retryables...)
		so.Retryables = append(so.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{
			"DirectoryUnavailableException": {},
			"ServiceException":              {},
		}})
	})
}

// neverRetry refuses to retry the exceptions that another attempt cannot fix.
var neverRetry = retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
	switch apiErrorCode(err) {
	case "InvalidPasswordException", "UserDoesNotExistException", "UnsupportedOperationException",
		"EntityDoesNotExistException", "ClientException":
		return aws.FalseTernary
	}
	return aws.UnknownTernary
})

// markCredentialErrors marks the errors of a credentials provider, so that
// they map to CodeDirectoryAccessDenied whatever the provider.
type markCredentialErrors struct{ aws.CredentialsProvider }

// Retrieve returns the provider's credentials or a *credentialsError.
func (m markCredentialErrors) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err}
	}
	return c, nil
}

// credentialsError is an error of the credentials chain.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "no usable AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }
