// Package faults injects AWS failures into the real SDK clients through
// their HTTP transport: a Transport in front of the emulators answers
// chosen operations with the error shapes the AWS services send
// (JSON 1.0/1.1 protocols: a status and {"__type", "message"}), drops
// the answer of a request the emulator has carried out (a timeout after
// the fact), fails before sending (a timeout or a refused connection),
// or fails some entries of an EventBridge PutEvents. What reaches the
// emulator is real; nothing of ours is mocked. Never linked into a Lambda
// binary.
package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Fault is what happens to a matching request.
type Fault struct {
	// Status and Code: answer this AWS error (e.g. 400
	// "ThrottlingException") without sending the request.
	Status int
	Code   string
	// Reasons, with Code "TransactionCanceledException", are the
	// cancellation reasons (one per item: "None", "ThrottlingError", ...).
	Reasons []string
	// LoseAnswer sends the request and then fails as a timeout would: the
	// emulator did the work, the caller never hears of it.
	LoseAnswer bool
	// Unreachable fails without sending (a timeout or a refused connection).
	Unreachable bool
	// FailEntries, for PutEvents, fails the entries at these indexes with
	// Code (default "ThrottlingException") and sends only the others.
	FailEntries []int
}

// ErrInjected is the transport error of LoseAnswer and Unreachable: a
// net.Error that timed out, as the SDK sees a lost connection.
var ErrInjected error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "faults: injected network failure: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Transport wraps Next (http.DefaultTransport when nil). A rule matches an
// operation by its X-Amz-Target suffix ("GenerateDataKey",
// "TransactWriteItems", "PutEvents"); each rule fires Times times (0:
// always) and then stands aside.
type Transport struct {
	Next http.RoundTripper

	mu    sync.Mutex
	rules []*rule
	hits  map[string]int
}

type rule struct {
	op    string
	f     Fault
	times int
}

// On makes the next times calls of op meet f (0: every call).
func (t *Transport) On(op string, times int, f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules = append(t.rules, &rule{op: op, f: f, times: times})
}

// Clear removes every rule.
func (t *Transport) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules = nil
}

// Hits is how many calls of op met a fault.
func (t *Transport) Hits(op string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hits[op]
}

// Client is an http.Client over t, for an SDK client's HTTPClient option.
func (t *Transport) Client() *http.Client { return &http.Client{Transport: t} }

func (t *Transport) next() http.RoundTripper {
	if t.Next != nil {
		return t.Next
	}
	return http.DefaultTransport
}

func (t *Transport) match(op string) (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.rules {
		if r.op != op {
			continue
		}
		if r.times > 0 {
			r.times--
			if r.times == 0 {
				t.rules = append(t.rules[:i:i], t.rules[i+1:]...)
			}
		}
		if t.hits == nil {
			t.hits = map[string]int{}
		}
		t.hits[op]++
		return r.f, true
	}
	return Fault{}, false
}

// RoundTrip applies the first matching rule.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	f, ok := t.match(op)
	if !ok {
		return t.next().RoundTrip(req)
	}
	switch {
	case f.Unreachable:
		return nil, ErrInjected
	case f.LoseAnswer:
		resp, err := t.next().RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, ErrInjected
	case len(f.FailEntries) > 0:
		return t.partialPutEvents(req, f)
	}
	body := map[string]any{"__type": f.Code, "message": "injected " + f.Code}
	if len(f.Reasons) > 0 {
		var rs []map[string]string
		for _, r := range f.Reasons {
			rs = append(rs, map[string]string{"Code": r})
		}
		body["CancellationReasons"] = rs
		body["message"] = "Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(f.Reasons, ", ") + "]"
	}
	return jsonResponse(req, f.Status, body)
}

// partialPutEvents sends the entries not failed and answers for all of
// them, in order, as EventBridge does when some entries fail.
func (t *Transport) partialPutEvents(req *http.Request, f Fault) (*http.Response, error) {
	raw, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var in map[string]json.RawMessage
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(in["Entries"], &entries); err != nil {
		return nil, err
	}
	failed := map[int]bool{}
	for _, i := range f.FailEntries {
		if i < len(entries) {
			failed[i] = true
		}
	}
	var kept []json.RawMessage
	for i, e := range entries {
		if !failed[i] {
			kept = append(kept, e)
		}
	}
	type result struct {
		EventId      string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	var sent []result
	if len(kept) > 0 {
		in["Entries"], _ = json.Marshal(kept)
		b, _ := json.Marshal(in)
		out := req.Clone(req.Context())
		out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		out.Header.Del("Content-Length")
		resp, err := t.next().RoundTrip(out)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var got struct{ Entries []result }
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&got) != nil || len(got.Entries) != len(kept) {
			return nil, fmt.Errorf("faults: PutEvents of the kept entries answered %d", resp.StatusCode)
		}
		sent = got.Entries
	}
	code := f.Code
	if code == "" {
		code = "ThrottlingException"
	}
	all := make([]result, len(entries))
	n := 0
	for i := range entries {
		if failed[i] {
			all[i] = result{ErrorCode: code, ErrorMessage: "injected"}
			n++
			continue
		}
		all[i], sent = sent[0], sent[1:]
	}
	return jsonResponse(req, 200, map[string]any{"FailedEntryCount": n, "Entries": all})
}

func jsonResponse(req *http.Request, status int, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amzn-Requestid", "faults-injected")
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), Header: h,
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

// Proxy serves target (an emulator's URL) on a loopback port through t,
// for code whose SDK client is built from an endpoint rather than handed
// an HTTP client (a function's app.Config). A request that meets
// Unreachable or LoseAnswer is answered 502, as a load balancer in front
// of a failed service would. Close it when done.
func (t *Transport) Proxy(target string) (*httptest.Server, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite:      func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = u.Host },
		Transport:    t,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	return httptest.NewServer(rp), nil
}
