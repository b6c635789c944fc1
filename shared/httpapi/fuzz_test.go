package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/apperr"
)

// FuzzDecodeJSON: any body is either decoded or refused with a 4xx whose
// message never repeats a value the body held (it may hold a password).
// Keys are names: an unknown or repeated one is named in the answer.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"x","credentials":{"password":"CANARY-fz"}}`, `{"name":5}`, `[1]`, `{"name":"x"}{}`, `{"colour":"CANARY-fz"}`, `{"credentials":{"password":7}}`, ``, `{`,
		// Keys spelled in another case, twice, or with a bad encoding.
		`{"NAME":"CANARY-fz"}`, `{"name":"x","name":"CANARY-fz"}`, `{"credentials":{"password":"CANARY-fz","password":"y"}}`,
		`{"credentials":{"Password":"CANARY-fz","password":"y"}}`, "{\"name\":\"CANARY-fz\xff\"}", `{"name":"CANARY-fz\ud800"}`,
		`{"name":"\ud83d\ude00","credentials":{"p":"\\ud800"}}`, `{"credentials":` + strings.Repeat(`{"a":`, 80) + `1` + strings.Repeat(`}`, 81)} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, body string, b64 bool) {
		r := &Request{APIGatewayV2HTTPRequest: events.APIGatewayV2HTTPRequest{
			Headers: map[string]string{"content-type": "application/json"}, Body: body, IsBase64Encoded: b64,
		}}
		var v struct {
			Name        string            `json:"name"`
			Credentials map[string]string `json:"credentials"`
		}
		err := r.DecodeJSON(&v)
		if err == nil {
			return
		}
		e := ErrorBody(apperr.As(err))
		inner := e["error"].(map[string]any)
		msg := fmt.Sprint(inner["message"]) + fmt.Sprint(inner["field"])
		for _, secret := range []string{"CANARY-fz"} {
			if strings.Contains(body, secret) && strings.Contains(msg, secret) && !keyHolds(body, b64, secret) {
				t.Fatalf("error repeats the body: %q for %q", msg, body)
			}
		}
		if st := apperr.As(err).Kind.Status(); st < 400 || st >= 500 {
			t.Fatalf("status %d for bad input %q", st, body)
		}
	})
}

// FuzzMatch: matching never panics and only ever picks a route of the
// request's method whose literal segments equal the path's.
func FuzzMatch(f *testing.F) {
	routes := []string{"GET /connections", "GET /connections/{id}", "GET /connections/{id}/audit", "POST /runs/{id}/resume", "GET /static/{proxy+}"}
	for _, s := range []string{"/connections/abc", "/connections//audit", "/static/a/b", "/runs/%zz/resume", "/"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		key, params, ok := Match(routes, method, path)
		if !ok {
			return
		}
		m, p, _ := strings.Cut(key, " ")
		if m != method {
			t.Fatalf("%s %s matched %s", method, path, key)
		}
		for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
			if !strings.HasPrefix(seg, "{") && !strings.Contains(path, seg) {
				t.Fatalf("%s matched %s without its literal %q", path, key, seg)
			}
		}
		for name, v := range params {
			if v == "" && !strings.HasSuffix(name, "+") {
				t.Fatalf("%s matched %s with an empty %s", path, key, name)
			}
		}
	})
}

// keyHolds reports whether an object key of the (valid JSON) body holds s.
func keyHolds(body string, b64 bool, s string) bool {
	if b64 {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return false
		}
		body = string(b)
	}
	type frame struct{ object, wantKey bool }
	var stack []frame
	dec := json.NewDecoder(strings.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				if strings.Contains(k, s) {
					return true
				}
				stack[n-1].wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a key comes next.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
}
