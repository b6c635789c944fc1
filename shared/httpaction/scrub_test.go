package httpaction

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// echo is a target that sends the request back, the credential in every
// spelling it can think of: the request's headers, URL and body as
// encoding/json writes them, each credential value JSON-escaped ASCII-only
// (upper case hex) and with every other character escaped, URL- and
// base64-encoded; and headers echoing the Authorization.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	user, pass, _ := r.BasicAuth()
	auth, key := r.Header.Get("Authorization"), r.Header.Get("X-Api-Key")
	token, _ := strings.CutPrefix(auth, "Bearer ")
	var spelled []any
	for _, v := range []string{auth, user, pass, key, token} {
		spelled = append(spelled, map[string]string{
			"query": url.QueryEscape(v), "path": url.PathEscape(v),
			"b64": base64.StdEncoding.EncodeToString([]byte(v)), "b64url": base64.RawURLEncoding.EncodeToString([]byte(v)),
		})
	}
	doc, _ := json.Marshal(map[string]any{"headers": r.Header, "url": r.URL.String(), "body": string(body),
		"basic": []string{user, pass}, "spelled": spelled})
	var out bytes.Buffer
	fmt.Fprintf(&out, `{"echo": %s, "ascii": [`, doc)
	for i, v := range []string{auth, user, pass, key} {
		if i > 0 {
			out.WriteString(", ")
		}
		fmt.Fprintf(&out, `"%s", "%s"`, escapeEvery(v, 1), escapeEvery(v, 2))
	}
	out.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", auth)
	w.Header().Set("Request-Id", key+pass)
	w.Header().Set("ETag", `"`+base64.StdEncoding.EncodeToString([]byte(pass))+`"`)
	w.Header().Set("Location", "/next?auth="+url.QueryEscape(auth)+"&u="+url.PathEscape(user))
	w.Header().Set("Last-Modified", user)
	out.WriteTo(w)
}

// escapeEvery writes v as a JSON string's content with every nth UTF-16
// unit as an upper case \uXXXX escape and the rest as encoding/json would.
func escapeEvery(v string, nth int) string {
	var b strings.Builder
	for i, u := range utf16.Encode([]rune(v)) {
		if i%nth == 0 || u < 0x20 || u == '"' || u == '\\' || utf16.IsSurrogate(rune(u)) {
			fmt.Fprintf(&b, `\u%04X`, u)
		} else {
			b.WriteRune(rune(u))
		}
	}
	return b.String()
}

// alphabet for random credential values: ASCII letters and digits,
// quotes, <>&, backslash, space, the URL and base64 specials, non-ASCII.
var alphabet = []rune(`abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"'<>&\ %+/=?#é漢😀ß€`)

func randomValue(rng *rand.Rand) string {
	n := 1 + rng.IntN(200)
	if rng.IntN(2) == 0 {
		n = 1 + rng.IntN(8) // short values are where scrubbing fails
	}
	r := make([]rune, n)
	for i := range r {
		r[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(r)
}

// spellings is the test's own list of the forms of a credential's values
// that must not be kept, built from the standard library alone.
func spellings(values []string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	var plain []string
	for _, v := range values {
		plain = append(plain, v, strings.TrimSpace(v))
	}
	if len(values) == 2 {
		plain = append(plain, values[0]+":"+values[1])
	}
	for _, v := range plain {
		if v == "" {
			continue
		}
		encoded := []string{v}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			encoded = append(encoded, enc.EncodeToString([]byte(v)))
		}
		for _, e := range encoded {
			add(e)
			j, _ := json.Marshal(e)
			add(string(j[1 : len(j)-1]))
			add(asciiJSON(e))
			add(url.QueryEscape(e))
			add(url.PathEscape(e))
		}
	}
	return out
}

// asciiJSON is v as a JSON string's content with every non-ASCII unit and
// every character encoding/json escapes written as \uXXXX.
func asciiJSON(v string) string {
	var b strings.Builder
	for _, u := range utf16.Encode([]rune(v)) {
		if u >= utf8.RuneSelf || u < 0x20 || strings.ContainsRune(`"\<>&`, rune(u)) {
			fmt.Fprintf(&b, `\u%04x`, u)
		} else {
			b.WriteRune(rune(u))
		}
	}
	return b.String()
}

// TestNoCredentialKept is the property: whatever credential (basic, bearer,
// API key; values of 1 to 200 characters) and a target echoing it back in
// every spelling, no form of any credential value is in the kept Body,
// header values or Reason; and a part is missing only when it is named in
// Withheld.
func TestNoCredentialKept(t *testing.T) {
	const iterations = 600
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	c := New(Loopback, 5*time.Second)
	rng := rand.New(rand.NewPCG(20261130, 1))
	start := time.Now()
	var kept, withheld int
	for i := range iterations {
		var cred testCred
		var values []string
		switch i % 3 {
		case 0:
			user := strings.ReplaceAll(randomValue(rng), ":", "") // a Basic user-id has no colon
			if user == "" {
				user = "u"
			}
			cred = testCred{scheme: "basic", user: user, value: randomValue(rng)}
			values = []string{cred.user, cred.value}
		case 1:
			cred = testCred{scheme: "apiKey", header: "X-Api-Key", value: randomValue(rng)}
			values = []string{cred.value}
		case 2:
			cred = testCred{scheme: "bearer", value: randomValue(rng)}
			values = []string{cred.value}
		}
		res, err := c.Do(context.Background(), Request{BaseURL: srv.URL + "/api", Method: "POST", Path: "/items",
			Query: map[string]string{"page": "2"}, Body: []byte(`{"name":"x"}`), Credential: cred})
		if err != nil || res.Status != 200 {
			t.Fatalf("%d %s: %+v %v", i, cred.scheme, res, err)
		}
		for _, f := range spellings(values) {
			where := ""
			switch {
			case strings.Contains(string(res.Body), f):
				where = "body"
			case strings.Contains(res.Reason, f):
				where = "reason"
			}
			for h, v := range res.Headers {
				if strings.Contains(v, f) {
					where = "header " + h
				}
			}
			if where != "" {
				t.Fatalf("%d %s %q: %q kept in the %s\nbody %s\nheaders %q", i, cred.scheme, values, f, where, res.Body, res.Headers)
			}
		}
		for h, v := range res.Headers {
			if d := base64Hides(v, values); d != "" {
				t.Fatalf("%d %s %q: header %s %q decodes to %q", i, cred.scheme, values, h, v, d)
			}
		}
		if d := base64Hides(string(res.Body), values); d != "" {
			t.Fatalf("%d %s %q: body decodes to %q\n%s", i, cred.scheme, values, d, res.Body)
		}
		if res.Body != nil {
			var doc any
			if err := json.Unmarshal(res.Body, &doc); err != nil {
				t.Fatalf("%d: kept body is not JSON: %v", i, err)
			}
			walkStrings(doc, func(s string) {
				for _, v := range values {
					if strings.Contains(s, v) {
						t.Fatalf("%d %s %q: decoded body holds %q in %q", i, cred.scheme, values, v, s)
					}
				}
			})
			kept++
		} else {
			if !slices.Contains(res.Withheld, "body") {
				t.Fatalf("%d: the body is missing and not named withheld: %+v", i, res)
			}
			withheld++
		}
		for _, h := range keptHeaders {
			_, ok := res.Headers[h]
			sent := slices.Contains([]string{"Content-Type", "ETag", "Location"}, h) // never empty in echo
			if ok && slices.Contains(res.Withheld, "header:"+h) || sent && !ok && !slices.Contains(res.Withheld, "header:"+h) {
				t.Fatalf("%d: header %s kept %v, withheld %v", i, h, ok, res.Withheld)
			}
		}
		// Scrubbing, not only withholding: long values leave the body kept.
		long := true
		for _, v := range values {
			long = long && utf8.RuneCountInString(strings.TrimSpace(v)) >= 12
		}
		if long && res.Body == nil {
			t.Fatalf("%d %s %q: the body was withheld though every value is long", i, cred.scheme, values)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d requests in %v: body kept %d, withheld %d", iterations, elapsed, kept, withheld)
	if kept == 0 || withheld == 0 {
		t.Errorf("both outcomes should occur: kept %d, withheld %d", kept, withheld)
	}
}

// base64Hides decodes every run of base64 characters in s, from each of
// its first four characters, in both alphabets, and returns what decoded
// holds a value of 4 bytes or more (shorter ones occur in random bytes).
func base64Hides(s string, values []string) string {
	for _, run := range base64Run.FindAllString(s, -1) {
		for off := 0; off < 4 && off < len(run); off++ {
			r := run[off:]
			if len(r)%4 == 1 {
				r = r[:len(r)-1]
			}
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				b, _ := enc.DecodeString(r) // what decodes before a character of the other alphabet
				for _, v := range values {
					if len(v) >= 4 && bytes.Contains(b, []byte(v)) {
						return string(b)
					}
				}
			}
		}
	}
	return ""
}

var base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{4,}`)

func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case map[string]any:
		for k, e := range v {
			f(k)
			walkStrings(e, f)
		}
	case []any:
		for _, e := range v {
			walkStrings(e, f)
		}
	case float64:
		f(fmt.Sprint(v))
	}
}

// TestShortSecretWithheld: a one-character password is everywhere (and in
// the marker): nothing it could be in is kept, and Withheld says so.
func TestShortSecretWithheld(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	res, err := New(Loopback, 5*time.Second).Do(context.Background(), Request{BaseURL: srv.URL, Method: "GET", Path: "/",
		Credential: testCred{scheme: "basic", user: "svc-account", value: "E"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Body != nil || !slices.Contains(res.Withheld, "body") || !slices.Contains(res.Withheld, "header:X-Request-Id") {
		t.Fatalf("%+v", res)
	}
	for h, v := range res.Headers {
		if strings.Contains(v, "E") {
			t.Errorf("header %s kept %q", h, v)
		}
	}
}

// TestForms pins the derived forms of one value and pair.
func TestForms(t *testing.T) {
	got := forms([]string{"svc", "p<é/ &"})
	for _, want := range []string{
		"svc", "p<é/ &",
		`p\u003cé/ \u0026`, `p\u003c\u00e9/ \u0026`, `p\u003c\u00E9/ \u0026`, `p<\u00e9/ &`, `p\u003c\u00e9\/ \u0026`,
		"p%3C%C3%A9%2F+%26", "p%3C%C3%A9%2F%20%26", "p%3c%c3%a9%2f+%26", "p%3C%C3%A9%2F%20&", "p%3C%C3%A9/%20&",
		base64.StdEncoding.EncodeToString([]byte("svc:p<é/ &")), base64.RawURLEncoding.EncodeToString([]byte("svc:p<é/ &")),
		base64.StdEncoding.EncodeToString([]byte("p<é/ &:svc")), base64.StdEncoding.EncodeToString([]byte("svc")),
	} {
		if !slices.Contains(got, want) {
			t.Errorf("forms lacks %q", want)
		}
	}
	for i := 1; i < len(got); i++ {
		if len(got[i]) > len(got[i-1]) || got[i] == got[i-1] {
			t.Fatalf("forms not longest first without repeats at %d: %q", i, got[i-1:i+1])
		}
	}
	if f := forms([]string{"", ""}); len(f) != 0 {
		t.Errorf("forms of empty values: %q", f)
	}
	if f := forms([]string{" k\t"}); !slices.Contains(f, "k") {
		t.Errorf("forms lacks the value as a header's receiver reads it: %q", f)
	}
}

// TestErrorsHoldNoCredential: Do's errors never carry a credential value.
func TestErrorsHoldNoCredential(t *testing.T) {
	c := New(Loopback, time.Second)
	leaky := leakyCred{testCred{scheme: "bearer", value: "tok-" + canary}}
	for _, req := range []Request{
		{BaseURL: "https://user:" + canary + "@api.example.com", Method: "GET", Path: "/", Credential: leaky},
		{BaseURL: "https://api.example.com", Method: "GET", Path: "/", Credential: leaky},
		{BaseURL: "https://api.example.com", Method: "BAD METHOD " + canary, Path: "/", Credential: leaky},
	} {
		_, err := c.Do(context.Background(), req)
		if err == nil {
			t.Fatalf("%s: no error", req.BaseURL)
		}
		if strings.Contains(err.Error(), "CANARY") {
			t.Errorf("error holds the credential: %v", err)
		}
	}
}

// leakyCred fails to apply with an error quoting its value.
type leakyCred struct{ testCred }

func (c leakyCred) Apply(*http.Request) error {
	return errors.New("cannot use token " + c.value)
}

func (c leakyCred) Secrets() []string { return []string{c.value, canary} }
