package resolveapi

import (
	"log/slog"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
)

// Operations of the resolve function. It is the only function whose role
// may kms:Decrypt, so every use of a plaintext secret happens in it: the
// public callback route and the scheduled check invoke it rather than
// decrypting themselves.
const (
	OpResolve               = "resolve" // the default
	OpRefreshIfDue          = "refreshIfDue"
	OpCompleteAuthorization = "completeAuthorization"
	// OpTest checks a connection's credentials (POST /connections/{id}/test).
	OpTest = "test"
)

// Request is the resolve function's event. A bare Input (no op) resolves.
//
//	{"tenant": "t1", "connectionId": "01H…", "runId": …, "stepId": …, "workflowId": …, "site": "/sites/hr", "runOwner": "alice"}
//	{"op": "refreshIfDue", "tenant": "t1", "connectionId": "01H…", "withinSeconds": 900, "maxAgeSeconds": 86400, "secretVersion": 3}
//	{"op": "completeAuthorization", "authorization": {"state": …, "code": …, "error": …, "redirectUri": …}}
type Request struct {
	Op string `json:"op,omitempty"`
	Input
	WithinSeconds int64          `json:"withinSeconds,omitempty"`
	MaxAgeSeconds int64          `json:"maxAgeSeconds,omitempty"`
	SecretVersion int64          `json:"secretVersion,omitempty"`
	Authorization *CallbackInput `json:"authorization,omitempty"`
}

// Input is what a workflow step sends.
type Input struct {
	Tenant       string `json:"tenant"`
	ConnectionID string `json:"connectionId"`
	RunID        string `json:"runId"`
	StepID       string `json:"stepId"`
	WorkflowID   string `json:"workflowId"`
	// Site is the site the workflow runs on (a path such as /sites/hr).
	Site string `json:"site"`
	// RunOwner is the user who owns the workflow run.
	RunOwner string `json:"runOwner"`
}

// LogAttrs are the input's slog attributes (it holds no secret).
func (in Input) LogAttrs() []any {
	return []any{slog.String("tenant", in.Tenant), slog.String("connection", in.ConnectionID), slog.String("run", in.RunID),
		slog.String("step", in.StepID), slog.String("workflow", in.WorkflowID), slog.String("site", in.Site), slog.String("runOwner", in.RunOwner)}
}

// CallbackInput is the query of the request the OAuth provider redirected
// to, as the public callback passes it on (oauth.CallbackInput, which
// completes it, has the same fields).
type CallbackInput struct {
	State string `json:"state"`
	Code  string `json:"code"`
	// Error is the provider's "error" parameter (access_denied, ...).
	// error_description is deliberately not taken: it is the provider's
	// free text.
	Error string `json:"error,omitempty"`
	// RedirectURI, when set, is the URL the request arrived at (scheme,
	// host and path, no query); it must equal the one the authorization
	// was started with.
	RedirectURI string `json:"redirectUri,omitempty"`
}

// Refreshed is the outcome of a refresh.
type Refreshed struct {
	// Refreshed: this call obtained new tokens (false: not due, or another
	// instance refreshed meanwhile).
	Refreshed bool
	ExpiresAt time.Time
}

// RefreshOptions say when a refresh happens.
type RefreshOptions struct {
	// Within: refresh when the access token expires within it (at least
	// the resolver's skew).
	Within time.Duration
	// MaxAge: refresh also when the tokens were obtained at least this
	// long ago (the keep-alive of idle tokens); 0 never.
	MaxAge time.Duration
	// SecretVersion: refresh only while this is the stored secret version,
	// the one the caller found due; a newer one means someone else already
	// refreshed (0: whatever is stored).
	SecretVersion int64
}

// TestResult is what a connection test found. It never holds a secret or
// anything the target answered beyond its status.
type TestResult struct {
	OK bool `json:"ok"`
	// Code: "verified" (the host accepted the credentials), "resolved" (the
	// credentials are usable; no test path or URL is configured to check
	// them against), or why not: a resolver failure code or the target's
	// answer such as target_rejected_credentials_401.
	Code         string `json:"code"`
	Message      string `json:"message"`
	AuthFailure  bool   `json:"authFailure,omitempty"`
	ProviderCode string `json:"providerCode,omitempty"`
	Status       int    `json:"status,omitempty"` // the target's HTTP status
	Target       string `json:"target,omitempty"` // what was requested, without query
}

// TestWait is how long a caller waits for a connection test's answer: the
// test's request (httpaction.DefaultTimeout) after resolving, which may
// refresh an OAuth token (oauth.DefaultHTTPTimeout). Past it the caller
// gets resolver_unavailable (503) rather than outliving its own function
// timeout or API Gateway's 30 seconds; the connections function's Timeout
// in template.yaml exceeds it (local/sam TestContractTimeouts).
const TestWait = 25 * time.Second

// Completion is the answer to completeAuthorization.
type Completion struct {
	OK         bool                  `json:"ok"`
	Connection *AuthorizedConnection `json:"connection,omitempty"`
	Error      *ErrorBody            `json:"error,omitempty"`
}

// ErrorBody is a completed authorization's failure: the stable code, a
// safe message and the HTTP status the callback page answers with.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"status"`
}

// AuthorizedConnection is what the callback needs to render its page and
// emit the change event.
type AuthorizedConnection struct {
	Tenant        string `json:"tenant"`
	ID            string `json:"id"`
	Name          string `json:"name"`
	Status        string `json:"status"` // a connection.Status
	Version       int64  `json:"version"`
	SecretVersion int64  `json:"secretVersion"`
	User          string `json:"user"`
}

// ErrResolverUnavailable: the resolve function could not be invoked or
// answered with a function error.
var ErrResolverUnavailable = apperr.E(apperr.Unavailable, "resolver_unavailable", "the credential resolver is unavailable")
