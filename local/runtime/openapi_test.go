package runtime_test

// The OpenAPI document, docs/openapi.yaml, is held to the template and to
// the running system: its operations are exactly template.yaml's HttpApi
// routes, and every response of a realistic scenario over HTTP (and every
// request body sent) validates against the document's schemas. A status
// the document does not list for an operation fails.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/shared/httpapi"
)

// openAPIFile is the document, relative to the repository root.
const openAPIFile = "docs/openapi.yaml"

// docURL names the whole document as one JSON Schema resource, so a
// schema is compiled as docURL#<JSON pointer> and its $refs to
// #/components/schemas/... resolve inside it.
const docURL = "urn:connmgr:openapi"

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// apiDoc is the parsed document with a compiler over it.
type apiDoc struct {
	root    map[string]any
	comp    *jsonschema.Compiler
	schemas map[string]*jsonschema.Schema
	keys    []string // "GET /connections/{id}", sorted
}

func loadAPIDoc(t *testing.T, root string) *apiDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(openAPIFile)))
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", openAPIFile, err)
	}
	j, err := json.Marshal(jsonValue(y))
	if err != nil {
		t.Fatalf("%s as JSON: %v", openAPIFile, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	d := &apiDoc{comp: jsonschema.NewCompiler(), schemas: map[string]*jsonschema.Schema{}}
	d.root, _ = inst.(map[string]any)
	if d.root == nil || d.root["openapi"] != "3.1.0" {
		t.Fatalf("%s is not an OpenAPI 3.1.0 document", openAPIFile)
	}
	d.comp.DefaultDraft(jsonschema.Draft2020)
	d.comp.AssertFormat()
	if err := d.comp.AddResource(docURL, inst); err != nil {
		t.Fatal(err)
	}
	paths, _ := d.root["paths"].(map[string]any)
	for p, item := range paths {
		for _, m := range httpMethods {
			if _, ok := item.(map[string]any)[m]; ok {
				d.keys = append(d.keys, strings.ToUpper(m)+" "+p)
			}
		}
	}
	slices.Sort(d.keys)
	return d
}

// jsonValue turns decoded YAML into JSON values (yaml.v3 makes a map with
// a non-string key, such as an unquoted status code, map[any]any).
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	}
	return v
}

// ptr joins JSON pointer tokens, escaping each.
func ptr(base string, tokens ...string) string {
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	for _, tok := range tokens {
		base += "/" + esc.Replace(tok)
	}
	return base
}

// get returns the node at a JSON pointer.
func (d *apiDoc) get(p string) (any, bool) {
	var node any = d.root
	if p == "" {
		return node, true
	}
	unesc := strings.NewReplacer("~1", "/", "~0", "~")
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		switch x := node.(type) {
		case map[string]any:
			var ok bool
			if node, ok = x[unesc.Replace(tok)]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			node = x[i]
		default:
			return nil, false
		}
	}
	return node, true
}

// deref follows Reference Objects ($ref to #/...) from the node at p and
// returns where it lands (siblings such as description are overrides).
func (d *apiDoc) deref(p string) (string, map[string]any, bool) {
	for range 10 {
		node, ok := d.get(p)
		m, isMap := node.(map[string]any)
		if !ok || !isMap {
			return p, nil, false
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return p, m, true
		}
		if !strings.HasPrefix(ref, "#") {
			return p, nil, false
		}
		p = strings.TrimPrefix(ref, "#")
	}
	return p, nil, false
}

// schema compiles the schema at a JSON pointer of the document.
func (d *apiDoc) schema(p string) (*jsonschema.Schema, error) {
	if s, ok := d.schemas[p]; ok {
		return s, nil
	}
	var frag strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		frag.WriteString("/" + url.PathEscape(tok))
	}
	s, err := d.comp.Compile(docURL + "#" + frag.String())
	if err != nil {
		return nil, err
	}
	d.schemas[p] = s
	return s, nil
}

// operation finds the documented operation a request selects, matching
// paths as API Gateway does.
func (d *apiDoc) operation(method, rawPath string) (key, opPtr, itemPtr string, ok bool) {
	u, err := url.Parse(rawPath)
	if err != nil {
		return "", "", "", false
	}
	key, _, ok = httpapi.Match(d.keys, method, u.EscapedPath())
	if !ok {
		return "", "", "", false
	}
	_, p, _ := strings.Cut(key, " ")
	itemPtr = ptr("/paths", p)
	return key, ptr(itemPtr, strings.ToLower(method)), itemPtr, true
}

// parameters are an operation's parameters with those of its path item,
// by "in name" (header names lower-cased), each as the pointer of its
// resolved Parameter Object.
func (d *apiDoc) parameters(opPtr, itemPtr string) map[string]string {
	out := map[string]string{}
	for _, base := range []string{itemPtr, opPtr} { // the operation's override
		node, _ := d.get(ptr(base, "parameters"))
		list, _ := node.([]any)
		for i := range list {
			p, m, ok := d.deref(ptr(base, "parameters", strconv.Itoa(i)))
			if !ok {
				continue
			}
			name, _ := m["name"].(string)
			in, _ := m["in"].(string)
			if in == "header" {
				name = strings.ToLower(name)
			}
			out[in+" "+name] = p
		}
	}
	return out
}

// TestOpenAPIRoutesMatchTemplate: the document's operations are exactly
// template.yaml's HttpApi routes, public ones without security, with every
// path parameter declared, every $ref resolving and every component
// schema compiling.
func TestOpenAPIRoutesMatchTemplate(t *testing.T) {
	tmpl, err := sam.LoadFromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	d := loadAPIDoc(t, tmpl.Root)
	public := map[string]bool{}
	var want []string
	for _, f := range fns {
		for _, r := range f.Routes {
			want = append(want, r.Key())
			public[r.Key()] = r.Public
		}
	}
	slices.Sort(want)
	for _, k := range want {
		if !slices.Contains(d.keys, k) {
			t.Errorf("template route %s is not in %s", k, openAPIFile)
		}
	}
	for _, k := range d.keys {
		if !slices.Contains(want, k) {
			t.Errorf("%s documents %s, which is not a route of %s", openAPIFile, k, sam.TemplateFile)
		}
	}
	if len(want) == 0 {
		t.Fatal("the template has no HttpApi routes")
	}

	opIDs := map[string]string{}
	for _, k := range d.keys {
		method, path, _ := strings.Cut(k, " ")
		itemPtr := ptr("/paths", path)
		opPtr := ptr(itemPtr, strings.ToLower(method))
		node, _ := d.get(opPtr)
		op := node.(map[string]any)
		if id, _ := op["operationId"].(string); id == "" {
			t.Errorf("%s has no operationId", k)
		} else if prev, dup := opIDs[id]; dup {
			t.Errorf("operationId %s is used by %s and %s", id, prev, k)
		} else {
			opIDs[id] = k
		}
		sec, hasSec := op["security"].([]any)
		if isPublic := hasSec && len(sec) == 0; isPublic != public[k] {
			t.Errorf("%s: security: [] is %v in the document, the route is public: %v in the template", k, isPublic, public[k])
		}
		params := d.parameters(opPtr, itemPtr)
		var inPath []string
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") {
				name := strings.TrimSuffix(strings.Trim(seg, "{}"), "+")
				inPath = append(inPath, name)
				if params["path "+name] == "" {
					t.Errorf("%s: path parameter %s is not declared", k, name)
				}
			}
		}
		for p := range params {
			if name, ok := strings.CutPrefix(p, "path "); ok && !slices.Contains(inPath, name) {
				t.Errorf("%s declares path parameter %s, which the path lacks", k, name)
			}
		}
		resps, _ := op["responses"].(map[string]any)
		if len(resps) == 0 {
			t.Errorf("%s documents no responses", k)
		}
		for code := range resps {
			if _, err := strconv.Atoi(code); err != nil || len(code) != 3 {
				t.Errorf("%s: response %q is not a status code (the test holds every status to an explicit entry)", k, code)
			}
		}
	}

	// Every $ref resolves; every component schema compiles.
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if _, found := d.get(strings.TrimPrefix(ref, "#")); !strings.HasPrefix(ref, "#/") || !found {
					t.Errorf("%s: $ref %s does not resolve", p, ref)
				}
			}
			for k, e := range x {
				walk(ptr(p, k), e)
			}
		case []any:
			for i, e := range x {
				walk(ptr(p, strconv.Itoa(i)), e)
			}
		}
	}
	walk("", d.root)
	schemas, _ := d.get("/components/schemas")
	for _, name := range slices.Sorted(maps.Keys(schemas.(map[string]any))) {
		if _, err := d.schema(ptr("/components/schemas", name)); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
}

// apiCheck validates requests and responses against the document.
type apiCheck struct {
	t         *testing.T
	doc       *apiDoc
	validated int             // requests sent, each response validated
	covered   map[string]bool // "GET /connections/{id} 200"
}

func (a *apiCheck) validate(p string, inst any) error {
	s, err := a.doc.schema(p)
	if err != nil {
		return fmt.Errorf("compile %s: %w", p, err)
	}
	return s.Validate(inst)
}

func jsonInstance(b []byte) (any, error) { return jsonschema.UnmarshalJSON(bytes.NewReader(b)) }

// requestProblems lists why the document would not accept a request: an
// undocumented or invalid parameter or header, a missing required one, an
// undocumented media type, or a body its schema rejects.
func (a *apiCheck) requestProblems(opPtr, itemPtr, path string, body any, headers map[string]string) []string {
	var out []string
	params := a.doc.parameters(opPtr, itemPtr)
	sent := map[string]string{}
	if u, err := url.Parse(path); err == nil {
		for name, vs := range u.Query() {
			sent["query "+name] = vs[0]
		}
	}
	contentType := ""
	for name, v := range headers {
		if strings.EqualFold(name, "content-type") {
			contentType = v
			continue
		}
		sent["header "+strings.ToLower(name)] = v
	}
	for key, v := range sent {
		p, ok := params[key]
		if !ok {
			out = append(out, key+" is not a documented parameter")
			continue
		}
		if _, ok := a.doc.get(ptr(p, "schema")); !ok {
			continue
		}
		var inst any = v // query and header values are strings, integers where the schema says so
		if typ, _ := a.doc.get(ptr(p, "schema", "type")); typ == "integer" {
			if n, err := strconv.Atoi(v); err == nil {
				inst = n
			}
		}
		if err := a.validate(ptr(p, "schema"), inst); err != nil {
			out = append(out, fmt.Sprintf("%s %q: %v", key, v, err))
		}
	}
	for key, p := range params {
		if req, _ := a.doc.get(ptr(p, "required")); req == true && !strings.HasPrefix(key, "path ") {
			if _, ok := sent[key]; !ok {
				out = append(out, key+" is required")
			}
		}
	}
	rbPtr, rb, hasBody := a.doc.deref(ptr(opPtr, "requestBody"))
	switch {
	case body == nil && hasBody && rb["required"] == true:
		out = append(out, "the request body is required")
	case body != nil && !hasBody:
		out = append(out, "the operation takes no request body")
	case body != nil:
		if contentType == "" {
			contentType = "application/json"
		}
		mt, _, _ := mime.ParseMediaType(contentType)
		sp := ptr(rbPtr, "content", mt, "schema")
		if _, ok := a.doc.get(sp); !ok {
			out = append(out, "request media type "+mt+" is not documented")
			break
		}
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		inst, err := jsonInstance(b)
		if err != nil {
			a.t.Fatal(err)
		}
		if err := a.validate(sp, inst); err != nil {
			out = append(out, fmt.Sprintf("request body: %v", err))
		}
	}
	return out
}

// responseProblems lists how a response departs from the document.
func (a *apiCheck) responseProblems(opPtr string, r response) []string {
	code := strconv.Itoa(r.status)
	respPtr, resp, ok := a.doc.deref(ptr(opPtr, "responses", code))
	if !ok {
		return []string{fmt.Sprintf("status %d is not documented for the operation", r.status)}
	}
	var out []string
	content, hasContent := resp["content"].(map[string]any)
	switch {
	case !hasContent && len(r.body) > 0:
		out = append(out, "the document gives no body, the response has one")
	case hasContent:
		mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
		if _, ok := content[mt]; !ok {
			out = append(out, fmt.Sprintf("media type %q is not documented (%v)", mt, slices.Sorted(maps.Keys(content))))
			break
		}
		var inst any = string(r.body)
		if mt == "application/json" {
			var err error
			if inst, err = jsonInstance(r.body); err != nil {
				out = append(out, fmt.Sprintf("the body is not JSON: %v", err))
				break
			}
		}
		if err := a.validate(ptr(respPtr, "content", mt, "schema"), inst); err != nil {
			out = append(out, fmt.Sprintf("body: %v", err))
		}
	}
	documented, _ := resp["headers"].(map[string]any)
	for name := range documented {
		hp, h, ok := a.doc.deref(ptr(respPtr, "headers", name))
		if !ok {
			out = append(out, "header "+name+" does not resolve")
			continue
		}
		v := r.header.Get(name)
		if v == "" {
			if h["required"] == true {
				out = append(out, "required header "+name+" is missing")
			}
			continue
		}
		if err := a.validate(ptr(hp, "schema"), v); err != nil {
			out = append(out, fmt.Sprintf("header %s %q: %v", name, v, err))
		}
	}
	for _, name := range []string{"ETag", "Location", "Idempotent-Replayed"} {
		if r.header.Get(name) == "" {
			continue
		}
		listed := false
		for d := range documented {
			listed = listed || strings.EqualFold(d, name)
		}
		if !listed {
			out = append(out, "header "+name+" is sent but not documented")
		}
	}
	return out
}

// request modes
const (
	validRequest   = true  // the document must accept the request
	invalidRequest = false // the document must refuse it too (the API answers 4xx)
)

// do sends a request through c, holds it and the response to the document,
// and checks the status.
func (a *apiCheck) do(c *client, valid bool, method, path string, body any, headers map[string]string, want int) response {
	a.t.Helper()
	key, opPtr, itemPtr, ok := a.doc.operation(method, path)
	if !ok {
		a.t.Fatalf("%s %s is not an operation of %s", method, path, openAPIFile)
	}
	probs := a.requestProblems(opPtr, itemPtr, path, body, headers)
	switch {
	case valid && len(probs) > 0:
		a.t.Errorf("%s %s: the document refuses a request the test means as valid: %s", method, path, strings.Join(probs, "; "))
	case !valid && len(probs) == 0:
		a.t.Errorf("%s %s: the document accepts a request the API refuses with %d", method, path, want)
	}
	r := c.do(method, path, body, headers)
	if r.status != want {
		a.t.Errorf("%s %s: status %d %s, want %d", method, path, r.status, r.body, want)
	}
	if probs := a.responseProblems(opPtr, r); len(probs) > 0 {
		a.t.Errorf("%s %s → %d does not match %s:\n  %s\n  body: %s", method, path, r.status, openAPIFile, strings.Join(probs, "\n  "), r.body)
	}
	a.validated++
	a.covered[fmt.Sprintf("%s %d", key, r.status)] = true
	return r
}

// TestOpenAPIResponsesMatchDocument drives connections, OAuth clients, the
// callback and runs over HTTP against the local runtime and validates every
// request and response against docs/openapi.yaml.
func TestOpenAPIResponsesMatchDocument(t *testing.T) {
	const canary = "CANARY-openapi-pw-9d1e"
	rt, _ := start(t)
	a := &apiCheck{t: t, doc: loadAPIDoc(t, rt.Template.Root), covered: map[string]bool{}}
	target := newBasicTarget(t, canary)

	admin := login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})
	owner := login(t, rt, map[string]any{"sub": "olga", "tid": "contoso", "owns": []string{"/sites/hr"}})
	member := login(t, rt, map[string]any{"sub": "bob", "tid": "contoso", "sites": []string{"/sites/hr"}})
	anon := &client{t: t, base: rt.URL}
	// A verified token whose site claim is not a path: the function's 401.
	malformed := login(t, rt, map[string]any{"sub": "mallory", "tid": "contoso", "sites": []string{"hr"}})

	type view struct {
		ID           string
		Status       string
		AuthorizeURL string
		NextCursor   string
		Items        []struct{ ID string }
	}
	read := func(r response) view {
		t.Helper()
		var v view
		decode(t, r, &v)
		return v
	}
	ifMatch := func(r response) map[string]string { return map[string]string{"If-Match": r.header.Get("ETag")} }
	const stale = `"999"`

	// Authentication and the catalogue.
	a.do(anon, validRequest, "GET", "/connections", nil, nil, 401)
	a.do(malformed, validRequest, "GET", "/connections", nil, nil, 401)
	a.do(admin, validRequest, "GET", "/connection-types", nil, nil, 200)

	// Create: each auth method, shared and personal, an idempotent replay.
	basicBody := map[string]any{"type": "http-basic", "name": "Payroll API", "kind": "shared",
		"settings":    map[string]any{"baseUrl": target.URL + "/api", "testPath": "/ping"},
		"credentials": map[string]any{"username": "svc", "password": canary}}
	idem := map[string]string{"Idempotency-Key": "openapi-1"}
	basic := a.do(admin, validRequest, "POST", "/connections", basicBody, idem, 201)
	basicID := read(basic).ID
	replay := a.do(admin, validRequest, "POST", "/connections", basicBody, idem, 201)
	if replay.header.Get("Idempotent-Replayed") != "true" || read(replay).ID != basicID {
		t.Errorf("replay: %v %s", replay.header, replay.body)
	}
	reused := maps.Clone(basicBody)
	reused["name"] = "Another name"
	a.do(admin, validRequest, "POST", "/connections", reused, idem, 409)
	apiKeyID := read(a.do(admin, validRequest, "POST", "/connections", map[string]any{"type": "http-api-key", "name": "Key API", "kind": "shared",
		"availability": map[string]any{"scope": "siteCollection", "siteCollection": "/sites/hr"},
		"settings":     map[string]any{"baseUrl": target.URL, "headerName": "X-Api-Key"}, "credentials": map[string]any{"apiKey": "k-" + canary}}, nil, 201)).ID
	sharepoint := read(a.do(owner, validRequest, "POST", "/connections", map[string]any{"type": "sharepoint-online", "name": "HR site", "kind": "shared",
		"settings": map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/hr"}, "credentials": map[string]any{}}, nil, 201))
	sharepointID := sharepoint.ID
	if sharepoint.Status != "pending_authorization" || sharepoint.AuthorizeURL == "" {
		t.Errorf("sharepoint-online: %+v", sharepoint)
	}
	a.do(owner, validRequest, "POST", "/connections", map[string]any{"type": "sharepoint-online", "name": "Not SharePoint", "kind": "shared",
		"settings": map[string]any{"siteUrl": target.URL + "/sites/hr"}, "credentials": map[string]any{}}, nil, 400)
	a.do(admin, validRequest, "POST", "/connections", map[string]any{"type": "sharepoint-online-app", "name": "HR app-only", "kind": "shared",
		"settings": map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/hr"}, "credentials": map[string]any{}}, nil, 201)
	personalID := read(a.do(member, validRequest, "POST", "/connections", map[string]any{"type": "http-basic", "name": "Mine", "kind": "personal",
		"settings": map[string]any{"baseUrl": target.URL + "/api", "testPath": "/ping"}, "credentials": map[string]any{"username": "svc", "password": "wrong-" + canary}}, nil, 201)).ID
	oauthCreated := read(a.do(admin, validRequest, "POST", "/connections", map[string]any{"type": "oauth2-generic", "name": "Generic API", "kind": "shared",
		"settings": map[string]any{}, "credentials": map[string]any{}}, nil, 201))
	if oauthCreated.Status != "pending_authorization" || oauthCreated.AuthorizeURL == "" {
		t.Errorf("oauth2-generic: %+v", oauthCreated)
	}
	// Refused creations.
	a.do(admin, validRequest, "POST", "/connections", map[string]any{"type": "oauth2-client-credentials", "name": "CC", "kind": "shared",
		"settings": map[string]any{"baseUrl": "https://api.example.com"}}, nil, 400) // no OAuth client registered
	a.do(admin, validRequest, "POST", "/connections", map[string]any{"type": "http-basic", "name": "No URL", "kind": "shared",
		"settings": map[string]any{}, "credentials": map[string]any{"username": "u", "password": "p"}}, nil, 400)
	a.do(admin, invalidRequest, "POST", "/connections", map[string]any{"type": "http-basic", "name": "x", "kind": "team"}, nil, 400)
	a.do(admin, invalidRequest, "POST", "/connections", map[string]any{"type": "http-basic", "name": "x", "kind": "shared", "colour": "red"}, nil, 400)
	a.do(member, validRequest, "POST", "/connections", map[string]any{"type": "http-basic", "name": "Shared", "kind": "shared",
		"settings": map[string]any{"baseUrl": "https://api.example.com"}, "credentials": map[string]any{"username": "u", "password": "p"}}, nil, 403)
	a.do(admin, invalidRequest, "POST", "/connections", basicBody, map[string]string{"Content-Type": "text/plain"}, 415)
	a.do(admin, invalidRequest, "POST", "/connections", map[string]any{"type": "http-basic", "name": strings.Repeat("n", 70<<10), "kind": "shared"}, nil, 413)
	a.do(admin, invalidRequest, "POST", "/connections", basicBody, map[string]string{"Idempotency-Key": "has#hash"}, 400)

	// Read and list, with a cursor and filters.
	got := a.do(admin, validRequest, "GET", "/connections/"+basicID, nil, nil, 200)
	a.do(admin, validRequest, "GET", "/connections/01NOSUCHCONNECTION", nil, nil, 404)
	a.do(member, validRequest, "GET", "/connections/"+sharepointID, nil, nil, 200) // available to /sites/hr
	a.do(owner, validRequest, "GET", "/connections/"+personalID, nil, nil, 404)    // someone else's personal connection
	page1 := read(a.do(admin, validRequest, "GET", "/connections?limit=2", nil, nil, 200))
	if len(page1.Items) != 2 || page1.NextCursor == "" {
		t.Fatalf("first page: %+v", page1)
	}
	page2 := read(a.do(admin, validRequest, "GET", "/connections?limit=2&cursor="+url.QueryEscape(page1.NextCursor), nil, nil, 200))
	if len(page2.Items) == 0 || page2.Items[0].ID == page1.Items[0].ID {
		t.Errorf("second page: %+v", page2)
	}
	a.do(admin, validRequest, "GET", "/connections?type=http-basic&scope=tenant&status=active", nil, nil, 200)
	a.do(admin, validRequest, "GET", "/connections?type=ftp", nil, nil, 400)
	a.do(admin, invalidRequest, "GET", "/connections?limit=0", nil, nil, 400)
	a.do(admin, invalidRequest, "GET", "/connections?scope=galaxy", nil, nil, 400)
	a.do(admin, validRequest, "GET", "/connections?cursor=%21%21", nil, nil, 400)

	// Update: If-Match, a stale one, bad input.
	patched := a.do(admin, validRequest, "PATCH", "/connections/"+basicID, map[string]any{"name": "Payroll API v2", "settings": map[string]any{"testPath": "/ping"}}, ifMatch(got), 200)
	a.do(admin, validRequest, "PATCH", "/connections/"+basicID, map[string]any{"name": "Stale"}, ifMatch(got), 412)
	a.do(admin, invalidRequest, "PATCH", "/connections/"+basicID, map[string]any{}, nil, 400)
	a.do(admin, invalidRequest, "PATCH", "/connections/"+basicID, map[string]any{"name": "x"}, map[string]string{"If-Match": "3"}, 400)
	a.do(admin, invalidRequest, "PATCH", "/connections/"+basicID, map[string]any{"owner": "x"}, nil, 400)
	a.do(admin, validRequest, "PATCH", "/connections/"+basicID, map[string]any{"settings": map[string]any{"baseUrl": "ftp://x"}}, nil, 400)
	a.do(admin, validRequest, "PATCH", "/connections/"+oauthCreated.ID, map[string]any{"credentials": map[string]any{"token": "t"}}, nil, 400)
	a.do(member, validRequest, "PATCH", "/connections/"+sharepointID, map[string]any{"name": "Mine now"}, nil, 403)
	a.do(admin, validRequest, "PATCH", "/connections/01NOSUCHCONNECTION", map[string]any{"name": "x"}, nil, 404)
	a.do(admin, invalidRequest, "PATCH", "/connections/"+basicID, map[string]any{"name": "x"}, map[string]string{"Content-Type": "text/plain"}, 415)

	// Availability and owners.
	patched = a.do(admin, validRequest, "PUT", "/connections/"+basicID+"/availability", map[string]any{"scope": "site", "site": "/sites/hr/payroll"}, ifMatch(patched), 200)
	patched = a.do(admin, validRequest, "PUT", "/connections/"+basicID+"/availability", map[string]any{"scope": "tenant"}, nil, 200)
	a.do(admin, invalidRequest, "PUT", "/connections/"+basicID+"/availability", map[string]any{"scope": "site"}, nil, 400)
	a.do(admin, validRequest, "PUT", "/connections/"+personalID+"/availability", map[string]any{"scope": "tenant"}, nil, 409)
	a.do(owner, validRequest, "PUT", "/connections/"+sharepointID+"/availability", map[string]any{"scope": "tenant"}, nil, 403)
	a.do(admin, validRequest, "PUT", "/connections/"+basicID+"/availability", map[string]any{"scope": "tenant"}, map[string]string{"If-Match": stale}, 412)
	patched = a.do(admin, validRequest, "PUT", "/connections/"+basicID+"/owners", map[string]any{"owners": []string{"alice", "olga"}}, ifMatch(patched), 200)
	a.do(admin, invalidRequest, "PUT", "/connections/"+basicID+"/owners", map[string]any{"owners": []string{}}, nil, 400)
	a.do(member, validRequest, "PUT", "/connections/"+personalID+"/owners", map[string]any{"owners": []string{"bob", "olga"}}, nil, 409)
	a.do(member, validRequest, "PUT", "/connections/"+basicID+"/owners", map[string]any{"owners": []string{"bob"}}, nil, 403)

	// Audit, a page at a time.
	audit := read(a.do(admin, validRequest, "GET", "/connections/"+basicID+"/audit?limit=2", nil, nil, 200))
	if audit.NextCursor == "" {
		t.Fatalf("audit: no second page")
	}
	a.do(admin, validRequest, "GET", "/connections/"+basicID+"/audit?limit=2&cursor="+url.QueryEscape(audit.NextCursor), nil, nil, 200)
	a.do(member, validRequest, "GET", "/connections/"+personalID+"/audit", nil, nil, 200)
	a.do(owner, validRequest, "GET", "/connections/"+personalID+"/audit", nil, nil, 404)
	a.do(admin, invalidRequest, "GET", "/connections/"+basicID+"/audit?limit=500", nil, nil, 400)

	// OAuth: authorize, the public callback, a reconnect.
	callback := func(authorizeURL string) string {
		t.Helper()
		u, err := rt.OAuth.Authorize(context.Background(), authorizeURL)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.String(), rt.URL+"/oauth/callback?") {
			t.Fatalf("the provider redirected to %s", u)
		}
		return u.RequestURI()
	}
	page := a.do(anon, validRequest, "GET", callback(oauthCreated.AuthorizeURL), nil, nil, 200)
	if !strings.Contains(string(page.body), "Connection authorized") {
		t.Errorf("callback page: %s", page.body)
	}
	a.do(anon, validRequest, "GET", "/oauth/callback?code=abc", nil, nil, 400)
	a.do(anon, validRequest, "GET", "/oauth/callback?state=forged&code=abc", nil, nil, 400)
	reconnect := a.do(admin, validRequest, "POST", "/connections/"+oauthCreated.ID+"/authorize", nil, nil, 200)
	var again struct{ AuthorizeURL string }
	decode(t, reconnect, &again)
	replayed := callback(again.AuthorizeURL)
	a.do(anon, validRequest, "GET", replayed, nil, nil, 200)
	a.do(anon, validRequest, "GET", replayed, nil, nil, 400) // the state is single-use
	a.do(admin, validRequest, "POST", "/connections/"+basicID+"/authorize", nil, nil, 400)
	a.do(member, validRequest, "POST", "/connections/"+oauthCreated.ID+"/authorize", nil, nil, 403)
	a.do(admin, validRequest, "POST", "/connections/01NOSUCHCONNECTION/authorize", nil, nil, 404)
	a.do(admin, validRequest, "GET", "/connections/"+oauthCreated.ID, nil, nil, 200) // active, with tokenExpiresAt

	// Tests: against the host, resolve-only, refused.
	var res struct {
		OK   bool
		Code string
	}
	decode(t, a.do(admin, validRequest, "POST", "/connections/"+basicID+"/test", nil, nil, 200), &res)
	if !res.OK || res.Code != "verified" {
		t.Errorf("test: %+v", res)
	}
	decode(t, a.do(member, validRequest, "POST", "/connections/"+personalID+"/test", nil, nil, 200), &res)
	if res.OK || res.Code != "target_rejected_credentials_401" {
		t.Errorf("test with a wrong password: %+v", res)
	}
	a.do(admin, validRequest, "POST", "/connections/"+oauthCreated.ID+"/test", nil, nil, 200)
	a.do(admin, validRequest, "POST", "/connections/"+apiKeyID+"/test", nil, nil, 200)
	a.do(member, validRequest, "POST", "/connections/"+basicID+"/test", nil, nil, 403)
	a.do(member, validRequest, "POST", "/connections/01NOSUCHCONNECTION/test", nil, nil, 404)

	// OAuth client registrations.
	a.do(admin, validRequest, "GET", "/oauth-clients", nil, nil, 200)
	a.do(member, validRequest, "GET", "/oauth-clients", nil, nil, 403)
	a.do(admin, validRequest, "GET", "/oauth-clients/microsoft-graph", nil, nil, 404)
	graph := map[string]any{"clientId": "graph-app", "clientSecret": "s-" + canary,
		"clientSecretExpiresAt": rt.Clock.Now().UTC().Add(90 * 24 * time.Hour).Format(time.RFC3339), "scopes": []string{"offline_access", "User.Read"}}
	created := a.do(admin, validRequest, "PUT", "/oauth-clients/microsoft-graph", graph, nil, 201)
	a.do(admin, validRequest, "PUT", "/oauth-clients/microsoft-graph", graph, nil, 409)
	current := a.do(admin, validRequest, "GET", "/oauth-clients/microsoft-graph", nil, nil, 200)
	replaced := a.do(admin, validRequest, "PUT", "/oauth-clients/microsoft-graph", map[string]any{"clientId": "graph-app-2", "authStyle": "header"}, ifMatch(current), 200)
	a.do(admin, validRequest, "PUT", "/oauth-clients/microsoft-graph", map[string]any{"clientId": "graph-app-3"}, ifMatch(created), 412)
	a.do(admin, validRequest, "PUT", "/oauth-clients/salesforce", map[string]any{"clientId": "sf"}, nil, 400) // no secret on creation
	a.do(admin, validRequest, "PUT", "/oauth-clients/http-basic", graph, nil, 400)
	a.do(admin, validRequest, "GET", "/oauth-clients/no-such-type", nil, nil, 400)
	a.do(admin, invalidRequest, "PUT", "/oauth-clients/microsoft-graph", map[string]any{"clientId": "x", "authStyle": "basic"}, ifMatch(replaced), 400)
	a.do(admin, invalidRequest, "PUT", "/oauth-clients/microsoft-graph", map[string]any{"clientId": "x"}, map[string]string{"If-Match": stale, "Content-Type": "text/plain"}, 415)
	a.do(member, validRequest, "PUT", "/oauth-clients/microsoft-graph", graph, nil, 403)
	a.do(admin, validRequest, "GET", "/oauth-clients", nil, nil, 200)
	// A certificate client: the wrong key, then the pair; a directory tenant.
	keyPEM, certPEM, err := oauthprovider.GenerateCertificate("openapi", rt.Clock.Now(), 90*24*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := oauthprovider.GenerateCertificate("openapi-2", rt.Clock.Now(), 90*24*time.Hour, true)
	spApp := a.do(admin, validRequest, "GET", "/oauth-clients/sharepoint-online-app", nil, nil, 200)
	appReg := map[string]any{"clientId": "sp-app", "clientCertificate": string(certPEM), "clientPrivateKey": string(otherKey), "directoryTenant": "contoso.onmicrosoft.com"}
	a.do(admin, validRequest, "PUT", "/oauth-clients/sharepoint-online-app", appReg, ifMatch(spApp), 400)
	appReg["clientPrivateKey"] = string(keyPEM)
	a.do(admin, validRequest, "PUT", "/oauth-clients/sharepoint-online-app", appReg, ifMatch(spApp), 200)
	spDelegated := a.do(admin, validRequest, "GET", "/oauth-clients/sharepoint-online", nil, nil, 200)
	a.do(admin, validRequest, "PUT", "/oauth-clients/sharepoint-online", map[string]any{"clientId": "sp", "directoryTenant": "common"}, ifMatch(spDelegated), 400)
	a.do(admin, validRequest, "PUT", "/oauth-clients/sharepoint-online", map[string]any{"clientId": "sp", "clientSecret": "s-" + canary,
		"directoryTenant": "72f988bf-86f1-41af-91ab-2d7cd011db47"}, ifMatch(spDelegated), 200)
	a.do(admin, validRequest, "GET", "/oauth-clients", nil, nil, 200)
	a.do(admin, invalidRequest, "DELETE", "/oauth-clients/microsoft-graph", nil, nil, 428)
	a.do(admin, validRequest, "DELETE", "/oauth-clients/microsoft-graph", nil, ifMatch(created), 412)
	a.do(member, validRequest, "DELETE", "/oauth-clients/microsoft-graph", nil, ifMatch(replaced), 403)
	a.do(admin, validRequest, "DELETE", "/oauth-clients/microsoft-graph", nil, ifMatch(replaced), 204)
	a.do(admin, validRequest, "DELETE", "/oauth-clients/microsoft-graph", nil, ifMatch(replaced), 404)

	// Runs: one succeeds, one suspends and is resumed and terminated.
	startRun := func(conn string) response {
		return a.do(member, validRequest, "POST", "/runs", map[string]any{"workflowId": "wf-openapi", "site": "/sites/hr", "steps": []map[string]any{
			{"id": "list", "action": "http.request", "connection": conn, "input": map[string]any{"method": "GET", "path": "/items", "query": map[string]string{"top": "5"}}},
			{"id": "add", "action": "http.request", "connection": conn, "input": map[string]any{"method": "POST", "path": "/items", "headers": map[string]string{"X-Trace": "1"}, "body": map[string]any{"n": 1}}},
		}}, nil, 202)
	}
	waitFor := func(id, status string) response {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := a.do(member, validRequest, "GET", "/runs/"+id, nil, nil, 200)
			if read(r).Status == status {
				return r
			}
			if time.Now().After(deadline) || t.Failed() {
				t.Fatalf("run %s never became %s: %s", id, status, r.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	okRun := read(startRun(basicID)).ID
	waitFor(okRun, "succeeded")
	suspended := read(startRun(personalID)).ID
	susp := waitFor(suspended, "suspended")
	basicRun := read(startRun(basicID)).ID
	// Usage, replace and rebind: another run waits on the failing personal connection.
	other := read(startRun(personalID)).ID
	otherSusp := waitFor(other, "suspended")
	a.do(member, validRequest, "GET", "/connections/"+personalID+"/usage", nil, nil, 200)
	a.do(member, validRequest, "GET", "/connections/01NOSUCHCONNECTION/usage", nil, nil, 404)
	a.do(member, validRequest, "POST", "/connections/"+personalID+"/replace", map[string]any{"with": basicID, "dryRun": true}, nil, 200)
	a.do(member, validRequest, "POST", "/runs/"+other+"/rebind", map[string]any{"from": personalID, "to": "01NOSUCHCONNECTION"}, ifMatch(otherSusp), 422)
	a.do(member, validRequest, "POST", "/runs/"+other+"/rebind", map[string]any{"from": personalID, "to": basicID}, ifMatch(otherSusp), 202)
	runs1 := read(a.do(member, validRequest, "GET", "/runs?limit=2", nil, nil, 200))
	if runs1.NextCursor == "" {
		t.Fatalf("runs: no second page")
	}
	a.do(member, validRequest, "GET", "/runs?limit=2&cursor="+url.QueryEscape(runs1.NextCursor), nil, nil, 200)
	a.do(admin, validRequest, "GET", "/runs?status=suspended", nil, nil, 200)
	a.do(member, invalidRequest, "GET", "/runs?status=paused", nil, nil, 400)
	a.do(owner, validRequest, "GET", "/runs/01NOSUCHRUN", nil, nil, 404)
	a.do(member, validRequest, "POST", "/runs/"+okRun+"/resume", nil, nil, 409)
	resumed := a.do(member, validRequest, "POST", "/runs/"+suspended+"/resume", nil, ifMatch(susp), 202)
	if read(resumed).Status != "running" {
		t.Errorf("resumed: %s", resumed.body)
	}
	susp = waitFor(suspended, "suspended")
	a.do(member, validRequest, "POST", "/runs/"+suspended+"/terminate", nil, map[string]string{"If-Match": stale}, 412)
	a.do(member, invalidRequest, "POST", "/runs/"+suspended+"/terminate", nil, map[string]string{"If-Match": "latest"}, 400)
	a.do(member, validRequest, "POST", "/runs/"+suspended+"/terminate", nil, ifMatch(susp), 202)
	a.do(member, validRequest, "POST", "/runs/"+suspended+"/terminate", nil, nil, 409)
	a.do(member, validRequest, "POST", "/runs/"+suspended+"/resume", nil, nil, 409)
	a.do(owner, validRequest, "POST", "/runs/01NOSUCHRUN/resume", nil, nil, 404)
	a.do(member, validRequest, "POST", "/runs", map[string]any{"workflowId": "wf", "site": "/sites/it", "steps": []map[string]any{
		{"id": "a", "action": "http.request", "connection": basicID, "input": map[string]any{"method": "GET", "path": "/x"}}}}, nil, 403)
	a.do(member, invalidRequest, "POST", "/runs", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": []map[string]any{
		{"id": "a", "action": "ftp.get", "connection": basicID, "input": map[string]any{"method": "GET", "path": "/x"}}}}, nil, 400)
	a.do(member, validRequest, "POST", "/runs", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": []map[string]any{
		{"id": "a", "action": "http.request", "connection": "01NOSUCHCONNECTION", "input": map[string]any{"method": "GET", "path": "/x"}}}}, nil, 422)
	a.do(member, invalidRequest, "POST", "/runs", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": []map[string]any{}}, nil, 400)
	a.do(member, invalidRequest, "POST", "/runs", map[string]any{"workflowId": "wf"}, map[string]string{"Content-Type": "text/plain"}, 415)

	// Delete: stale, current, gone (once the runs on basicID have ended:
	// a connection in use answers 409).
	waitFor(basicRun, "succeeded")
	waitFor(other, "succeeded")
	a.do(owner, validRequest, "DELETE", "/connections/"+sharepointID, nil, map[string]string{"If-Match": stale}, 412)
	a.do(member, validRequest, "DELETE", "/connections/"+sharepointID, nil, nil, 403)
	a.do(owner, validRequest, "DELETE", "/connections/"+sharepointID, nil, nil, 204)
	a.do(admin, validRequest, "DELETE", "/connections/"+basicID, nil, ifMatch(patched), 204)
	a.do(admin, validRequest, "GET", "/connections/"+basicID, nil, nil, 404)
	a.do(admin, validRequest, "DELETE", "/connections/"+basicID, nil, nil, 404)

	// The Connections page and an asset it names; an earlier deployment's is gone.
	pageResp := a.do(anon, validRequest, "GET", "/", nil, nil, 200)
	asset := regexp.MustCompile(`/assets/[0-9a-f]{16}/main\.js`).Find(pageResp.body)
	if asset == nil {
		t.Fatalf("the page names no main.js asset: %s", pageResp.body)
	}
	a.do(anon, validRequest, "GET", string(asset), nil, nil, 200)
	a.do(anon, validRequest, "GET", "/assets/0000000000000000/main.js", nil, nil, 404)

	// Every operation was exercised with at least one success.
	for _, k := range a.doc.keys {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(a.covered)), func(c string) bool {
			return strings.HasPrefix(c, k+" 2")
		}) {
			t.Errorf("no successful response of %s was validated", k)
		}
	}
	keyPieces := [][]byte{[]byte(canary)}
	for _, k := range [][]byte{keyPEM, otherKey} {
		for _, line := range bytes.Split(bytes.TrimSpace(k), []byte("\n")) {
			if len(line) >= 32 && !bytes.HasPrefix(line, []byte("-----")) {
				keyPieces = append(keyPieces, line[:32])
			}
		}
	}
	for _, c := range []*client{admin, owner, member, anon, malformed} {
		for _, r := range c.seen {
			for _, piece := range keyPieces {
				if bytes.Contains(r.body, piece) {
					t.Errorf("a %d response holds a secret: %s", r.status, r.body)
					break
				}
			}
		}
	}
	t.Logf("%d requests and responses validated against %s: %d distinct (operation, status) pairs over %d operations",
		a.validated, openAPIFile, len(a.covered), len(a.doc.keys))
}
