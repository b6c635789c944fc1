package manager_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/shared/app"
)

var admin = &apitest.Caller{Tenant: "t1", User: "alice", TenantAdmin: true}

func count(t *testing.T, env *apitest.Env, c *apitest.Caller) int {
	t.Helper()
	var list struct{ Items []any }
	resp := env.Do(apitest.Request{Method: "GET", Path: "/connections?limit=100", Caller: c})
	if resp.Status != 200 {
		t.Fatalf("list: %d %s", resp.Status, resp.Body)
	}
	resp.Decode(t, &list)
	return len(list.Items)
}

// TestBadInput: every malformed request answers 4xx with a code and field,
// and stores nothing.
func TestBadInput(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	valid := `{"type":"http-basic","name":"n","kind":"shared","settings":{"baseUrl":"https://x.example.com"},"credentials":{"username":"u","password":"p"}}`
	tests := []struct {
		name    string
		body    string
		headers map[string]string
		status  int
		code    string
		field   string
	}{
		{"malformed JSON", `{"type":`, nil, 400, "malformed_json", ""},
		{"not an object", `[1,2]`, nil, 400, "malformed_json", ""},
		{"trailing data", valid + `{}`, nil, 400, "malformed_json", ""},
		{"empty body", ``, nil, 400, "malformed_json", ""},
		{"unknown field", strings.Replace(valid, `"name"`, `"colour":"red","name"`, 1), nil, 400, "unknown_field", "colour"},
		{"wrong type", strings.Replace(valid, `"name":"n"`, `"name":5`, 1), nil, 400, "invalid_type", "name"},
		{"credential not a string", strings.Replace(valid, `"password":"p"`, `"password":7`, 1), nil, 400, "invalid_type", "credentials.password"},
		{"unknown type", strings.Replace(valid, `http-basic`, `ftp`, 1), nil, 400, "unknown_type", "type"},
		{"missing name", strings.Replace(valid, `"name":"n"`, `"name":"  "`, 1), nil, 400, "required", "name"},
		{"bad kind", strings.Replace(valid, `"shared"`, `"public"`, 1), nil, 400, "invalid_kind", "kind"},
		{"missing setting", strings.Replace(valid, `"baseUrl":"https://x.example.com"`, ``, 1), nil, 400, "required", "settings.baseUrl"},
		{"bad setting", strings.Replace(valid, `https://x.example.com`, `not a url`, 1), nil, 400, "invalid_format", "settings.baseUrl"},
		{"unknown setting", strings.Replace(valid, `"baseUrl"`, `"x":1,"baseUrl"`, 1), nil, 400, "unknown_field", "settings.x"},
		{"missing credential", strings.Replace(valid, `"username":"u",`, ``, 1), nil, 400, "required", "credentials.username"},
		{"unknown credential", strings.Replace(valid, `"username":"u"`, `"username":"u","pin":"1"`, 1), nil, 400, "unknown_field", "credentials.pin"},
		{"wrong content type", valid, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type", ""},
		{"oversize", strings.Replace(valid, `"name":"n"`, `"name":"`+strings.Repeat("n", 70<<10)+`"`, 1), nil, 413, "body_too_large", ""},
		{"bad idempotency key", valid, map[string]string{"Idempotency-Key": "has space"}, 400, "invalid_idempotency_key", "Idempotency-Key"},
		// Keys are exact and single; the body is UTF-8 (invalid bytes: httpapi's tests).
		{"key in another case", strings.Replace(valid, `"kind"`, `"KIND"`, 1), nil, 400, "unknown_field", "KIND"},
		{"nested key in another case", strings.Replace(valid, `"kind":"shared"`, `"kind":"shared","availability":{"Scope":"tenant"}`, 1), nil, 400, "unknown_field", "availability.Scope"},
		{"duplicate key", strings.Replace(valid, `"name":"n"`, `"name":"n","name":"m"`, 1), nil, 400, "duplicate_key", "name"},
		{"duplicate setting", strings.Replace(valid, `"baseUrl"`, `"baseUrl":"https://y.example.com","baseUrl"`, 1), nil, 400, "duplicate_key", "settings.baseUrl"},
		{"duplicate credential", strings.Replace(valid, `"password":"p"`, `"password":"p","password":"q"`, 1), nil, 400, "duplicate_key", "credentials.password"},
		{"escaped lone surrogate", strings.Replace(valid, `"name":"n"`, `"name":"n\udc00"`, 1), nil, 400, "invalid_utf8", ""},
		{"latin-1 charset", valid, map[string]string{"Content-Type": "application/json; charset=ISO-8859-1"}, 415, "unsupported_charset", ""},
		// Names.
		{"name too long", strings.Replace(valid, `"name":"n"`, `"name":"`+strings.Repeat("n", 129)+`"`, 1), nil, 400, "too_long", "name"},
		{"name with a bidi override", strings.Replace(valid, `"name":"n"`, `"name":"pay\u202eroll"`, 1), nil, 400, "invalid_value", "name"},
		{"name with a bidi isolate", strings.Replace(valid, `"name":"n"`, `"name":"pay\u2067roll"`, 1), nil, 400, "invalid_value", "name"},
		{"name of zero-width characters", strings.Replace(valid, `"name":"n"`, `"name":"\u200b\u200d\ufeff"`, 1), nil, 400, "invalid_value", "name"},
		{"name with a control character", strings.Replace(valid, `"name":"n"`, `"name":"a\u0007b"`, 1), nil, 400, "invalid_value", "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: tt.body, Headers: tt.headers})
			if resp.Status != tt.status || resp.ErrorCode() != tt.code || resp.ErrorField() != tt.field {
				t.Errorf("got %d %s, want %d code %q field %q", resp.Status, resp.Body, tt.status, tt.code, tt.field)
			}
		})
	}
	if n := count(t, env, admin); n != 0 {
		t.Errorf("%d connections stored by rejected requests", n)
	}
	if resp := env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: valid}); resp.Status != 201 {
		t.Fatalf("valid create: %d %s", resp.Status, resp.Body)
	}
}

func TestUnauthenticated(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	for _, c := range []*apitest.Caller{nil, {User: "u"}, {Tenant: "t"}} {
		resp := env.Do(apitest.Request{Method: "GET", Path: "/connections", Caller: c})
		if resp.Status != 401 || resp.ErrorCode() != "unauthenticated" {
			t.Errorf("caller %+v: %d %s", c, resp.Status, resp.Body)
		}
	}
}

// TestCanariesNeverLeak: secrets sent in creates and updates never come back
// in a response body or header, an error, an audit entry or a log line.
func TestCanariesNeverLeak(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	canaries := []string{"CANARY-pw-7f3a", "CANARY-pw-rotated-91c2", "CANARY-apikey-55d1", "CANARY-bad-" + strings.Repeat("z", 5000)}
	var seen []apitest.Response
	do := func(r apitest.Request) apitest.Response {
		resp := env.Do(r)
		seen = append(seen, resp)
		return resp
	}
	id := create(t, env, admin, map[string]any{"type": "http-basic", "name": "n", "kind": "shared",
		"settings": map[string]any{"baseUrl": "https://x.example.com"}, "credentials": map[string]any{"username": "svc", "password": canaries[0]}})
	do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: map[string]any{"credentials": map[string]any{"username": "svc", "password": canaries[1]}}})
	do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: map[string]any{"type": "http-api-key", "name": "k", "kind": "shared",
		"settings": map[string]any{"baseUrl": "https://x.example.com", "headerName": "X-Key"}, "credentials": map[string]any{"apiKey": canaries[2]}}})
	// Rejected secrets: too long, and sent to a field that does not exist.
	do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: map[string]any{"credentials": map[string]any{"username": "svc", "password": canaries[3]}}})
	do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: map[string]any{"credentials": map[string]any{"username": "svc", "secret": canaries[0]}}})
	do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: `{"credentials": {"password": "` + canaries[1] + `", }`})
	do(apitest.Request{Method: "GET", Path: "/connections/" + id, Caller: admin})
	do(apitest.Request{Method: "GET", Path: "/connections", Caller: admin})
	do(apitest.Request{Method: "GET", Path: "/connections/" + id + "/audit", Caller: admin})
	for _, resp := range seen {
		text := string(resp.Body) + fmt.Sprint(resp.Headers)
		for _, c := range canaries {
			if strings.Contains(text, c[:14]) {
				t.Errorf("canary %s in a response: %s", c[:14], text)
			}
		}
	}
	logs := env.Logs.String()
	if logs == "" {
		t.Fatal("no logs captured")
	}
	for _, c := range canaries {
		if strings.Contains(logs, c[:14]) {
			t.Errorf("canary %s in the logs", c[:14])
		}
	}
	// The item in DynamoDB holds ciphertext only.
	if strings.Contains(fmt.Sprintf("%s", dumpItems(t, env)), "CANARY") {
		t.Error("a canary is stored in plaintext")
	}
}

// TestConcurrentUpdates is property 4: N updates at version v → exactly one
// succeeds, the rest get 412, and no update is lost.
func TestConcurrentUpdates(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	id := create(t, env, admin, basicBody("c"))
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = env.Do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin,
				Headers: map[string]string{"If-Match": `"1"`}, Body: map[string]any{"name": fmt.Sprintf("writer-%d", i)}}).Status
		}()
	}
	wg.Wait()
	ok, stale := 0, 0
	winner := -1
	for i, s := range statuses {
		switch s {
		case 200:
			ok++
			winner = i
		case 412:
			stale++
		default:
			t.Errorf("writer %d: status %d", i, s)
		}
	}
	t.Logf("%d concurrent updates at version 1: %d succeeded, %d got 412", n, ok, stale)
	if ok != 1 || stale != n-1 {
		t.Fatalf("want exactly 1 success and %d × 412", n-1)
	}
	var v struct {
		Name    string
		Version int64
	}
	resp := env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id, Caller: admin})
	resp.Decode(t, &v)
	if v.Name != fmt.Sprintf("writer-%d", winner) || v.Version != 2 || resp.Headers["ETag"] != `"2"` {
		t.Errorf("stored %+v etag %s, want the winner's name at version 2", v, resp.Headers["ETag"])
	}
}

// TestConcurrentUpdatesWithoutIfMatch: writers who name no version never
// get 412: each update is retried onto the version another left and
// succeeds (or, should contention outlast the retries, gets a retryable
// 503), and none is lost: every success is one version and one audit entry.
func TestConcurrentUpdatesWithoutIfMatch(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	id := create(t, env, admin, basicBody("c"))
	const n = 12
	type result struct {
		status int
		code   string
		retry  string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r apitest.Response
			switch i % 3 { // three kinds of change, all through the same write
			case 0:
				r = env.Do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: map[string]any{"settings": map[string]any{"testPath": fmt.Sprintf("/p%d", i)}}})
			case 1:
				r = env.Do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: map[string]any{"name": fmt.Sprintf("writer-%d", i)}})
			case 2:
				r = env.Do(apitest.Request{Method: "PUT", Path: "/connections/" + id + "/owners", Caller: admin, Body: map[string]any{"owners": []string{"alice", fmt.Sprintf("co-owner-%d", i)}}})
			}
			results[i] = result{r.Status, r.ErrorCode(), r.Headers["Retry-After"]}
		}()
	}
	wg.Wait()
	ok := 0
	for i, r := range results {
		switch {
		case r.status == 200:
			ok++
		case r.status == 503 && r.code == "contention" && r.retry != "":
			t.Logf("writer %d: 503 contention", i)
		default:
			t.Errorf("writer %d: %d %s (Retry-After %q); want 200, or 503 contention with Retry-After", i, r.status, r.code, r.retry)
		}
	}
	t.Logf("%d concurrent updates without If-Match: %d succeeded", n, ok)
	var v struct{ Version int64 }
	env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id, Caller: admin}).Decode(t, &v)
	var audit struct {
		Items []struct {
			Action  string
			Version int64
		}
	}
	env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id + "/audit?limit=100", Caller: admin}).Decode(t, &audit)
	if v.Version != int64(1+ok) || len(audit.Items) != 1+ok {
		t.Fatalf("version %d and %d audit entries after %d successes: an update was lost", v.Version, len(audit.Items), ok)
	}
	for i, a := range audit.Items { // newest first
		if a.Version != v.Version-int64(i) {
			t.Errorf("audit entry %d: version %d, want %d", i, a.Version, v.Version-int64(i))
		}
	}
}

// TestIdempotentCreate is property 5.
func TestIdempotentCreate(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	body := basicBody("idem")
	key := map[string]string{"Idempotency-Key": "create-42"}
	first := env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: body, Headers: key})
	if first.Status != 201 {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	// Retried, including concurrently.
	var wg sync.WaitGroup
	results := make([]apitest.Response, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: body, Headers: key})
		}()
	}
	wg.Wait()
	var want struct{ ID string }
	first.Decode(t, &want)
	for i, r := range results {
		var got struct{ ID string }
		r.Decode(t, &got)
		if r.Status != 201 || got.ID != want.ID || r.Headers["Idempotent-Replayed"] != "true" {
			t.Errorf("retry %d: %d %s %v", i, r.Status, r.Body, r.Headers)
		}
	}
	other := basicBody("different")
	if r := env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: other, Headers: key}); r.Status != 409 || r.ErrorCode() != "idempotency_key_reused" {
		t.Errorf("same key, different body: %d %s", r.Status, r.Body)
	}
	if n := count(t, env, admin); n != 1 {
		t.Errorf("%d connections after 1 create and 9 retries, want 1", n)
	}
	// Keys are per user: another user may use the same key.
	bob := &apitest.Caller{Tenant: "t1", User: "bob", TenantAdmin: true}
	if r := env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: bob, Body: body, Headers: key}); r.Status != 201 || r.Headers["Idempotent-Replayed"] != "" {
		t.Errorf("other user, same key: %d %v", r.Status, r.Headers)
	}
	// After 24 hours the key may be used again.
	env.Clock.Advance(25 * 60 * 60 * 1e9)
	if r := env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: other, Headers: key}); r.Status != 201 || r.Headers["Idempotent-Replayed"] != "" {
		t.Errorf("expired key reused: %d %s", r.Status, r.Body)
	}
}

// TestTenantIsolation is property 10: another tenant gets a uniform 404 for
// every id, on every route, and the rejection is logged.
func TestTenantIsolation(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	var ids []string
	for i := range 5 {
		ids = append(ids, create(t, env, admin, basicBody(fmt.Sprint("b", i))))
	}
	intruder := &apitest.Caller{Tenant: "t2", User: "alice", TenantAdmin: true}
	notFound := env.Do(apitest.Request{Method: "GET", Path: "/connections/01NOSUCHCONNECTION00000000", Caller: intruder})
	for _, id := range ids {
		for _, r := range []apitest.Request{
			{Method: "GET", Path: "/connections/" + id},
			{Method: "PATCH", Path: "/connections/" + id, Body: map[string]any{"name": "x"}},
			{Method: "PUT", Path: "/connections/" + id + "/availability", Body: map[string]any{"scope": "tenant"}},
			{Method: "PUT", Path: "/connections/" + id + "/owners", Body: map[string]any{"owners": []string{"alice"}}},
			{Method: "GET", Path: "/connections/" + id + "/audit"},
			{Method: "DELETE", Path: "/connections/" + id},
		} {
			r.Caller = intruder
			resp := env.Do(r)
			if resp.Status != 404 || string(resp.Body) != string(notFound.Body) {
				t.Errorf("%s %s: %d %s, want the same 404 as a missing id: %s", r.Method, r.Path, resp.Status, resp.Body, notFound.Body)
			}
		}
	}
	if n := count(t, env, intruder); n != 0 {
		t.Errorf("intruder lists %d connections", n)
	}
	if got := strings.Count(env.Logs.String(), `"code":"not_found"`); got < 30 {
		t.Errorf("%d rejections logged, want 30", got)
	}
	if n := count(t, env, admin); n != 5 {
		t.Errorf("owner tenant has %d connections, want 5 intact", n)
	}
}

func TestUpdateFlow(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	id := create(t, env, admin, basicBody("u"))
	patch := func(body any, ifMatch string) apitest.Response {
		h := map[string]string{}
		if ifMatch != "" {
			h["If-Match"] = ifMatch
		}
		return env.Do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: body, Headers: h})
	}
	r := patch(map[string]any{"settings": map[string]any{"passwordExpiresAt": "2027-03-01T00:00:00Z"}}, `"1"`)
	var v struct {
		Settings    map[string]any
		Version     int64
		Credentials map[string]bool
		Status      string
	}
	r.Decode(t, &v)
	if r.Status != 200 || v.Version != 2 || v.Settings["baseUrl"] != "https://api.example.com" || v.Settings["passwordExpiresAt"] != "2027-03-01T00:00:00Z" {
		t.Fatalf("merge patch: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{"name": "x"}, `"1"`); r.Status != 412 || r.ErrorCode() != "version_mismatch" {
		t.Errorf("stale If-Match: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{"name": "x"}, `soon`); r.Status != 400 || r.ErrorField() != "If-Match" {
		t.Errorf("malformed If-Match: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{}, ""); r.Status != 400 || r.ErrorCode() != "empty_update" {
		t.Errorf("empty patch: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{"settings": map[string]any{"baseUrl": nil}}, ""); r.Status != 400 || r.ErrorField() != "settings.baseUrl" {
		t.Errorf("removing a required setting: %d %s", r.Status, r.Body)
	}
	// Credentials replace the whole set and must satisfy the schema.
	if r := patch(map[string]any{"credentials": map[string]any{"password": "only"}}, ""); r.Status != 400 || r.ErrorField() != "credentials.username" {
		t.Errorf("partial credentials: %d %s", r.Status, r.Body)
	}
	r = patch(map[string]any{"credentials": map[string]any{"username": "u2", "password": "p2"}, "name": "renamed"}, `"2"`)
	r.Decode(t, &v)
	if r.Status != 200 || v.Version != 3 || !v.Credentials["password"] || v.Status != "active" {
		t.Errorf("credential change: %d %s", r.Status, r.Body)
	}
	// An unchanged update writes nothing.
	r = patch(map[string]any{"name": "renamed"}, "")
	r.Decode(t, &v)
	if v.Version != 3 {
		t.Errorf("no-op update bumped the version to %d", v.Version)
	}
	// Delete with a stale ETag, then for real; afterwards it is gone everywhere.
	if r := env.Do(apitest.Request{Method: "DELETE", Path: "/connections/" + id, Caller: admin, Headers: map[string]string{"If-Match": `"2"`}}); r.Status != 412 {
		t.Errorf("stale delete: %d", r.Status)
	}
	if r := env.Do(apitest.Request{Method: "DELETE", Path: "/connections/" + id, Caller: admin, Headers: map[string]string{"If-Match": `"3"`}}); r.Status != 204 {
		t.Errorf("delete: %d %s", r.Status, r.Body)
	}
	for _, p := range []string{"/connections/" + id, "/connections/" + id + "/audit"} {
		if r := env.Do(apitest.Request{Method: "GET", Path: p, Caller: admin}); r.Status != 404 {
			t.Errorf("GET %s after delete: %d", p, r.Status)
		}
	}
	if n := count(t, env, admin); n != 0 {
		t.Errorf("deleted connection still listed")
	}
}

func TestAudit(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	id := create(t, env, admin, basicBody("a"))
	steps := []apitest.Request{
		{Method: "PATCH", Path: "/connections/" + id, Body: map[string]any{"name": "b"}},
		{Method: "PATCH", Path: "/connections/" + id, Body: map[string]any{"credentials": map[string]any{"username": "u", "password": "CANARY-audit"}}},
		{Method: "PUT", Path: "/connections/" + id + "/availability", Body: map[string]any{"scope": "site", "site": "/sites/hr"}},
		{Method: "PUT", Path: "/connections/" + id + "/owners", Body: map[string]any{"owners": []string{"alice", "bob"}}},
	}
	for _, s := range steps {
		s.Caller = admin
		if r := env.Do(s); r.Status != 200 {
			t.Fatalf("%s %s: %d %s", s.Method, s.Path, r.Status, r.Body)
		}
	}
	type entry struct {
		Action  string
		Actor   string
		Version int64
		Changes []string
		Details map[string]string
	}
	var all []entry
	cursor := ""
	for range 10 {
		path := "/connections/" + id + "/audit?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := env.Do(apitest.Request{Method: "GET", Path: path, Caller: admin})
		var page struct {
			Items      []entry
			NextCursor string
		}
		r.Decode(t, &page)
		all = append(all, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	want := []string{"connection.owners_changed", "connection.availability_changed", "connection.credentials_changed", "connection.updated", "connection.created"}
	var got []string
	for _, e := range all {
		got = append(got, e.Action)
		if e.Actor != "alice" {
			t.Errorf("%s by %q", e.Action, e.Actor)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("audit newest first = %v, want %v", got, want)
	}
	if all[0].Details["added"] != "bob" || all[1].Details["to"] != "site:/sites/hr" || all[2].Changes[0] != "credentials.password" {
		t.Errorf("details: %+v", all[:3])
	}
	r := env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id + "/audit", Caller: admin})
	if strings.Contains(string(r.Body), "CANARY") {
		t.Error("audit holds a secret")
	}
	if r := env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id + "/audit?cursor=!!", Caller: admin}); r.Status != 400 {
		t.Errorf("bad cursor: %d", r.Status)
	}
}

// TestListPagesAndFilters walks every page and applies each filter.
func TestListPagesAndFilters(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	sca := &apitest.Caller{Tenant: "t1", User: "sca", SiteCollections: []string{"/sites/hr"}}
	member := &apitest.Caller{Tenant: "t1", User: "m", Sites: []string{"/sites/hr/payroll", "/sites/fin"}}
	want := map[string]bool{}
	for i := range 7 {
		want[create(t, env, admin, basicBody(fmt.Sprint("tenant", i)))] = true
	}
	for i := range 4 {
		want[create(t, env, sca, basicBody(fmt.Sprint("hr", i)))] = true
	}
	finSite := basicBody("fin")
	finSite["availability"] = map[string]any{"scope": "site", "site": "/sites/fin"}
	want[create(t, env, admin, finSite)] = true
	otherSite := basicBody("other")
	otherSite["availability"] = map[string]any{"scope": "site", "site": "/sites/other"}
	hidden := create(t, env, admin, otherSite)
	mine := create(t, env, member, map[string]any{"type": "http-api-key", "name": "mine", "kind": "personal", "settings": map[string]any{"baseUrl": "https://x.example.com", "headerName": "X-Key"}, "credentials": map[string]any{"apiKey": "k"}})
	want[mine] = true

	var got []string
	cursor := ""
	pages := 0
	for {
		path := "/connections?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page struct {
			Items      []struct{ ID string }
			NextCursor string
		}
		r := env.Do(apitest.Request{Method: "GET", Path: path, Caller: member})
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r.Decode(t, &page)
		pages++
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		if cursor = page.NextCursor; cursor == "" || pages > 20 {
			break
		}
	}
	if len(got) != len(want) {
		t.Errorf("member listed %d connections in %d pages, want %d", len(got), pages, len(want))
	}
	for i, id := range got {
		if !want[id] || id == hidden {
			t.Errorf("listed %s, which the member may not see", id)
		}
		if i > 0 && got[i-1] >= id {
			t.Errorf("not in id order or duplicated: %s after %s", id, got[i-1])
		}
	}
	filters := []struct {
		query string
		want  int
	}{
		{"scope=siteCollection", 4},
		{"scope=site", 1},
		{"scope=tenant", 7},
		{"scope=personal", 1},
		{"type=http-api-key", 1},
		{"status=active", 13},
		{"status=expired", 0},
	}
	for _, f := range filters {
		var page struct{ Items []any }
		r := env.Do(apitest.Request{Method: "GET", Path: "/connections?limit=100&" + f.query, Caller: member})
		r.Decode(t, &page)
		if len(page.Items) != f.want {
			t.Errorf("%s: %d items, want %d", f.query, len(page.Items), f.want)
		}
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "scope=moon", "status=sleepy", "type=ftp", "cursor=!!!"} {
		if r := env.Do(apitest.Request{Method: "GET", Path: "/connections?" + q, Caller: member}); r.Status != 400 {
			t.Errorf("%s: %d, want 400", q, r.Status)
		}
	}
	// Availability moved away from the member's sites: the index entry moves too.
	id := got[len(got)-2]
	if r := env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id, Caller: admin}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	if r := env.Do(apitest.Request{Method: "PUT", Path: "/connections/" + got[len(got)-2] + "/availability", Caller: admin, Body: map[string]any{"scope": "site", "site": "/sites/other"}}); r.Status != 200 {
		t.Fatalf("move: %d %s", r.Status, r.Body)
	}
	if n := count(t, env, member); n != len(want)-1 {
		t.Errorf("after moving one away the member sees %d, want %d", n, len(want)-1)
	}
}
