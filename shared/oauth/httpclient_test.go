package oauth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/connmgr/connmgr/shared/netguard"
	"github.com/connmgr/connmgr/shared/oauth"
)

// TestHTTPClientNetworks: the token client applies netguard's rule, public
// only by default and netguard.Private with AllowPrivateNetworks, which
// still refuses what netguard always refuses. Control runs before connect,
// so the refused addresses are never contacted.
func TestHTTPClientNetworks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	public := oauth.NewHTTPClient(oauth.HTTPOptions{})
	private := oauth.NewHTTPClient(oauth.HTTPOptions{AllowPrivateNetworks: true})
	tests := []struct {
		client *http.Client
		url    string
		ok     bool
	}{
		{public, srv.URL, false},
		{private, srv.URL, true},
		{private, "http://0.0.0.0:9/", false},
		{private, "http://100.64.0.1:9/", false},
		{private, "http://[64:ff9b::7f00:1]:9/", false},
		{private, "http://[2002:7f00:1::]:9/", false},
	}
	for _, tt := range tests {
		resp, err := tt.client.Get(tt.url)
		if err == nil {
			resp.Body.Close()
		}
		if tt.ok && err != nil {
			t.Errorf("%s: %v", tt.url, err)
		}
		if !tt.ok && !errors.Is(err, netguard.ErrNotAllowed) {
			t.Errorf("%s: %v, want netguard.ErrNotAllowed", tt.url, err)
		}
	}
}
