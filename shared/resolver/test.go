package resolver

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/httpaction"
)

// test resolves the connection and, when the type has a test path (or an
// OAuth test URL on the connection's own host), sends one GET there with
// the credential. Credentials never go to another host: the request URL is
// built from the connection's base URL and Credential.Apply refuses any
// other origin.
func (h *Handler) test(ctx context.Context, in Input) TestResult {
	cred, err := h.Resolver.ResolveForTest(ctx, in.Tenant, in.ConnectionID, in.RunOwner)
	if err != nil {
		f := AsFailure(err)
		return TestResult{Code: string(f.Code), Message: f.Message, AuthFailure: f.AuthFailure, ProviderCode: f.ProviderCode}
	}
	path := ""
	if p, ok := cred.Settings["testPath"].(string); ok {
		path = p
	} else if u, ok := cred.Settings["testUrl"].(string); ok && u != "" {
		if !strings.HasPrefix(strings.ToLower(u), strings.ToLower(strings.TrimSuffix(cred.BaseURL, "/"))+"/") && !strings.EqualFold(u, cred.BaseURL) {
			return TestResult{Code: "foreign_test_url", Message: "the test URL must be on the connection's own base URL"}
		}
		path = "/" + strings.TrimPrefix(u[len(strings.TrimSuffix(cred.BaseURL, "/")):], "/")
	}
	if path == "" || h.Action == nil {
		msg := "the credentials are readable and usable; configure a test path to check them against the host"
		if typ, err := connection.Lookup(cred.Type, "type"); err == nil && typ.AuthMethod.IsOAuth() {
			msg = "the access token is valid and unexpired; configure a test URL to check it against the host"
		}
		return TestResult{OK: true, Code: "resolved", Message: msg}
	}
	res, err := h.Action.Do(ctx, httpaction.Request{BaseURL: cred.BaseURL, Method: http.MethodGet, Path: path, Credential: cred})
	if err != nil {
		return TestResult{Code: "invalid_target", Message: "the connection's base URL cannot be requested"}
	}
	target := strings.TrimSuffix(cred.BaseURL, "/") + path
	h.Resolver.log.InfoContext(ctx, "connection tested", slog.String("tenant", in.Tenant), slog.String("connection", in.ConnectionID),
		slog.String("outcome", res.Outcome), slog.Int("status", res.Status), slog.String("reason", res.Reason))
	switch res.Outcome {
	case httpaction.Succeeded:
		return TestResult{OK: true, Code: "verified", Message: "the host accepted the credentials", Status: res.Status, Target: target}
	case httpaction.AuthFailed:
		return TestResult{Code: res.Reason, Message: "the host rejected the credentials", AuthFailure: true, Status: res.Status, Target: target}
	}
	return TestResult{Code: res.Reason, Message: "the host did not confirm the credentials", Status: res.Status, Target: target}
}
