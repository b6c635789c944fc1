package expirycheck_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/expirycheck"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

// TestPasswordLifecycle: active → expiring when the window opens (not a
// second before) → expired at the expiry, each once, with its audit entry
// and event; checks in between change nothing.
func TestPasswordLifecycle(t *testing.T) {
	w := newWorld(t)
	t0 := w.now()
	pe := t0.Add(10 * 24 * time.Hour)
	w.password("p1", pe)
	c := w.check(nil, nil)
	if r := w.run(c); r.Checked != 0 || r.Expiring != 0 {
		t.Fatalf("at creation: %s", r)
	}
	window := pe.Add(-7 * 24 * time.Hour)
	w.env.Clock.Advance(window.Add(-time.Second).Sub(w.now()))
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("a second before the window: %s", r)
	}
	w.env.Clock.Advance(time.Second)
	if r := w.run(c); r.Checked != 1 || r.Expiring != 1 {
		t.Fatalf("at the window: %s", r)
	}
	if got := w.get("p1").Conn; got.Status != connection.StatusExpiring || got.StatusReason != expiry.ReasonPasswordExpiring || got.Version != 2 {
		t.Fatalf("after the window opened: %+v", got)
	}
	w.env.Clock.Advance(10 * time.Minute)
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("again in the same hour: %s", r)
	}
	w.env.Clock.Advance(pe.Add(time.Minute).Sub(w.now()))
	if r := w.run(c); r.Expired != 1 {
		t.Fatalf("past the expiry: %s", r)
	}
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("once expired: %s", r)
	}
	if got := w.get("p1").Conn; got.Status != connection.StatusExpired || got.StatusReason != expiry.ReasonPasswordExpired || got.Version != 3 {
		t.Fatalf("after the expiry: %+v", got)
	}
	if n, m := len(w.bus.of(events.ConnectionExpiring)), len(w.bus.of(events.ConnectionExpired)); n != 1 || m != 1 {
		t.Fatalf("%d Connection Expiring, %d Connection Expired; want 1 each", n, m)
	}
	d := w.bus.of(events.ConnectionExpiring)[0].Detail.(*events.ConnectionDetail)
	if !d.ExpiresAt.Equal(pe) || d.Reason != expiry.ReasonPasswordExpiring || d.Owners[0] != "alice" || d.Version != 2 || d.Name != "conn p1" {
		t.Errorf("Connection Expiring: %+v", d)
	}
	if got := w.audit("p1"); !slices.Equal(got, []connection.Action{connection.ActionCreated, expiry.ActionExpiring, connection.ActionExpired}) {
		t.Errorf("audit: %v", got)
	}
	w.validateAll()
}

// TestTenThousandConnections is the figure: of 10,000 connections in the
// index, 100 are due; one check reads at most 110 items and writes only
// those 100.
func TestTenThousandConnections(t *testing.T) {
	// A figure of call and item counts, the same on every backend; writing
	// 10,000 connections through moto one request at a time did not finish
	// in 10 minutes.
	stacktest.MinidynOnly(t, "scale test: writing 10,000 connections one request at a time takes moto over 10 minutes")
	w := newWorld(t)
	ctx := context.Background()
	t0 := w.now()
	// 9,900 connections due in the coming 90 days, one filed every ~13
	// minutes; 100 due within the last hour.
	var recs []*store.Record
	for i := range 10000 {
		pe := t0.Add(8*24*time.Hour + time.Duration(i)*13*time.Minute)
		if i%100 == 0 {
			pe = t0.Add(7*24*time.Hour - time.Duration(i/100+1)*time.Second) // its window opened a moment ago
		}
		recs = append(recs, w.record(fmt.Sprintf("c%05d", i), "http-basic", map[string]any{"baseUrl": "https://api.example.com", "passwordExpiresAt": pe.Format(time.RFC3339)}))
	}
	start := time.Now()
	if err := w.env.Store.BulkPut(ctx, recs); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote 10,000 connections (and their owner edges) in %s", time.Since(start).Round(time.Millisecond))
	// A previous run processed everything up to the hour before.
	if err := w.env.Store.AdvanceCheckpoint(ctx, expiry.BucketOf(t0)-1); err != nil {
		t.Fatal(err)
	}
	w.env.Clock.Advance(time.Hour + 10*time.Minute)
	c := w.check(nil, nil)
	w.env.Reset()
	start = time.Now()
	r := w.run(c)
	took := time.Since(start)
	read := w.env.DDB.ItemsRead("")
	t.Logf("one check over 10,000 connections, 100 due: %d items read (%d from the due index), %d calls (%d Query, %d TransactWriteItems, %d UpdateItem), %s; %s",
		read, w.env.DDB.ItemsRead("Query"), w.env.DDB.Count(""), w.env.DDB.Count("Query"), w.env.DDB.Count("TransactWriteItems"), w.env.DDB.Count("UpdateItem"), took.Round(time.Millisecond), r)
	if r.Checked != 100 || r.Expiring != 100 || r.Failed != 0 {
		t.Fatalf("report: %s", r)
	}
	if read > 110 {
		t.Errorf("the check read %d items, want at most 110", read)
	}
	if n := w.env.DDB.Count("Scan"); n != 0 {
		t.Errorf("%d Scans", n)
	}
	if r.Checkpoint != expiry.BucketOf(t0).String() {
		t.Errorf("checkpoint %s, want %s", r.Checkpoint, expiry.BucketOf(t0))
	}
	// Only the due ones changed: each due one once, and a sample of the
	// others not at all.
	changed := map[string]int{}
	for _, e := range w.bus.of(events.ConnectionExpiring) {
		changed[e.Detail.(*events.ConnectionDetail).ConnectionID]++
	}
	for i, rec := range recs {
		switch {
		case i%100 == 0:
			if got := w.get(rec.Conn.ID).Conn; got.Status != connection.StatusExpiring || got.Version != 2 || changed[rec.Conn.ID] != 1 {
				t.Fatalf("%s: %+v, %d events", rec.Conn.ID, got, changed[rec.Conn.ID])
			}
		case i%97 == 0:
			if got := w.get(rec.Conn.ID).Conn; got.Status != connection.StatusActive || got.Version != 1 || changed[rec.Conn.ID] != 0 {
				t.Fatalf("%s is not due but changed: %+v", rec.Conn.ID, got)
			}
		}
	}
	if len(changed) != 100 {
		t.Errorf("%d connections changed, want 100", len(changed))
	}
	// Writes: 4 transactions of 25 changes each, the checkpoint, the
	// outbox deletes after publishing; no other item was written.
	if n := w.env.DDB.Count("TransactWriteItems"); n != 4 {
		t.Errorf("%d TransactWriteItems, want 4", n)
	}
	if n := w.env.DDB.Count("UpdateItem") + w.env.DDB.Count("BatchWriteItem"); n != 0 {
		t.Errorf("%d other writes", n)
	}
}

// crashing lets n TransactWriteItems through and then fails every write,
// as a process that died after its first transaction would stop writing.
type crashing struct {
	store.DynamoDB
	left atomic.Int64
}

var errCrashed = errors.New("crashed")

func (c *crashing) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if c.left.Add(-1) < 0 {
		return nil, errCrashed
	}
	return c.DynamoDB.TransactWriteItems(ctx, in, opts...)
}

func (c *crashing) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if c.left.Load() < 0 {
		return nil, errCrashed
	}
	return c.DynamoDB.UpdateItem(ctx, in, opts...)
}

func (c *crashing) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if c.left.Load() < 0 {
		return nil, errCrashed
	}
	return c.DynamoDB.PutItem(ctx, in, opts...)
}

// TestCrashHalfway: a check dies after its first transaction, before
// publishing its events; the retry re-reads only the unfinished bucket,
// writes each remaining transition once and publishes the lost events
// from the outbox: one transition and one event per connection.
func TestCrashHalfway(t *testing.T) {
	w := newWorld(t)
	t0 := w.now()
	for i := range 60 {
		w.password(fmt.Sprintf("p%02d", i), t0.Add(7*24*time.Hour-time.Duration(i+1)*time.Minute))
	}
	w.env.Clock.Advance(70 * time.Minute) // the bucket holding them has closed
	crash := &crashing{DynamoDB: w.env.DynamoDB}
	crash.left.Store(1)
	w.bus.setDown(true) // it dies before its PutEvents
	r, err := w.check(store.New(crash, w.env.Stack.TableName, w.env.Clock.Now), nil).Run(w.ctx())
	if err == nil || r.Expiring != 25 {
		t.Fatalf("the crashing run: %v %s", err, r)
	}
	if _, ok, _ := w.env.Store.Checkpoint(w.ctx()); ok {
		t.Fatal("the crashing run advanced the checkpoint past its unfinished bucket")
	}
	w.bus.setDown(false)
	w.env.Clock.Advance(2 * time.Minute) // the lost events have settled in the outbox
	r = w.run(w.check(nil, nil))
	if r.Checked != 35 || r.Expiring != 35 || r.Drained != 25 {
		t.Fatalf("the retry: %s", r)
	}
	if r.Checkpoint != expiry.BucketOf(t0).String() {
		t.Errorf("checkpoint after the retry: %s", r.Checkpoint)
	}
	per := w.bus.perConnection(events.ConnectionExpiring)
	if len(per) != 60 {
		t.Fatalf("%d connections got Connection Expiring, want 60", len(per))
	}
	for id, n := range per {
		if n != 1 {
			t.Errorf("%s: %d Connection Expiring events", id, n)
		}
		if got := w.audit(id); !slices.Equal(got, []connection.Action{connection.ActionCreated, expiry.ActionExpiring}) {
			t.Errorf("%s audit: %v", id, got)
		}
	}
	// A third run finds nothing.
	if r := w.run(w.check(nil, nil)); r.Checked != 0 || r.Drained != 0 {
		t.Errorf("a third run: %s", r)
	}
	w.validateAll()
}

// TestOverlappingChecks: two checks, each with its own resolver instance,
// run at once over the same due password and OAuth connections: one
// transition, one event and one refresh per connection.
func TestOverlappingChecks(t *testing.T) {
	w := newWorld(t)
	w.withOAuth(oauthprovider.Options{ExpiresIn: 8 * time.Hour})
	t0 := w.now()
	for i := range 40 {
		w.password(fmt.Sprintf("p%02d", i), t0.Add(7*24*time.Hour+time.Duration(i)*time.Minute))
	}
	for i := range 10 {
		w.authorized(fmt.Sprintf("o%02d", i))
	}
	w.idp.SetDelay(20 * time.Millisecond) // widen the race
	before := w.idp.Calls("refresh_token")
	// Seven hours on: the access tokens expire within the refresh lead time;
	// the passwords' windows have opened.
	w.env.Clock.Advance(7 * time.Hour)
	reports := w.overlappingChecks(t, 2)
	t.Logf("overlapping checks: %s | %s", reports[0], reports[1])
	if n := w.idp.Calls("refresh_token") - before; n != 10 {
		t.Errorf("%d refresh calls for 10 due OAuth connections", n)
	}
	if n := reports[0].Refreshed + reports[1].Refreshed; n != 10 {
		t.Errorf("%d refreshes reported", n)
	}
	if n := reports[0].Expiring + reports[1].Expiring; n != 40 {
		t.Errorf("%d transitions reported", n)
	}
	per := w.bus.perConnection(events.ConnectionExpiring)
	for i := range 40 {
		id := fmt.Sprintf("p%02d", i)
		if per[id] != 1 {
			t.Errorf("%s: %d Connection Expiring events", id, per[id])
		}
		if got := w.audit(id); len(got) != 2 {
			t.Errorf("%s audit: %v", id, got)
		}
	}
	if w.idp.Replays() != 0 {
		t.Errorf("%d refresh tokens replayed", w.idp.Replays())
	}
	for i := range 10 {
		if r := w.get(fmt.Sprintf("o%02d", i)); r.Conn.SecretVersion != 2 || r.Conn.Status != connection.StatusActive {
			t.Errorf("o%02d: %+v", i, r.Conn)
		}
	}
	// Nothing more is due: another pair finds nothing to do.
	for range 2 {
		if r := w.run(w.check(nil, nil)); r.Refreshed != 0 || r.Expiring != 0 {
			t.Errorf("a later check: %s", r)
		}
	}
	w.validateAll()
}

// TestIdleTokensKeptAlive: an idle connection is refreshed ahead of its
// access token's expiry, at the longest (24 h tokens) once a day, so the
// provider sees its grant used.
func TestIdleTokensKeptAlive(t *testing.T) {
	w := newWorld(t)
	w.withOAuth(oauthprovider.Options{ExpiresIn: 24 * time.Hour})
	w.authorized("o1")
	c := w.check(nil, nil)
	w.env.Clock.Advance(22*time.Hour + 30*time.Minute)
	if r := w.run(c); r.Refreshed != 0 || r.Checked != 0 {
		t.Fatalf("after 22.5 h: %s", r)
	}
	w.env.Clock.Advance(30 * time.Minute) // 75 min before the token expires
	if r := w.run(c); r.Refreshed != 1 {
		t.Fatalf("after 23 h: %s", r)
	}
	if r := w.get("o1"); r.Conn.SecretVersion != 2 || !r.TokensAt.Equal(w.now().Truncate(time.Second)) {
		t.Fatalf("after the refresh: %+v tokensAt %s", r.Conn, r.TokensAt)
	}
	w.env.Clock.Advance(2 * time.Hour)
	if r := w.run(c); r.Refreshed != 0 {
		t.Fatalf("2 h later: %s", r)
	}
	w.env.Clock.Advance(21 * time.Hour)
	if r := w.run(c); r.Refreshed != 1 {
		t.Fatalf("a day later: %s", r)
	}
}

// TestRefreshRejected: the provider refuses the refresh token: Connection
// Refresh Failed then Connection Expired, once; reconnecting emits
// Connection Recovered and files the connection again.
func TestRefreshRejected(t *testing.T) {
	w := newWorld(t)
	w.withOAuth(oauthprovider.Options{})
	w.authorized("o1")
	w.password("p1", w.now().Add(7*24*time.Hour+30*time.Minute))
	w.idp.Fail(oauthprovider.Failure{Grant: "refresh_token", Status: 400, Code: "invalid_grant", Description: "revoked"})
	w.env.Clock.Advance(time.Hour)
	c := w.check(nil, nil)
	r := w.run(c)
	if r.Failed != 1 || r.Expiring != 1 || r.Refreshed != 0 {
		t.Fatalf("report: %s", r)
	}
	if got := w.get("o1").Conn; got.Status != connection.StatusExpired || got.StatusReason != "invalid_grant" {
		t.Fatalf("after the rejection: %+v", got)
	}
	types := func() []string {
		var out []string
		for _, e := range w.bus.of("") {
			if d, ok := e.Detail.(*events.ConnectionDetail); ok && d.ConnectionID == "o1" {
				out = append(out, e.DetailType)
			}
		}
		return out
	}
	want := []string{events.ConnectionUpdated, events.ConnectionRefreshFailed, events.ConnectionExpired}
	if got := types(); !slices.Equal(got, want) {
		t.Fatalf("events of o1: %v, want %v", got, want)
	}
	w.env.Clock.Advance(2 * time.Hour)
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("an expired connection is looked at again: %s", r)
	}
	// Reconnect: the fix.
	w.reconnect("o1")
	want = append(want, events.ConnectionUpdated, events.ConnectionRecovered)
	if got := types(); !slices.Equal(got, want) {
		t.Fatalf("events of o1 after reconnecting: %v, want %v", got, want)
	}
	w.env.Clock.Advance(time.Hour)
	if r := w.run(c); r.Refreshed != 1 || r.Failed != 0 {
		t.Fatalf("the reconnected connection is not refreshed ahead: %s", r)
	}
	w.validateAll()
}

// failing fails the refresh of one connection and refuses to refresh
// the others.
type failing struct{ id string }

func (f failing) RefreshIfDue(_ context.Context, _, id string, _ resolver.RefreshOptions) (resolver.Refreshed, error) {
	if id == f.id {
		return resolver.Refreshed{}, &resolver.Failure{Code: resolver.CodeUnavailable, Retryable: true}
	}
	return resolver.Refreshed{Refreshed: true}, nil
}

// TestOneFailureDoesNotStopTheOthers: a connection whose refresh fails is
// re-filed an hour later; the others are handled and the checkpoint moves
// on.
func TestOneFailureDoesNotStopTheOthers(t *testing.T) {
	w := newWorld(t)
	w.withOAuth(oauthprovider.Options{})
	w.authorized("o1")
	w.authorized("o2")
	w.password("p1", w.now().Add(7*24*time.Hour+time.Minute))
	w.env.Clock.Advance(70 * time.Minute)
	r := w.run(w.check(nil, failing{id: "o1"}))
	if r.Failed != 1 || r.Refreshed != 1 || r.Expiring != 1 || r.Checkpoint != expiry.BucketOf(w.now().Add(-70*time.Minute)).String() {
		t.Fatalf("report: %s (checkpoint %s)", r, r.Checkpoint)
	}
	retry := w.now().Add(expirycheck.DefaultRetryAfter)
	if got := w.entries(retry, retry); len(got) != 1 || got[0].ID != "o1" {
		t.Fatalf("the failed connection is not re-filed for %s: %+v", retry, got)
	}
}

// TestRunTerminationWarning: a suspended run gets Run Termination
// Approaching once, 24 h before it terminates.
func TestRunTerminationWarning(t *testing.T) {
	w := newWorld(t)
	now := w.now()
	run := &runs.Run{Tenant: "t1", ID: "r1", WorkflowID: "wf", Site: "/sites/hr", Owner: "bob", Status: runs.StatusRunning,
		Steps: []runs.Step{{ID: "s1", Action: runs.ActionHTTPRequest, Connection: "c1"}}, Results: []runs.StepResult{}, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := w.env.Store.CreateRun(w.ctx(), run); err != nil {
		t.Fatal(err)
	}
	susp := *run
	susp.Version, susp.Status, susp.TaskToken = 2, runs.StatusSuspended, "token"
	susp.Suspension = &runs.Suspension{Connection: "c1", Reason: "credentials_expired", SuspendedAt: now, TerminatesAt: now.Add(runs.SuspensionTimeout)}
	if err := w.env.Store.UpdateRun(w.ctx(), run, &susp, store.RunCondition{}); err != nil {
		t.Fatal(err)
	}
	c := w.check(nil, nil)
	w.env.Clock.Advance(runs.SuspensionTimeout - 25*time.Hour)
	if r := w.run(c); r.Warned != 0 {
		t.Fatalf("25 h before: %s", r)
	}
	w.env.Clock.Advance(90 * time.Minute)
	var wg sync.WaitGroup
	for range 3 { // overlapping checks warn once
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.check(nil, nil).Run(w.ctx()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	evs := w.bus.of(events.RunTerminationApproaching)
	if len(evs) != 1 {
		t.Fatalf("%d warnings", len(evs))
	}
	d := evs[0].Detail.(*events.RunDetail)
	if d.RunID != "r1" || d.ConnectionID != "c1" || !d.TerminatesAt.Equal(susp.Suspension.TerminatesAt) || d.Owner != "bob" || d.Reason != "credentials_expired" {
		t.Errorf("warning: %+v", d)
	}
	w.env.Clock.Advance(time.Hour)
	if r := w.run(c); r.Warned != 0 || r.Checked != 0 {
		t.Errorf("later: %s", r)
	}
	w.validateAll()
}

// TestCatchUp: a check far behind reads MaxBuckets hours per run from its
// checkpoint on and loses nothing on the way.
func TestCatchUp(t *testing.T) {
	w := newWorld(t)
	t0 := w.now()
	for i := range 6 {
		w.password(fmt.Sprintf("p%d", i), t0.Add(7*24*time.Hour+time.Duration(i)*4*time.Hour))
	}
	if err := w.env.Store.AdvanceCheckpoint(w.ctx(), expiry.BucketOf(t0)-1); err != nil {
		t.Fatal(err)
	}
	w.env.Clock.Advance(30 * time.Hour)
	c, err := expirycheck.New(expirycheck.Config{Store: w.env.Store, Refresher: noRefresh{t}, Events: w.relay, Now: w.env.Clock.Now, NewID: w.newID, MaxBuckets: 10})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for run := 1; ; run++ {
		r := w.run(c)
		total += r.Expiring
		t.Logf("run %d: %s to %s, behind %v: %s", run, r.From, r.To, r.Behind, r)
		if !r.Behind {
			break
		}
		if run == 5 {
			t.Fatal("never caught up")
		}
	}
	if total != 6 || len(w.bus.of(events.ConnectionExpiring)) != 6 {
		t.Fatalf("%d transitions, %d events; want 6", total, len(w.bus.of(events.ConnectionExpiring)))
	}
}
