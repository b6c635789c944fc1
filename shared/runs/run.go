package runs

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/identity"
)

// Status is where a run stands.
type Status string

const (
	StatusRunning    Status = "running"
	StatusSuspended  Status = "suspended"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusTerminated Status = "terminated"
)

// Statuses lists every status, for validating filters.
var Statuses = []Status{StatusRunning, StatusSuspended, StatusSucceeded, StatusFailed, StatusTerminated}

// Terminal reports whether no further transition can happen.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusTerminated
}

// ReasonConnectionDeleted: the connection a run is suspended on was
// deleted; rebinding the run to another connection repairs it.
const ReasonConnectionDeleted = "connection_deleted"

// SuspensionTimeout is how long a suspended run waits to be fixed: the
// state machine's TimeoutSeconds on the suspension state.
const SuspensionTimeout = 10 * 24 * time.Hour

// MaxSuspensions is how many times a run may be suspended. The suspension
// after the last one terminates the run (reason too_many_suspensions)
// instead, so suspensions keep a run waiting for at most
// MaxSuspensions × SuspensionTimeout = 300 days, well inside the one year a
// Standard execution may last: a run resumed and suspended again and again
// still ends in a recorded state, never in a timed-out execution.
const MaxSuspensions = 30

// MaxExecutionTime is Step Functions' limit on a Standard execution.
const MaxExecutionTime = 365 * 24 * time.Hour

// Limits on a run's definition.
const (
	MaxSteps = 50
	// MaxConnections bounds the distinct connections of a run: each
	// transition also writes their usage items, in one transaction.
	MaxConnections = 20
	MaxStepIDLen   = 64
	MaxPathLen     = 2048
	MaxHeaders     = 32
	MaxRequestBody = 32 << 10
	// MaxStepsBytes bounds a run's step definitions as stored (JSON), so
	// the run item stays within DynamoDB's item limit whatever the steps.
	MaxStepsBytes = 128 << 10
	// MaxKeptHeaderValue bounds each response header value kept in a
	// step's result (the run item holds them).
	MaxKeptHeaderValue = 256
)

// ActionHTTPRequest is the one connector action: an HTTP request to the
// connection's own host.
const ActionHTTPRequest = "http.request"

// Step is one connector action of a workflow.
type Step struct {
	ID         string      `json:"id"`
	Action     string      `json:"action"`
	Connection string      `json:"connection"`
	Input      RequestSpec `json:"input"`
}

// RequestSpec is the input of an http.request step. Path is joined to the
// connection's base URL; it can never name another host.
type RequestSpec struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   map[string]string `json:"query,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// Outcome is what became of one attempt at a step.
type Outcome string

const (
	OutcomeSucceeded  Outcome = "succeeded"
	OutcomeAuthFailed Outcome = "auth_failed"
	OutcomeTransient  Outcome = "transient"
	OutcomeFailed     Outcome = "failed"
)

// StepResult is the latest attempt at a step. Body is the JSON response
// body when it fits the cap, never a credential.
type StepResult struct {
	ID      string            `json:"id"`
	Outcome Outcome           `json:"outcome"`
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	// Withheld names what the target answered but the run does not keep
	// because it held a credential ("body", "header:<Name>").
	Withheld []string  `json:"withheld,omitempty"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// Suspension says why and until when a run waits.
type Suspension struct {
	Connection   string    `json:"connection"`
	Reason       string    `json:"reason"`
	SuspendedAt  time.Time `json:"suspendedAt"`
	TerminatesAt time.Time `json:"terminatesAt"`
}

// Run is one execution of a workflow's steps.
type Run struct {
	Tenant     string
	ID         string
	WorkflowID string
	Site       string // canonical
	Owner      string
	Status     Status
	Steps      []Step
	Results    []StepResult // by step index; zero value: not run yet
	Current    int          // index of the step running or suspended on
	Suspension *Suspension
	// TaskToken is the Step Functions token of the suspension; a secret,
	// never rendered, logged or put in an event.
	TaskToken string
	// ResumeEvent is the id of the event whose delivery last resumed the
	// run: a redelivery of the same event is a no-op.
	ResumeEvent string
	// ResumeAnnounced: a resume of this suspension published Run Resumed
	// but Step Functions refused it (throttled) and the run was put back;
	// the resume that succeeds publishes no second one.
	ResumeAnnounced bool
	Reason          string // why a run failed or was terminated
	// Changes are what people did to the run's definition (rebinds),
	// oldest first, the last MaxChanges kept.
	Changes    []Change
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time

	// Suspensions counts the times the run was suspended (at most
	// MaxSuspensions).
	Suspensions int
	// SuspendAttempt is the attempt ($$.State.RetryCount) of the suspension
	// task whose token TaskToken is: a retried attempt replaces the token of
	// the attempt before it, never the other way round.
	SuspendAttempt int
}

// Change is one change someone made to a run: a rebind of its remaining
// steps from one connection to another.
type Change struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // "rebind"
	From   string    `json:"from"`
	To     string    `json:"to"`
	Steps  []string  `json:"steps"` // the step ids changed
}

// MaxChanges bounds the changes a run keeps (its item stays bounded).
const MaxChanges = 20

// Connections lists the distinct connections the run's steps use.
func (r *Run) Connections() []string {
	var out []string
	for _, s := range r.Steps {
		if !slices.Contains(out, s.Connection) {
			out = append(out, s.Connection)
		}
	}
	return out
}

// CanSee says whether the caller may see run and act on it (resume,
// terminate): its owner, owners of its site, site collection administrators
// of its collection, and tenant administrators.
func CanSee(c identity.Caller, r *Run) bool {
	if c.Tenant != r.Tenant {
		return false
	}
	return c.TenantAdmin || c.User == r.Owner || c.OwnsSite(r.Site) || c.AdministersSite(r.Site)
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// headers a step may not set: credentials come from the connection, and
// hop-by-hop or routing headers belong to the client.
var reservedHeaders = []string{"authorization", "proxy-authorization", "cookie", "host", "content-length",
	"transfer-encoding", "connection", "te", "upgrade", "x-forwarded-for", "x-forwarded-host", "forwarded"}

// ValidateSteps checks a run's steps; field paths name the offending input.
func ValidateSteps(steps []Step, extraReserved ...string) error {
	if len(steps) == 0 {
		return apperr.InvalidField("steps", "required", "a run needs at least one step")
	}
	if len(steps) > MaxSteps {
		return apperr.InvalidField("steps", "too_many_steps", "a run has at most %d steps", MaxSteps)
	}
	seen := map[string]bool{}
	for i, s := range steps {
		at := fmt.Sprintf("steps[%d]", i)
		switch {
		case s.ID == "" || len(s.ID) > MaxStepIDLen || !printable(s.ID):
			return apperr.InvalidField(at+".id", "invalid_step_id", "a step id is 1 to %d visible characters", MaxStepIDLen)
		case seen[s.ID]:
			return apperr.InvalidField(at+".id", "duplicate_step_id", "step ids must be unique")
		case s.Action != ActionHTTPRequest:
			return apperr.InvalidField(at+".action", "unknown_action", "the only action is %s", ActionHTTPRequest)
		case s.Connection == "" || len(s.Connection) > 128 || strings.ContainsAny(s.Connection, "#/\x00"):
			return apperr.InvalidField(at+".connection", "invalid_connection", "connection must be a connection id")
		}
		seen[s.ID] = true
		in := s.Input
		if !slices.Contains(methods, in.Method) {
			return apperr.InvalidField(at+".input.method", "invalid_method", "method must be one of %s", strings.Join(methods, ", "))
		}
		if !strings.HasPrefix(in.Path, "/") || strings.HasPrefix(in.Path, "//") || len(in.Path) > MaxPathLen ||
			strings.ContainsAny(in.Path, "?#\\\x00\r\n") || connection.HasDotSegment(in.Path) {
			return apperr.InvalidField(at+".input.path", "invalid_path", "path must start with / and hold no query, fragment, backslash or '.' or '..' segment (raw or percent-encoded)")
		}
		if len(in.Headers) > MaxHeaders {
			return apperr.InvalidField(at+".input.headers", "too_many_headers", "at most %d headers", MaxHeaders)
		}
		for name, v := range in.Headers {
			lower := strings.ToLower(name)
			if !validHeaderName(name) || strings.ContainsAny(v, "\r\n\x00") {
				return apperr.InvalidField(at+".input.headers", "invalid_header", "header names are tokens and values hold no line breaks")
			}
			if slices.Contains(reservedHeaders, lower) || slices.Contains(extraReserved, lower) {
				return apperr.InvalidField(at+".input.headers."+name, "reserved_header", "%s is set by the connection or the client, not by a step", name)
			}
		}
		if len(in.Body) > MaxRequestBody {
			return apperr.InvalidField(at+".input.body", "too_large", "a step's body is at most %d bytes", MaxRequestBody)
		}
	}
	if n := len((&Run{Steps: steps}).Connections()); n > MaxConnections {
		return apperr.InvalidField("steps", "too_many_connections", "a run uses at most %d distinct connections", MaxConnections)
	}
	if b, err := json.Marshal(steps); err != nil || len(b) > MaxStepsBytes {
		return apperr.InvalidField("steps", "too_large", "a run's steps hold at most %d bytes of JSON in all", MaxStepsBytes)
	}
	return nil
}

// KeptHeaders bounds the response headers a result keeps: each value at
// most MaxKeptHeaderValue bytes (cut at a rune boundary).
func KeptHeaders(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > MaxKeptHeaderValue {
			cut := MaxKeptHeaderValue
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			v = v[:cut]
		}
		out[k] = v
	}
	return out
}

func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r <= 0x20 || r == 0x7f || r == '#' })
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}
