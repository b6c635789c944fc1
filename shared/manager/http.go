package manager

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/identity"
)

// Routes registers the connections API on rt. The route keys are the ones
// template.yaml declares for the connections function.
func (s *Service) Routes(rt *httpapi.Router) {
	rt.Handle("GET /connection-types", s.handleTypes)
	rt.Handle("POST /connections", s.handleCreate)
	rt.Handle("GET /connections", s.handleList)
	rt.Handle("GET /connections/{id}", s.handleGet)
	rt.Handle("PATCH /connections/{id}", s.handleUpdate)
	rt.Handle("DELETE /connections/{id}", s.handleDelete)
	rt.Handle("PUT /connections/{id}/availability", s.handleSetAvailability)
	rt.Handle("PUT /connections/{id}/owners", s.handleSetOwners)
	rt.Handle("GET /connections/{id}/audit", s.handleAudit)
	rt.Handle("POST /connections/{id}/authorize", s.handleAuthorize)
	rt.Handle("POST /connections/{id}/test", s.handleTest)
	rt.Handle("GET /oauth-clients", s.handleListClients)
	rt.Handle("GET /oauth-clients/{type}", s.handleGetClient)
	rt.Handle("PUT /oauth-clients/{type}", s.handlePutClient)
	rt.Handle("DELETE /oauth-clients/{type}", s.handleDeleteClient)
}

// View is a connection as the API shows it: credentials only as which
// fields are set.
type View struct {
	ID           string                  `json:"id"`
	Type         string                  `json:"type"`
	Name         string                  `json:"name"`
	Kind         connection.Kind         `json:"kind"`
	Availability connection.Availability `json:"availability"`
	Owners       []string                `json:"owners"`
	CreatedBy    string                  `json:"createdBy"`
	CreatedAt    time.Time               `json:"createdAt"`
	UpdatedAt    time.Time               `json:"updatedAt"`
	Version      int64                   `json:"version"`
	Status       connection.Status       `json:"status"`
	StatusReason string                  `json:"statusReason,omitempty"`
	// Disabled: no run or test may use the connection until it is enabled.
	Disabled    bool            `json:"disabled"`
	Settings    map[string]any  `json:"settings"`
	Credentials map[string]bool `json:"credentials"`
	// TokenExpiresAt is when an OAuth connection's access token expires.
	TokenExpiresAt time.Time `json:"tokenExpiresAt,omitzero"`
	// RefreshTokenExpiresAt is when its refresh token expires, when the
	// provider said so.
	RefreshTokenExpiresAt time.Time `json:"refreshTokenExpiresAt,omitzero"`
	// LastUsedAt is when a workflow run last used the connection (sampled).
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
	// Permissions are the actions the caller may take on it
	// (connection.Permissions): clients show what these allow.
	Permissions []string `json:"permissions"`
}

// NewView renders c for caller.
func NewView(caller identity.Caller, c *connection.Connection) View {
	creds := map[string]bool{}
	if typ, err := connection.Lookup(c.Type, "type"); err == nil {
		for _, f := range typ.SecretFields() {
			creds[f] = false
		}
	}
	for _, f := range c.SecretFields {
		creds[f] = true
	}
	settings := c.Settings
	if settings == nil {
		settings = map[string]any{}
	}
	return View{
		ID: c.ID, Type: c.Type, Name: c.Name, Kind: c.Kind, Availability: c.Availability, Owners: c.Owners,
		CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Version: c.Version,
		Status: c.Status, StatusReason: c.StatusReason, Disabled: c.Disabled, Settings: settings, Credentials: creds,
		TokenExpiresAt: c.TokenExpiresAt, RefreshTokenExpiresAt: c.RefreshTokenExpiresAt, LastUsedAt: c.LastUsedAt,
		Permissions: connection.Permissions(caller, c),
	}
}

func withETag(caller identity.Caller, status int, c *connection.Connection) httpapi.Response {
	resp := httpapi.JSON(status, NewView(caller, c))
	resp.Headers = map[string]string{"ETag": httpapi.ETag(c.Version)}
	return resp
}

func (s *Service) handleTypes(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	if err := r.OnlyQuery(); err != nil {
		return httpapi.Response{}, err
	}
	return httpapi.JSON(http.StatusOK, map[string]any{"items": connection.Types()}), nil
}

func (s *Service) handleCreate(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	var in CreateInput
	if err := r.DecodeJSON(&in); err != nil {
		return httpapi.Response{}, err
	}
	out, err := s.Create(ctx, r.Caller, in, strings.TrimSpace(r.Header("idempotency-key")))
	if err != nil {
		return httpapi.Response{}, err
	}
	resp := withETag(r.Caller, http.StatusCreated, out.Conn)
	if a := out.Authorization; a != nil {
		resp.Body = struct {
			View
			AuthorizeURL       string    `json:"authorizeUrl"`
			AuthorizeExpiresAt time.Time `json:"authorizeExpiresAt"`
		}{NewView(r.Caller, out.Conn), a.URL, a.ExpiresAt}
	}
	resp.Headers["Location"] = "/connections/" + out.Conn.ID
	if out.Replayed {
		resp.Headers["Idempotent-Replayed"] = "true"
	}
	return resp, nil
}

func (s *Service) handleGet(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	rec, err := s.Get(ctx, r.Caller, r.Param("id"))
	if err != nil {
		return httpapi.Response{}, err
	}
	return withETag(r.Caller, http.StatusOK, &rec.Conn), nil
}

func (s *Service) handleList(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	if err := r.OnlyQuery("type", "scope", "status", "usableAt", "cursor", "limit"); err != nil {
		return httpapi.Response{}, err
	}
	limit, err := r.PageLimit()
	if err != nil {
		return httpapi.Response{}, err
	}
	f := ListFilter{Type: r.Query("type"), Scope: connection.Scope(r.Query("scope")), Status: connection.Status(r.Query("status")),
		UsableAt: r.Query("usableAt"), Cursor: r.Query("cursor"), Limit: limit}
	if f.Type != "" {
		if _, err := connection.Lookup(f.Type, "type"); err != nil {
			return httpapi.Response{}, err
		}
	}
	switch f.Scope {
	case "", connection.ScopeTenant, connection.ScopeSiteCollection, connection.ScopeSite, connection.ScopePersonal:
	default:
		return httpapi.Response{}, apperr.InvalidField("scope", "invalid_scope", "scope must be tenant, siteCollection, site or personal")
	}
	if f.Status != "" && !slices.Contains(connection.Statuses, f.Status) {
		return httpapi.Response{}, apperr.InvalidField("status", "invalid_status", "status must be one of active, pending_authorization, expiring, expired, error")
	}
	conns, next, err := s.List(ctx, r.Caller, f)
	if err != nil {
		return httpapi.Response{}, err
	}
	items := make([]View, len(conns))
	for i, c := range conns {
		items[i] = NewView(r.Caller, c)
	}
	return httpapi.Page(items, next), nil
}

func (s *Service) handleUpdate(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	var in UpdateInput
	if err := r.DecodeJSON(&in); err != nil {
		return httpapi.Response{}, err
	}
	c, err := s.Update(ctx, r.Caller, r.Param("id"), in, ifMatch)
	if err != nil {
		return httpapi.Response{}, err
	}
	return withETag(r.Caller, http.StatusOK, c), nil
}

func (s *Service) handleSetAvailability(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	var a connection.Availability
	if err := r.DecodeJSON(&a); err != nil {
		return httpapi.Response{}, err
	}
	c, err := s.SetAvailability(ctx, r.Caller, r.Param("id"), a, ifMatch)
	if err != nil {
		return httpapi.Response{}, err
	}
	return withETag(r.Caller, http.StatusOK, c), nil
}

func (s *Service) handleSetOwners(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	var in struct {
		Owners []string `json:"owners"`
	}
	if err := r.DecodeJSON(&in); err != nil {
		return httpapi.Response{}, err
	}
	c, err := s.SetOwners(ctx, r.Caller, r.Param("id"), in.Owners, ifMatch)
	if err != nil {
		return httpapi.Response{}, err
	}
	return withETag(r.Caller, http.StatusOK, c), nil
}

func (s *Service) handleDelete(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	if err := r.OnlyQuery("force"); err != nil {
		return httpapi.Response{}, err
	}
	force := false
	switch r.Query("force") {
	case "", "false":
	case "true":
		force = true
	default:
		return httpapi.Response{}, apperr.InvalidField("force", "invalid_value", "force is true or false")
	}
	if err := s.Delete(ctx, r.Caller, r.Param("id"), ifMatch, force); err != nil {
		return httpapi.Response{}, err
	}
	return httpapi.Response{Status: http.StatusNoContent}, nil
}

func (s *Service) handleAudit(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	if err := r.OnlyQuery("cursor", "limit"); err != nil {
		return httpapi.Response{}, err
	}
	limit, err := r.PageLimit()
	if err != nil {
		return httpapi.Response{}, err
	}
	entries, next, err := s.Audit(ctx, r.Caller, r.Param("id"), r.Query("cursor"), limit)
	if err != nil {
		return httpapi.Response{}, err
	}
	return httpapi.Page(entries, next), nil
}
