package resolver

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/oauth"
)

// Handler serves the resolve function's operations.
type Handler struct {
	Resolver *Resolver
	// Callback completes authorizations; nil refuses the operation.
	Callback *oauth.Callback
	// Action sends connection tests to the connection's host; nil reports
	// only whether the credentials resolve.
	Action *httpaction.Client
}

// Handle runs one request and returns the wire response; the error is
// non-nil only for an event that is not JSON of this shape. Responses:
//
//	resolve:               see Resolver.Invoke
//	refreshIfDue:          {"ok": true, "refreshed": bool, "expiresAt": …} or {"ok": false, "failure": {…}}
//	completeAuthorization: {"ok": true, "connection": {…}} or {"ok": false, "error": {"code", "message", "status"}}
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
	var req Request
	if err := json.Unmarshal(event, &req); err != nil {
		return nil, errors.New("resolver: the event is not a resolve request")
	}
	switch req.Op {
	case "", OpResolve:
		return h.Resolver.Invoke(ctx, req.Input)
	case OpTest:
		return json.Marshal(struct {
			OK     bool       `json:"ok"`
			Result TestResult `json:"result"`
		}{true, h.test(ctx, req.Input)})
	case OpRefreshIfDue:
		r, err := h.Resolver.RefreshIfDueWith(ctx, req.Tenant, req.ConnectionID, RefreshOptions{
			Within: time.Duration(req.WithinSeconds) * time.Second, MaxAge: time.Duration(req.MaxAgeSeconds) * time.Second, SecretVersion: req.SecretVersion})
		if err != nil {
			return json.Marshal(struct {
				OK      bool     `json:"ok"`
				Failure *Failure `json:"failure"`
			}{false, AsFailure(err)})
		}
		var exp *time.Time
		if !r.ExpiresAt.IsZero() {
			exp = &r.ExpiresAt
		}
		return json.Marshal(struct {
			OK        bool       `json:"ok"`
			Refreshed bool       `json:"refreshed"`
			ExpiresAt *time.Time `json:"expiresAt,omitempty"`
		}{true, r.Refreshed, exp})
	case OpCompleteAuthorization:
		if h.Callback == nil || req.Authorization == nil {
			return nil, errors.New("resolver: completeAuthorization is not served here or has no authorization")
		}
		done, err := h.Callback.Complete(ctx, oauth.CallbackInput(*req.Authorization))
		if err != nil {
			e := apperr.As(err)
			h.Resolver.log.InfoContext(ctx, "authorization not completed", "code", e.Code, "error", err.Error())
			return json.Marshal(struct {
				OK    bool      `json:"ok"`
				Error ErrorBody `json:"error"`
			}{false, ErrorBody{Code: e.Code, Message: e.Message, Status: e.Kind.Status()}})
		}
		if h.Resolver.cfg.Events != nil {
			h.Resolver.cfg.Events.Flush(ctx, done.Events)
		}
		c := done.Conn
		h.Resolver.log.InfoContext(ctx, "authorization completed", "tenant", c.Tenant, "connection", c.ID, "user", done.User, "secretVersion", c.SecretVersion)
		return json.Marshal(struct {
			OK         bool                 `json:"ok"`
			Connection AuthorizedConnection `json:"connection"`
		}{true, AuthorizedConnection{Tenant: c.Tenant, ID: c.ID, Name: c.Name, Status: string(c.Status), Version: c.Version, SecretVersion: c.SecretVersion, User: done.User}})
	}
	return nil, errors.New("resolver: unknown op")
}
