// Package demotarget is the small HTTP API `make dev` serves on loopback for
// trying connections: a target whose credentials a connection holds.
//
// Under /api it answers requests authenticated with HTTP Basic (one
// username and password) or an API key in the X-Api-Key header, and 401
// to anything else. PUT /admin/credentials changes what it accepts, so the
// credentials a connection stored stop working, a run using them suspends,
// and it resumes once the connection is given the new ones.
//
//	GET  /api/ping     {"ok": true, "auth": "basic"|"apiKey"}
//	GET  /api/items    the items posted so far
//	POST /api/items    adds the JSON body as an item and echoes it with its id
//	PUT  /admin/credentials  {"username", "password", "apiKey"}: each given one replaces the current
//
// It never logs or echoes a credential. Never linked into a Lambda binary.
package demotarget

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/connmgr/connmgr/local/loopback"
)

// Credentials the target accepts until told otherwise.
const (
	DefaultUsername = "demo"
	DefaultPassword = "demo"
	DefaultAPIKey   = "demo-key"
	// APIKeyHeader carries the API key (the http-api-key type's headerName).
	APIKeyHeader = "X-Api-Key"
	maxBody      = 64 << 10
	maxItems     = 1000
)

// Target is the demo API's state.
type Target struct {
	mu                         sync.Mutex
	username, password, apiKey string
	items                      []json.RawMessage
}

// New returns a target accepting the default credentials.
func New() *Target {
	return &Target{username: DefaultUsername, password: DefaultPassword, apiKey: DefaultAPIKey}
}

// Start serves a new target on addr ("" = a free loopback port).
func Start(addr string) (*Target, *loopback.Server, error) {
	t := New()
	s, err := loopback.Serve(addr, t, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("demotarget: %w", err)
	}
	return t, s, nil
}

// SetCredentials replaces each non-empty one of username, password and
// apiKey.
func (t *Target) SetCredentials(username, password, apiKey string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range []struct {
		dst *string
		v   string
	}{{&t.username, username}, {&t.password, password}, {&t.apiKey, apiKey}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
}

func (t *Target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case "/admin/credentials":
		t.admin(w, r)
		return
	case "/api/ping", "/api/items":
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "try /api/ping or /api/items"})
		return
	}
	how, ok := t.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="demo"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "message": "wrong or missing credentials"})
		return
	}
	switch {
	case r.URL.Path == "/api/ping" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "auth": how})
	case r.URL.Path == "/api/items" && r.Method == http.MethodGet:
		t.mu.Lock()
		items := append([]json.RawMessage{}, t.items...)
		t.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"items": items})
	case r.URL.Path == "/api/items" && r.Method == http.MethodPost:
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil || !json.Valid(body) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "send a JSON body"})
			return
		}
		t.mu.Lock()
		if len(t.items) == maxItems {
			t.items = t.items[1:]
		}
		t.items = append(t.items, body)
		id := len(t.items)
		t.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"id": id, "item": json.RawMessage(body)})
	default:
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed"})
	}
}

// authenticate checks Basic credentials or the API key, in constant time.
func (t *Target) authenticate(r *http.Request) (string, bool) {
	t.mu.Lock()
	username, password, apiKey := t.username, t.password, t.apiKey
	t.mu.Unlock()
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if u, p, ok := r.BasicAuth(); ok {
		return "basic", eq(u, username) && eq(p, password)
	}
	if k := r.Header.Get(APIKeyHeader); k != "" {
		return "apiKey", eq(k, apiKey)
	}
	return "", false
}

func (t *Target) admin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "message": `PUT {"username", "password", "apiKey"}`})
		return
	}
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
		APIKey   string `json:"apiKey"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.Username+in.Password+in.APIKey == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": `send {"username", "password", "apiKey"}, at least one`})
		return
	}
	t.SetCredentials(in.Username, in.Password, in.APIKey)
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
