package faults_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/local/faults"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
	"github.com/connmgr/connmgr/shared/vault/kmsvault"
)

// TestKMSFaultsOnWrites: while KMS throttles or is down, creating a
// connection or replacing its credentials answers 503 with Retry-After and
// a stable code, and stores nothing: no connection, no new version, no
// event. Once KMS is back the same requests succeed.
func TestKMSFaultsOnWrites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault faults.Fault
		code  string
	}{
		{"throttled", faults.Fault{Status: 400, Code: "ThrottlingException"}, "kms_throttled"},
		{"internal failure", faults.Fault{Status: 500, Code: "KMSInternalException"}, "key_unavailable"},
		{"unreachable", faults.Fault{Unreachable: true}, "key_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := &faults.Transport{}
			env := apitest.StartWith(t, app.FnConnections, func(c *app.Config) {
				p, err := ft.Proxy(c.KMSEndpoint)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(p.Close)
				c.KMSEndpoint = p.URL
			})
			st := store.New(env.Stack.DynamoDBClient(), env.Stack.TableName, env.Clock.Now)
			admin := &apitest.Caller{Tenant: "t1", User: "alice", TenantAdmin: true}
			create := apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: map[string]any{
				"type": "http-basic", "name": "Payroll", "kind": "shared",
				"settings":    map[string]any{"baseUrl": "https://payroll.example.com/api"},
				"credentials": map[string]any{"username": "svc", "password": "pw-1"},
			}}
			ft.On("GenerateDataKey", 0, tc.fault)
			r := env.Do(create)
			if r.Status != 503 || r.ErrorCode() != tc.code || r.Headers["Retry-After"] == "" {
				t.Fatalf("create: %d %v %s, want 503 %s with Retry-After", r.Status, r.Headers, r.Body, tc.code)
			}
			var list struct{ Items []struct{ ID string } }
			env.Do(apitest.Request{Method: "GET", Path: "/connections", Caller: admin}).Decode(t, &list)
			if len(list.Items) != 0 {
				t.Errorf("a failed create stored %d connections", len(list.Items))
			}
			if pending, err := st.Pending(context.Background(), 10); err != nil || len(pending) != 0 || len(env.Bus.Events("")) != 0 {
				t.Errorf("a failed create left events: %d in the outbox (%v), %d on the bus", len(pending), err, len(env.Bus.Events("")))
			}

			ft.Clear()
			r = env.Do(create)
			if r.Status != 201 {
				t.Fatalf("create once KMS is back: %d %s", r.Status, r.Body)
			}
			var c struct {
				ID      string
				Version int64
			}
			r.Decode(t, &c)
			env.Do(apitest.Request{Method: "GET", Path: "/connections", Caller: admin}).Decode(t, &list)
			if len(list.Items) != 1 || list.Items[0].ID != c.ID {
				t.Fatalf("the list after a create: %+v", list.Items)
			}
			events := len(env.Bus.Events(""))

			ft.On("GenerateDataKey", 0, tc.fault)
			replace := apitest.Request{Method: "PATCH", Path: "/connections/" + c.ID, Caller: admin,
				Body: map[string]any{"credentials": map[string]any{"username": "svc", "password": "pw-2"}}}
			r = env.Do(replace)
			if r.Status != 503 || r.ErrorCode() != tc.code || r.Headers["Retry-After"] == "" {
				t.Fatalf("replace credentials: %d %s, want 503 %s", r.Status, r.Body, tc.code)
			}
			rec, err := st.Get(context.Background(), "t1", c.ID)
			if err != nil || rec.Conn.Version != c.Version || rec.Conn.SecretVersion != 1 {
				t.Errorf("a failed update changed the connection: %+v, %v", rec, err)
			}
			if pending, _ := st.Pending(context.Background(), 10); len(pending) != 0 || len(env.Bus.Events("")) != events {
				t.Errorf("a failed update left events: %d in the outbox, %d new on the bus", len(pending), len(env.Bus.Events(""))-events)
			}
			ft.Clear()
			if r = env.Do(replace); r.Status != 200 {
				t.Errorf("replace once KMS is back: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestKMSFaultsOnResolution: while KMS throttles or is down, a secret
// whose data key is cached still opens with no KMS call; one not cached
// fails as a retryable failure that is not an authentication failure,
// so the run step retries instead of suspending the run.
func TestKMSFaultsOnResolution(t *testing.T) {
	for _, fault := range []faults.Fault{
		{Status: 400, Code: "ThrottlingException"},
		{Status: 500, Code: "KMSInternalException"},
		{Unreachable: true},
	} {
		env := stacktest.Start(t)
		ctx := context.Background()
		ft := &faults.Transport{}
		kc := env.Stack.KMSClient(func(o *kms.Options) {
			o.HTTPClient = ft.Client()
			o.Retryer = retry.NewStandard(fastRetries)
		})
		cache := kmsvault.NewKeyCache(16, 5*time.Minute, 1000, env.Clock.Now)
		opener := kmsvault.NewOpener(kc, cache)
		warmB := vault.Binding{Tenant: "t1", Subject: "warm", Version: 1}
		coldB := vault.Binding{Tenant: "t1", Subject: "cold", Version: 1}
		warm, err := env.Sealer.Seal(ctx, warmB, []byte("warm secret"))
		if err != nil {
			t.Fatal(err)
		}
		cold, err := env.Sealer.Seal(ctx, coldB, []byte("cold secret"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := opener.Open(ctx, warmB, warm); err != nil { // warms the cache
			t.Fatal(err)
		}
		ft.On("Decrypt", 0, fault)
		if pt, err := opener.Open(ctx, warmB, warm); err != nil || string(pt) != "warm secret" {
			t.Errorf("%+v: warm open: %q, %v", fault, pt, err)
		}
		if ft.Hits("Decrypt") != 0 {
			t.Errorf("%+v: a warm open called KMS", fault)
		}
		_, err = opener.Open(ctx, coldB, cold)
		if err == nil {
			t.Fatalf("%+v: a cold open succeeded without KMS", fault)
		}
		f := resolver.AsFailure(err)
		if !f.Retryable || f.AuthFailure || errors.Is(err, vault.ErrUnreadable) {
			t.Errorf("%+v: cold open failure %+v (%v), want retryable and not an authentication failure", fault, f, err)
		}
	}
}
