// Package stacktest gives package tests and benchmarks the DynamoDB and KMS
// emulators with the template's table and key, SDK clients whose calls are
// counted, and a controllable clock: the real implementations the store,
// vault, oauth and resolver packages are tested against. Never linked into
// a Lambda binary.
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
	"github.com/connmgr/connmgr/shared/vault"
)

// Env is a running stack.
type Env struct {
	Stack *emulator.Stack
	// DDB and KMS count the calls of the clients below, by operation.
	DDB, KMS *emulator.Counter
	DynamoDB *dynamodb.Client
	KMSAPI   *kms.Client
	Clock    *clock.Clock
	Store    *store.Store
	Sealer   *vault.Sealer
}

// Start runs fresh emulators for t; they stop when t ends. The clock stands
// still at a fixed instant until advanced.
func Start(t testing.TB) *Env {
	t.Helper()
	tmpl, err := sam.LoadFromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	stack, err := emulator.Start(context.Background(), tmpl, emulator.StackOptions{KMSDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	// Our own transport, whose connections are closed before the emulators
	// stop: an open keep-alive connection makes their graceful shutdown
	// wait out its 2 s timeout.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	e := &Env{Stack: stack, DDB: &emulator.Counter{}, KMS: &emulator.Counter{},
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
	e.Sealer = vault.NewSealer(e.KMSAPI, emulator.KeyAlias)
	return e
}

// Opener returns an Opener over the counted KMS client; cache may be nil.
func (e *Env) Opener(cache *vault.KeyCache) *vault.Opener { return vault.NewOpener(e.KMSAPI, cache) }

// Reset zeroes both call counters.
func (e *Env) Reset() {
	e.DDB.Reset()
	e.KMS.Reset()
}
