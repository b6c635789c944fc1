// Package resolveclient calls the resolve function over Lambda Invoke: the
// other functions (run-step, connections, the OAuth callback, the
// scheduled check) never hold kms:Decrypt and reach secrets only through
// it. Its only AWS client is Lambda's; the contract is resolveapi.
package resolveclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/resolver/resolveapi"
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

func (c *Client) call(ctx context.Context, req resolveapi.Request, out any) error {
	payload, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("resolveclient: %w", err)
	}
	res, err := c.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(c.function), Payload: payload})
	if err != nil {
		return apperr.Wrap(apperr.Unavailable, resolveapi.ErrResolverUnavailable.Code, resolveapi.ErrResolverUnavailable.Message, err)
	}
	if res.FunctionError != nil {
		// Keep only the error's type: its message is the function's free
		// text, and nothing the resolver says may carry a secret onward.
		var fe struct {
			ErrorType string `json:"errorType"`
		}
		_ = json.Unmarshal(res.Payload, &fe)
		return apperr.Wrap(apperr.Unavailable, resolveapi.ErrResolverUnavailable.Code, resolveapi.ErrResolverUnavailable.Message,
			fmt.Errorf("resolve function error %s (%s)", aws.ToString(res.FunctionError), fe.ErrorType))
	}
	if err := json.Unmarshal(res.Payload, out); err != nil {
		return apperr.Wrap(apperr.Unavailable, resolveapi.ErrResolverUnavailable.Code, resolveapi.ErrResolverUnavailable.Message, errors.New("resolve function answered malformed JSON"))
	}
	return nil
}

// Resolve asks the resolve function for a credential; the error is a
// *resolveapi.Failure.
func (c *Client) Resolve(ctx context.Context, in resolveapi.Input) (*resolveapi.Credential, error) {
	var out struct {
		OK         bool                `json:"ok"`
		Credential json.RawMessage     `json:"credential"`
		Failure    *resolveapi.Failure `json:"failure"`
	}
	if err := c.call(ctx, resolveapi.Request{Op: resolveapi.OpResolve, Input: in}, &out); err != nil {
		return nil, resolveapi.NewFailure(resolveapi.CodeUnavailable, in.ConnectionID, err)
	}
	if !out.OK || len(out.Credential) == 0 || string(out.Credential) == "null" {
		if out.Failure == nil {
			return nil, resolveapi.NewFailure(resolveapi.CodeInternal, in.ConnectionID, errors.New("resolve function answered neither credential nor failure"))
		}
		return nil, out.Failure
	}
	var cred resolveapi.Credential
	err := cred.UnmarshalWire(out.Credential)
	clear(out.Credential)
	if err != nil {
		return nil, resolveapi.NewFailure(resolveapi.CodeInternal, in.ConnectionID, errors.New("resolve function answered a malformed credential"))
	}
	return &cred, nil
}

// RefreshIfDue asks the resolve function to refresh a connection's OAuth
// tokens when o says they are due (op refreshIfDue), under the resolver's
// single-refresher lease. The error is a *Failure: AuthFailure when the
// provider rejected the refresh (the resolver then marked the connection
// expired) or the connection cannot be refreshed as it stands.
func (c *Client) RefreshIfDue(ctx context.Context, tenant, id string, o resolveapi.RefreshOptions) (resolveapi.Refreshed, error) {
	var out struct {
		OK        bool                `json:"ok"`
		Refreshed bool                `json:"refreshed"`
		ExpiresAt *time.Time          `json:"expiresAt"`
		Failure   *resolveapi.Failure `json:"failure"`
	}
	req := resolveapi.Request{Op: resolveapi.OpRefreshIfDue, Input: resolveapi.Input{Tenant: tenant, ConnectionID: id},
		WithinSeconds: int64(o.Within / time.Second), MaxAgeSeconds: int64(o.MaxAge / time.Second), SecretVersion: o.SecretVersion}
	if err := c.call(ctx, req, &out); err != nil {
		return resolveapi.Refreshed{}, resolveapi.NewFailure(resolveapi.CodeUnavailable, id, err)
	}
	if !out.OK {
		if out.Failure == nil {
			return resolveapi.Refreshed{}, resolveapi.NewFailure(resolveapi.CodeInternal, id, errors.New("resolve function answered neither outcome nor failure"))
		}
		return resolveapi.Refreshed{}, out.Failure
	}
	r := resolveapi.Refreshed{Refreshed: out.Refreshed}
	if out.ExpiresAt != nil {
		r.ExpiresAt = *out.ExpiresAt
	}
	return r, nil
}

// Test asks the resolve function to check a connection's credentials
// against the connection's own host. The caller must already have checked
// that user may manage the connection. It waits at most
// resolveapi.TestWait.
func (c *Client) Test(ctx context.Context, tenant, id, user string) (*resolveapi.TestResult, error) {
	ctx, cancel := context.WithTimeout(ctx, resolveapi.TestWait)
	defer cancel()
	var out struct {
		OK      bool                   `json:"ok"`
		Result  *resolveapi.TestResult `json:"result"`
		Failure *resolveapi.Failure    `json:"failure"`
	}
	req := resolveapi.Request{Op: resolveapi.OpTest, Input: resolveapi.Input{Tenant: tenant, ConnectionID: id, RunOwner: user}}
	if err := c.call(ctx, req, &out); err != nil {
		return nil, err
	}
	if out.Result == nil {
		if out.Failure == nil {
			return nil, resolveapi.NewFailure(resolveapi.CodeInternal, id, errors.New("resolve function answered neither result nor failure"))
		}
		return &resolveapi.TestResult{OK: false, Code: string(out.Failure.Code), Message: out.Failure.Message, AuthFailure: out.Failure.AuthFailure, ProviderCode: out.Failure.ProviderCode}, nil
	}
	return out.Result, nil
}

// CompleteAuthorization hands an OAuth callback to the resolve function,
// which exchanges the code and stores the tokens.
func (c *Client) CompleteAuthorization(ctx context.Context, in resolveapi.CallbackInput) (*resolveapi.Completion, error) {
	var out resolveapi.Completion
	if err := c.call(ctx, resolveapi.Request{Op: resolveapi.OpCompleteAuthorization, Authorization: &in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
