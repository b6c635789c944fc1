package manager

import (
	"context"
	"net/http"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/oauth"
)

func (s *Service) handleAuthorize(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	a, err := s.Authorize(ctx, r.Caller, r.Param("id"))
	if err != nil {
		return httpapi.Response{}, err
	}
	return httpapi.JSON(http.StatusOK, a), nil
}

func (s *Service) handleTest(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	res, err := s.Test(ctx, r.Caller, r.Param("id"))
	if err != nil {
		return httpapi.Response{}, err
	}
	return httpapi.JSON(http.StatusOK, res), nil
}

func (s *Service) handleListClients(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	if err := r.OnlyQuery(); err != nil {
		return httpapi.Response{}, err
	}
	list, err := s.clients.List(ctx, r.Caller)
	if err != nil {
		return httpapi.Response{}, err
	}
	if list == nil {
		list = []*oauth.ClientView{}
	}
	return httpapi.JSON(http.StatusOK, map[string]any{"items": list}), nil
}

func clientResponse(status int, v *oauth.ClientView) httpapi.Response {
	resp := httpapi.JSON(status, v)
	resp.Headers = map[string]string{"ETag": httpapi.ETag(v.Version)}
	return resp
}

func (s *Service) handleGetClient(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	v, err := s.clients.Get(ctx, r.Caller, r.Param("type"))
	if err != nil {
		return httpapi.Response{}, err
	}
	return clientResponse(http.StatusOK, v), nil
}

// handlePutClient registers the tenant's OAuth client for a type: without
// If-Match it creates (409 when one exists), with If-Match it replaces that
// version.
func (s *Service) handlePutClient(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	var in oauth.ClientInput
	if err := r.DecodeJSON(&in); err != nil {
		return httpapi.Response{}, err
	}
	v, err := s.clients.Put(ctx, r.Caller, r.Param("type"), in, ifMatch)
	if err != nil {
		return httpapi.Response{}, err
	}
	status := http.StatusOK
	if ifMatch == 0 {
		status = http.StatusCreated
	}
	return clientResponse(status, v), nil
}

func (s *Service) handleDeleteClient(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	if !connection.CanManageOAuthClients(r.Caller) {
		return httpapi.Response{}, apperr.E(apperr.Forbidden, "forbidden", "only tenant administrators manage OAuth clients")
	}
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	if ifMatch == 0 {
		return httpapi.Response{}, apperr.E(apperr.PreconditionRequired, "if_match_required", "send If-Match with the registration's ETag to delete it")
	}
	if err := s.clients.Delete(ctx, r.Caller, r.Param("type"), ifMatch); err != nil {
		return httpapi.Response{}, err
	}
	return httpapi.Response{Status: http.StatusNoContent}, nil
}
