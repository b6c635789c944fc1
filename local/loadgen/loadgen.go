// Package loadgen is the project's load generator (`make load`): a mixed
// workload against a running local system (`make dev`) at rising
// concurrency, reporting per route the requests per second, the median
// and 99th percentile latency and the count of each status.
//
// It is bounded in count and in time at every level, and it only ever
// talks to loopback: the API under test and the connection test target it
// serves itself. It also checks that overload is a clear answer: a 429 or
// 503 must carry Retry-After and a stable error code, and no request may
// answer another 5xx.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says what to run.
type Config struct {
	// URL is the API's base URL; its host must be a loopback address.
	URL string
	// Levels are the concurrencies run one after another.
	Levels []int
	// Duration bounds each level's time, Requests its number of requests
	// (whichever comes first ends the level).
	Duration time.Duration
	Requests int
	// Connections is how many shared connections the member sees, across
	// Sites sites (made once, before the first level).
	Connections, Sites int
	// Seed makes the mix of operations repeatable.
	Seed uint64
	// Tenant is the tenant the load runs in ("" makes a fresh one).
	Tenant string
}

// Defaults fills the zero fields of c.
func (c Config) Defaults() Config {
	if c.URL == "" {
		c.URL = "http://127.0.0.1:3000"
	}
	if len(c.Levels) == 0 {
		c.Levels = []int{1, 4, 16, 64}
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Requests <= 0 {
		c.Requests = 20000
	}
	if c.Connections <= 0 {
		c.Connections = 40
	}
	if c.Sites <= 0 {
		c.Sites = 4
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Tenant == "" {
		c.Tenant = fmt.Sprintf("load-%d", time.Now().UnixNano())
	}
	return c
}

// The workload: each operation, by the route it exercises, and its weight
// in the mix.
var mix = []struct {
	route  string
	weight int
}{
	{RouteList, 25}, {RouteGet, 20}, {RoutePicker, 15}, {RouteCreate, 10},
	{RouteUpdate, 10}, {RouteTest, 10}, {RouteRunStart, 10},
}

// Routes of the workload.
const (
	RouteList     = "GET /connections"
	RouteGet      = "GET /connections/{id}"
	RoutePicker   = "GET /connections?usableAt"
	RouteCreate   = "POST /connections"
	RouteUpdate   = "PATCH /connections/{id}"
	RouteTest     = "POST /connections/{id}/test"
	RouteRunStart = "POST /runs"
)

// RouteResult is one route's figures at one level.
type RouteResult struct {
	Route    string
	N        int
	PerSec   float64
	P50, P99 time.Duration
	Statuses map[int]int
	// Codes counts the error codes of the 429 and 503 answers.
	Codes map[string]int
	// Unclear counts answers that break the overload contract: a 5xx
	// other than 503, or a 429 or 503 without Retry-After or an error
	// code; and transport failures.
	Unclear int
}

// LevelResult is one level's figures.
type LevelResult struct {
	Concurrency int
	Elapsed     time.Duration
	N           int
	PerSec      float64
	Routes      []RouteResult
}

// Run prepares the tenant's data, then runs every level in turn.
func Run(ctx context.Context, cfg Config, report func(LevelResult)) ([]LevelResult, error) {
	cfg = cfg.Defaults()
	if err := loopbackOnly(cfg.URL); err != nil {
		return nil, err
	}
	target := newTarget()
	defer target.Close()
	maxConc := slices.Max(cfg.Levels)
	tr := &http.Transport{MaxIdleConnsPerHost: maxConc + 4, MaxConnsPerHost: maxConc + 4}
	defer tr.CloseIdleConnections()
	l := &load{cfg: cfg, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}, base: strings.TrimRight(cfg.URL, "/"), target: target.URL}
	if err := l.prepare(ctx); err != nil {
		return nil, fmt.Errorf("loadgen: prepare: %w", err)
	}
	var out []LevelResult
	for i, c := range cfg.Levels {
		r := l.level(ctx, c, cfg.Seed+uint64(i))
		out = append(out, r)
		if report != nil {
			report(r)
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

// loopbackOnly refuses any URL whose host is not a loopback address.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("loadgen: %q is not an http URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("loadgen: %s is not a loopback address: the load generator only runs against make dev", host)
	}
	return nil
}

// newTarget is the connection test and workflow action target: every
// request succeeds.
func newTarget() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
}

type load struct {
	cfg          Config
	hc           *http.Client
	base, target string
	admin        string // tokens
	member       string
	sites        []string
	ids          []string // the shared connections made by prepare
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (l *load) do(ctx context.Context, method, path, token string, body any) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, rd)
	if err != nil {
		return answer{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (l *load) token(ctx context.Context, claims map[string]any) (string, error) {
	a, err := l.do(ctx, "POST", "/dev/token", "", claims)
	if err != nil {
		return "", err
	}
	var t struct{ Token string }
	if a.status != 200 || json.Unmarshal(a.body, &t) != nil || t.Token == "" {
		return "", fmt.Errorf("POST /dev/token: %d (is this make dev?)", a.status)
	}
	return t.Token, nil
}

// prepare makes the tokens and the shared connections, spread over the
// member's sites.
func (l *load) prepare(ctx context.Context) error {
	var err error
	if l.admin, err = l.token(ctx, map[string]any{"sub": "load-admin", "tid": l.cfg.Tenant, "roles": []string{"tenant_admin"}}); err != nil {
		return err
	}
	for i := range l.cfg.Sites {
		l.sites = append(l.sites, fmt.Sprintf("/sites/load%d", i))
	}
	if l.member, err = l.token(ctx, map[string]any{"sub": "load-member", "tid": l.cfg.Tenant, "sites": l.sites}); err != nil {
		return err
	}
	for i := range l.cfg.Connections {
		id, err := l.create(ctx, fmt.Sprintf("seed %d", i), l.sites[i%len(l.sites)])
		if err != nil {
			return err
		}
		l.ids = append(l.ids, id)
	}
	return nil
}

func (l *load) createBody(name, site string) map[string]any {
	return map[string]any{
		"type": "http-basic", "name": name, "kind": "shared",
		"availability": map[string]any{"scope": "site", "site": site},
		"settings":     map[string]any{"baseUrl": l.target + "/api", "testPath": "/ping"},
		"credentials":  map[string]any{"username": "load", "password": "load-password"},
	}
}

func (l *load) create(ctx context.Context, name, site string) (string, error) {
	for {
		a, err := l.do(ctx, "POST", "/connections", l.admin, l.createBody(name, site))
		if err != nil {
			return "", err
		}
		if retryAfter(a) > 0 { // the stage's throttle, while seeding
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(retryAfter(a)):
			}
			continue
		}
		var c struct{ ID string }
		if a.status != 201 || json.Unmarshal(a.body, &c) != nil || c.ID == "" {
			return "", fmt.Errorf("POST /connections: %d %s", a.status, a.body)
		}
		return c.ID, nil
	}
}

func retryAfter(a answer) time.Duration {
	if a.status != 429 && a.status != 503 {
		return 0
	}
	var s int
	if _, err := fmt.Sscan(a.header.Get("Retry-After"), &s); err != nil || s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

type sample struct {
	route   string
	status  int
	code    string
	took    time.Duration
	unclear bool
}

// level runs conc workers until the level's time or count runs out. A
// request in flight at the end is waited for and counted (an answer that
// takes long is what overload looks like); the client's own timeout
// bounds that wait.
func (l *load) level(ctx context.Context, conc int, seed uint64) LevelResult {
	stop := time.Now().Add(l.cfg.Duration)
	var (
		mu      sync.Mutex
		samples []sample
		left    = l.cfg.Requests
		wg      sync.WaitGroup
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 {
			return false
		}
		left--
		return true
	}
	var next atomic.Int32 // the first len(mix) requests take each route once
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil && time.Now().Before(stop) && take() {
				route := pick(rng)
				if i := int(next.Add(1)) - 1; i < len(mix) {
					route = mix[i].route
				}
				s := l.one(ctx, rng, w, route)
				if ctx.Err() != nil {
					return // interrupted: not an answer
				}
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return summarize(conc, time.Since(start), samples)
}

func pick(rng *rand.Rand) string {
	total := 0
	for _, m := range mix {
		total += m.weight
	}
	n := rng.IntN(total)
	for _, m := range mix {
		if n < m.weight {
			return m.route
		}
		n -= m.weight
	}
	panic("unreachable")
}

// one sends one request of the mix and judges its answer.
func (l *load) one(ctx context.Context, rng *rand.Rand, worker int, route string) sample {
	id := l.ids[rng.IntN(len(l.ids))]
	site := l.sites[rng.IntN(len(l.sites))]
	var (
		method, path, token string
		body                any
	)
	switch route {
	case RouteList:
		method, path, token = "GET", "/connections", l.member
	case RouteGet:
		method, path, token = "GET", "/connections/"+id, l.member
	case RoutePicker:
		method, path, token = "GET", "/connections?usableAt="+url.QueryEscape(site), l.member
	case RouteCreate:
		method, path, token, body = "POST", "/connections", l.admin, l.createBody(fmt.Sprintf("load %d-%d", worker, rng.Uint32()), site)
	case RouteUpdate:
		method, path, token, body = "PATCH", "/connections/"+id, l.admin, map[string]any{"name": fmt.Sprintf("renamed %d", rng.Uint32())}
	case RouteTest:
		method, path, token = "POST", "/connections/"+id+"/test", l.admin
	case RouteRunStart:
		// The member starts a run at the connection's own site.
		i := slices.Index(l.ids, id)
		method, path, token, body = "POST", "/runs", l.member, map[string]any{
			"workflowId": "load", "site": l.sites[i%len(l.sites)],
			"steps": []map[string]any{{"id": "get", "action": "http.request", "connection": id, "input": map[string]any{"method": "GET", "path": "/items"}}},
		}
	}
	began := time.Now()
	a, err := l.do(ctx, method, path, token, body)
	s := sample{route: route, status: a.status, took: time.Since(began), code: errorCode(a)}
	s.unclear = err != nil || !clear(a)
	return s
}

// errorCode is a 429's or 503's error code: the API's, or API Gateway's
// own throttling answer ("stage").
func errorCode(a answer) string {
	if a.status != 429 && a.status != 503 {
		return ""
	}
	var e struct {
		Error   struct{ Code string }
		Message string
	}
	json.Unmarshal(a.body, &e)
	if e.Error.Code == "" && e.Message == "Too Many Requests" {
		return "stage"
	}
	return e.Error.Code
}

// clear reports whether an answer keeps the overload contract.
func clear(a answer) bool {
	switch {
	case a.status == 429 || a.status == 503:
		if a.header.Get("Retry-After") == "" {
			return false
		}
		var e struct {
			Error   struct{ Code string }
			Message string // API Gateway's own answer
		}
		return json.Unmarshal(a.body, &e) == nil && (e.Error.Code != "" || a.status == 429 && e.Message == "Too Many Requests")
	case a.status >= 500:
		return false
	}
	return a.status != 0
}

func summarize(conc int, elapsed time.Duration, samples []sample) LevelResult {
	r := LevelResult{Concurrency: conc, Elapsed: elapsed, N: len(samples), PerSec: float64(len(samples)) / elapsed.Seconds()}
	byRoute := map[string][]sample{}
	for _, s := range samples {
		byRoute[s.route] = append(byRoute[s.route], s)
	}
	for _, m := range mix {
		ss := byRoute[m.route]
		rr := RouteResult{Route: m.route, N: len(ss), PerSec: float64(len(ss)) / elapsed.Seconds(), Statuses: map[int]int{}, Codes: map[string]int{}}
		d := make([]time.Duration, 0, len(ss))
		for _, s := range ss {
			rr.Statuses[s.status]++
			if s.code != "" {
				rr.Codes[s.code]++
			}
			d = append(d, s.took)
			if s.unclear {
				rr.Unclear++
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		rr.P50, rr.P99 = quantile(d, 0.50), quantile(d, 0.99)
		r.Routes = append(r.Routes, rr)
	}
	return r
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Format writes r as a table.
func Format(w io.Writer, r LevelResult) {
	fmt.Fprintf(w, "concurrency %d: %d requests in %.1f s, %.1f requests/s\n", r.Concurrency, r.N, r.Elapsed.Seconds(), r.PerSec)
	fmt.Fprintf(w, "  %-30s %6s %8s %9s %9s  %s\n", "route", "n", "req/s", "p50 ms", "p99 ms", "statuses")
	for _, rr := range r.Routes {
		codes := make([]int, 0, len(rr.Statuses))
		for c := range rr.Statuses {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		var st []string
		for _, c := range codes {
			name := fmt.Sprint(c)
			if c == 0 {
				name = "no-answer"
			}
			st = append(st, fmt.Sprintf("%s×%d", name, rr.Statuses[c]))
		}
		line := fmt.Sprintf("  %-30s %6d %8.1f %9.1f %9.1f  %s", rr.Route, rr.N, rr.PerSec, ms(rr.P50), ms(rr.P99), strings.Join(st, " "))
		if len(rr.Codes) > 0 {
			var cs []string
			for _, c := range slices.Sorted(maps.Keys(rr.Codes)) {
				cs = append(cs, fmt.Sprintf("%s×%d", c, rr.Codes[c]))
			}
			line += " (" + strings.Join(cs, " ") + ")"
		}
		if rr.Unclear > 0 {
			line += fmt.Sprintf("  UNCLEAR×%d", rr.Unclear)
		}
		fmt.Fprintln(w, line)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ErrUnclear is returned by Check when an answer broke the overload contract.
var ErrUnclear = errors.New("loadgen: answers that are not a clear overload answer (a 5xx other than 503, a 429/503 without Retry-After or code, or no answer)")

// Check fails when any level had an unclear answer.
func Check(results []LevelResult) error {
	for _, r := range results {
		for _, rr := range r.Routes {
			if rr.Unclear > 0 {
				return fmt.Errorf("%w: %d at concurrency %d on %s", ErrUnclear, rr.Unclear, r.Concurrency, rr.Route)
			}
		}
	}
	return nil
}
