// Package stacktest gives package tests and benchmarks the DynamoDB and KMS
// emulators with the template's table and key, SDK clients whose calls are
// counted, and a controllable clock: the real implementations the store,
// vault, oauth and resolver packages are tested against. Never linked into
// a Lambda binary.
//
// The backend is chosen here, not by the tests: CONNMGR_TEST_BACKEND=moto
// runs the same test binary on a moto_server (one per binary, a table and
// key per test) instead of the in-process minidyn and local-kms. `make
// test` runs the correctness suites on both.
package stacktest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault/kmsvault"
)

// Env is a running stack.
type Env struct {
	Stack *emulator.Stack
	// DDB and KMS count the calls of the clients below, by operation;
	// Trips, which they share, the sequential round trips of both (set
	// a latency (SetLatency) before counting round trips of concurrent calls).
	DDB, KMS *emulator.Counter
	Trips    *emulator.RoundTrips
	DynamoDB *dynamodb.Client
	KMSAPI   *kms.Client
	Clock    *clock.Clock
	Store    *store.Store
	Sealer   *kmsvault.Sealer
}

// Start runs fresh emulators for t, on the backend CONNMGR_TEST_BACKEND
// names (see Backend); they stop when t ends. The clock stands still at a
// fixed instant until advanced.
func Start(t testing.TB) *Env {
	t.Helper()
	stack := StartStack(t)
	// Our own transport, whose connections are closed before the emulators
	// stop: an open keep-alive connection makes their graceful shutdown
	// wait out its 2 s timeout.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	trips := &emulator.RoundTrips{}
	e := &Env{Stack: stack, DDB: &emulator.Counter{Trips: trips}, KMS: &emulator.Counter{Trips: trips}, Trips: trips,
		Clock: clock.Fixed(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))}
	e.DynamoDB = stack.DynamoDBClient(func(o *dynamodb.Options) {
		o.HTTPClient = hc
		o.APIOptions = append(o.APIOptions, e.DDB.Middleware)
	})
	e.KMSAPI = stack.KMSClient(func(o *kms.Options) {
		o.HTTPClient = hc
		o.APIOptions = append(o.APIOptions, e.KMS.Middleware)
	})
	e.Store = store.New(e.DynamoDB, stack.TableName, e.Clock.Now)
	e.Sealer = kmsvault.NewSealer(e.KMSAPI, stack.KeyAlias)
	return e
}

// Backend is the backend the harnesses run on: emulator.BackendEnv
// (CONNMGR_TEST_BACKEND) names it, minidyn when unset. A bad value fails t.
// `make test` runs the correctness suites on both (targets test-go and
// test-moto); the same test binary serves both.
func Backend(t testing.TB) emulator.Backend {
	t.Helper()
	b, err := emulator.BackendFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StartStack creates the template's table and a key on the chosen backend
// for t: new in-process emulators (minidyn), or a table and key of t's own
// in the test binary's one moto_server, which it starts on first use and
// which fails t, with the install command, when moto_server is missing.
// They go when t ends.
func StartStack(t testing.TB) *emulator.Stack {
	t.Helper()
	tmpl, err := sam.LoadFromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	stack, err := emulator.StartBackend(context.Background(), tmpl, Backend(t), emulator.StackOptions{KMSDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	return stack
}

// MinidynOnly skips t unless it runs on minidyn, saying why: for scale
// tests, which moto (one request at a time, milliseconds each) would take
// many minutes over. Never use it to hide a difference in behaviour.
func MinidynOnly(t testing.TB, why string) {
	t.Helper()
	if b := Backend(t); b != emulator.Minidyn {
		t.Skipf("minidyn only, skipped on %s: %s", b, why)
	}
}

// KeyStates reports whether the backend's KMS honours a key's state. moto
// 5.2 does not: Decrypt and GenerateDataKey succeed on a disabled key and on
// one pending deletion, and its DisableKey answer does not decode. Tests of
// an unavailable key run on local-kms only, and say so when skipped.
func KeyStates(t testing.TB) bool {
	t.Helper()
	return Backend(t) == emulator.Minidyn
}

// Opener returns an Opener over the counted KMS client; cache may be nil.
func (e *Env) Opener(cache *kmsvault.KeyCache) *kmsvault.Opener {
	return kmsvault.NewOpener(e.KMSAPI, cache)
}

// Reset zeroes both call counters and the round trips.
func (e *Env) Reset() {
	e.DDB.Reset()
	e.KMS.Reset()
}
