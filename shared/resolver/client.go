package resolver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/secret"
)

// Invoker is the Lambda call a client of the resolve function needs.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Client calls the resolve function synchronously: the other functions
// (run-step, connections, the OAuth callback, the scheduled check) never
// hold kms:Decrypt and reach secrets only through it.
type Client struct {
	lambda   Invoker
	function string
}

// NewClient returns a Client of the resolve function named function.
func NewClient(l Invoker, function string) *Client { return &Client{lambda: l, function: function} }

// ErrResolverUnavailable: the resolve function could not be invoked or
// answered with a function error.
var ErrResolverUnavailable = apperr.E(apperr.Unavailable, "resolver_unavailable", "the credential resolver is unavailable")

func (c *Client) call(ctx context.Context, req Request, out any) error {
	payload, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("resolver.Client: %w", err)
	}
	res, err := c.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(c.function), Payload: payload})
	if err != nil {
		return apperr.Wrap(apperr.Unavailable, ErrResolverUnavailable.Code, ErrResolverUnavailable.Message, err)
	}
	if res.FunctionError != nil {
		// Keep only the error's type: its message is the function's free
		// text, and nothing the resolver says may carry a secret onward.
		var fe struct {
			ErrorType string `json:"errorType"`
		}
		_ = json.Unmarshal(res.Payload, &fe)
		return apperr.Wrap(apperr.Unavailable, ErrResolverUnavailable.Code, ErrResolverUnavailable.Message,
			fmt.Errorf("resolve function error %s (%s)", aws.ToString(res.FunctionError), fe.ErrorType))
	}
	if err := json.Unmarshal(res.Payload, out); err != nil {
		return apperr.Wrap(apperr.Unavailable, ErrResolverUnavailable.Code, ErrResolverUnavailable.Message, errors.New("resolve function answered malformed JSON"))
	}
	return nil
}

// Resolve asks the resolve function for a credential; the error is a *Failure.
func (c *Client) Resolve(ctx context.Context, in Input) (*Credential, error) {
	var out struct {
		OK         bool     `json:"ok"`
		Credential *wire    `json:"credential"`
		Failure    *Failure `json:"failure"`
	}
	if err := c.call(ctx, Request{Op: OpResolve, Input: in}, &out); err != nil {
		return nil, fail(CodeUnavailable, in.ConnectionID, err)
	}
	if !out.OK || out.Credential == nil {
		if out.Failure == nil {
			return nil, fail(CodeInternal, in.ConnectionID, errors.New("resolve function answered neither credential nor failure"))
		}
		return nil, out.Failure
	}
	return out.Credential.credential(), nil
}

// RefreshIfDue asks the resolve function to refresh a connection's OAuth
// tokens when o says they are due (op refreshIfDue), under the resolver's
// single-refresher lease. The error is a *Failure: AuthFailure when the
// provider rejected the refresh (the resolver then marked the connection
// expired) or the connection cannot be refreshed as it stands.
func (c *Client) RefreshIfDue(ctx context.Context, tenant, id string, o RefreshOptions) (Refreshed, error) {
	var out struct {
		OK        bool       `json:"ok"`
		Refreshed bool       `json:"refreshed"`
		ExpiresAt *time.Time `json:"expiresAt"`
		Failure   *Failure   `json:"failure"`
	}
	req := Request{Op: OpRefreshIfDue, Input: Input{Tenant: tenant, ConnectionID: id},
		WithinSeconds: int64(o.Within / time.Second), MaxAgeSeconds: int64(o.MaxAge / time.Second), SecretVersion: o.SecretVersion}
	if err := c.call(ctx, req, &out); err != nil {
		return Refreshed{}, fail(CodeUnavailable, id, err)
	}
	if !out.OK {
		if out.Failure == nil {
			return Refreshed{}, fail(CodeInternal, id, errors.New("resolve function answered neither outcome nor failure"))
		}
		return Refreshed{}, out.Failure
	}
	r := Refreshed{Refreshed: out.Refreshed}
	if out.ExpiresAt != nil {
		r.ExpiresAt = *out.ExpiresAt
	}
	return r, nil
}

// credential rebuilds a Credential from its wire form.
func (w *wire) credential() *Credential {
	c := &Credential{ConnectionID: w.ConnectionID, Type: w.Type, Kind: w.Kind, BaseURL: w.BaseURL, Settings: w.Settings}
	switch {
	case w.Basic != nil:
		c.username, c.password = secret.New(w.Basic.Username), secret.New(w.Basic.Password)
		w.Basic.Password = ""
	case w.Bearer != nil:
		c.accessToken, c.tokenType, c.expiresAt = secret.New(w.Bearer.AccessToken), w.Bearer.TokenType, w.Bearer.ExpiresAt
		w.Bearer.AccessToken = ""
	case w.APIKey != nil:
		c.headerName, c.apiKey = w.APIKey.HeaderName, secret.New(w.APIKey.Value)
		w.APIKey.Value = ""
	}
	return c
}

// TestWait is how long Test waits for the resolve function's answer: the
// test's request (httpaction.DefaultTimeout) after resolving, which may
// refresh an OAuth token (oauth.DefaultHTTPTimeout). Past it the caller
// gets resolver_unavailable (503) rather than outliving its own function
// timeout or API Gateway's 30 seconds; the connections function's Timeout
// in template.yaml exceeds it (local/sam TestContractTimeouts).
const TestWait = 25 * time.Second

// Test asks the resolve function to check a connection's credentials
// against the connection's own host. The caller must already have checked
// that user may manage the connection.
func (c *Client) Test(ctx context.Context, tenant, id, user string) (*TestResult, error) {
	ctx, cancel := context.WithTimeout(ctx, TestWait)
	defer cancel()
	var out struct {
		OK      bool        `json:"ok"`
		Result  *TestResult `json:"result"`
		Failure *Failure    `json:"failure"`
	}
	if err := c.call(ctx, Request{Op: OpTest, Input: Input{Tenant: tenant, ConnectionID: id, RunOwner: user}}, &out); err != nil {
		return nil, err
	}
	if out.Result == nil {
		if out.Failure == nil {
			return nil, fail(CodeInternal, id, errors.New("resolve function answered neither result nor failure"))
		}
		return &TestResult{OK: false, Code: string(out.Failure.Code), Message: out.Failure.Message, AuthFailure: out.Failure.AuthFailure, ProviderCode: out.Failure.ProviderCode}, nil
	}
	return out.Result, nil
}

// Completion is the answer to CompleteAuthorization.
type Completion struct {
	OK         bool                  `json:"ok"`
	Connection *AuthorizedConnection `json:"connection,omitempty"`
	Error      *ErrorBody            `json:"error,omitempty"`
}

// CompleteAuthorization hands an OAuth callback to the resolve function,
// which exchanges the code and stores the tokens.
func (c *Client) CompleteAuthorization(ctx context.Context, in oauth.CallbackInput) (*Completion, error) {
	var out Completion
	if err := c.call(ctx, Request{Op: OpCompleteAuthorization, Authorization: &in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
