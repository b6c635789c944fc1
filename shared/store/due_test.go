package store_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

// due lists the entries of the bucket holding at, due by until.
func due(t *testing.T, env *stacktest.Env, at, until time.Time) []store.DueEntry {
	t.Helper()
	var out []store.DueEntry
	if err := env.Store.EachDue(context.Background(), expiry.BucketOf(at), until, func(p []store.DueEntry) error {
		out = append(out, p...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// rawGSI3 reads the item's due index attributes as stored.
func rawGSI3(t *testing.T, env *stacktest.Env, pk, sk string) (string, string) {
	t.Helper()
	out, err := env.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(env.Stack.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil {
		t.Fatal(err)
	}
	s := func(k string) string {
		if v, ok := out.Item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	return s("gsi3pk"), s("gsi3sk")
}

// parked reports a due index partition key of the parked shards
// (DUE#NONE#0 to DUE#NONE#15), which the check never reads.
func parked(pk string) bool {
	n, ok := strings.CutPrefix(pk, "DUE#NONE#")
	i, err := strconv.Atoi(n)
	return ok && err == nil && i >= 0 && i < 16 && strconv.Itoa(i) == n
}

func passwordConn(t *testing.T, env *stacktest.Env, id string, pe time.Time) *store.Record {
	t.Helper()
	now := env.Clock.Now()
	settings := map[string]any{"baseUrl": "https://api.example.com"}
	if !pe.IsZero() {
		settings["passwordExpiresAt"] = pe.Format(time.RFC3339)
	}
	r := &store.Record{Conn: connection.Connection{
		Tenant: "t1", ID: id, Type: "http-basic", Name: "conn " + id, Kind: connection.Shared,
		Availability: connection.Availability{Scope: connection.ScopeTenant}, Owners: []string{"alice", "bob"}, CreatedBy: "alice",
		CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusActive, Settings: settings, SecretVersion: 1,
	}}
	if err := env.Store.Create(context.Background(), r, connection.AuditEntry{ID: "01A" + id, At: now, Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// update reads the connection and rewrites it with change applied, as the
// connections service does.
func update(t *testing.T, env *stacktest.Env, id string, change func(c *connection.Connection)) *store.Record {
	t.Helper()
	r, err := env.Store.Get(context.Background(), "t1", id)
	if err != nil {
		t.Fatal(err)
	}
	prev := r.Conn.Version
	change(&r.Conn)
	r.Conn.Version = prev + 1
	if err := env.Store.Update(context.Background(), r, prev, r.Conn.Owners, store.Changes{Audits: []connection.AuditEntry{{ID: "01U" + r.Conn.ID, At: env.Clock.Now(), Actor: "alice", Action: connection.ActionUpdated, Version: r.Conn.Version}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDueIndexFilesConnections: every write path files a connection under
// its next due time, and takes it out of the buckets when nothing is due.
func TestDueIndexFilesConnections(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	pe := now.Add(10 * 24 * time.Hour)
	passwordConn(t, env, "p1", pe)

	// Active: due when the 7-day window opens, in that hour's bucket.
	window := pe.Add(-7 * 24 * time.Hour)
	if got := due(t, env, window, window.Add(-time.Second)); len(got) != 0 {
		t.Fatalf("due before its time: %+v", got)
	}
	got := due(t, env, window, window)
	if len(got) != 1 {
		t.Fatalf("window bucket: %d entries", len(got))
	}
	e := got[0]
	if e.Kind != store.DueConnection || e.Tenant != "t1" || e.ID != "p1" || !e.Due.Equal(window) || e.Conn.Name != "conn p1" ||
		len(e.Conn.Owners) != 2 || e.Conn.Version != 1 || e.Conn.Status != connection.StatusActive || !e.PasswordExpiresAt.Equal(pe) || e.Conn.Type != "http-basic" {
		t.Fatalf("entry: %+v", e)
	}

	// The expiry moves into the past: filed in now's bucket (never a
	// closed one), and gone from the old one.
	update(t, env, "p1", func(c *connection.Connection) {
		c.Settings["passwordExpiresAt"] = now.Add(-time.Hour).Format(time.RFC3339)
	})
	if got := due(t, env, window, window); len(got) != 0 {
		t.Errorf("still in the old bucket: %+v", got)
	}
	if got := due(t, env, now, now); len(got) != 1 || got[0].Conn.Version != 2 {
		t.Errorf("now's bucket: %+v", got)
	}

	// No expiry: out of the buckets, parked.
	update(t, env, "p1", func(c *connection.Connection) { delete(c.Settings, "passwordExpiresAt") })
	if got := due(t, env, now, now.Add(30*24*time.Hour)); len(got) != 0 {
		t.Errorf("a connection with nothing due is in a bucket: %+v", got)
	}
	if pk, sk := rawGSI3(t, env, "T#t1#C#p1", "CONN"); !parked(pk) || sk != "C#t1#p1" {
		t.Errorf("gsi3 attributes of a connection with nothing due: %q %q", pk, sk)
	}
	// A connection never due has no index attributes at all (sparse).
	passwordConn(t, env, "p2", time.Time{})
	if pk, sk := rawGSI3(t, env, "T#t1#C#p2", "CONN"); pk != "" || sk != "" {
		t.Errorf("a connection never due is in the index: %q %q", pk, sk)
	}

	// Deleting the parked connection leaves the index whole: the others in
	// the same bucket are still found. (Had the rewrite above dropped the
	// attributes instead of parking them, the emulator would keep a stale
	// index key that, after this delete, hides the next entry.)
	passwordConn(t, env, "p3", now.Add(-time.Minute))
	passwordConn(t, env, "p4", now.Add(-time.Minute))
	gone, err := env.Store.Get(ctx, "t1", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Store.Delete(ctx, gone, gone.Conn.Version, connection.AuditEntry{ID: "01D", At: now, Actor: "alice", Action: connection.ActionDeleted, Version: gone.Conn.Version + 1}); err != nil {
		t.Fatal(err)
	}
	if got := due(t, env, now, now); len(got) != 2 || got[0].ID == got[1].ID {
		t.Errorf("after deleting a parked connection, now's bucket holds %+v, want p3 and p4", got)
	}
}

// TestDueIndexTokenWrites: PutTokens files an OAuth connection for its
// refresh; MarkExpired takes it out of every bucket. It uses no REMOVE
// (which the emulator ignores): were MarkExpired to REMOVE the attributes,
// the entry would still be in its bucket here and this test would fail.
func TestDueIndexTokenWrites(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	passwordConn(t, env, "p0", now.Add(-time.Minute)) // due now
	newConn(t, env, "t1", "o1")                       // pending authorization: nothing due
	if got := due(t, env, now, now.Add(48*time.Hour)); len(got) != 1 || got[0].ID != "p0" {
		t.Fatalf("a pending connection is due: %+v", got)
	}
	if pk, _ := rawGSI3(t, env, "T#t1#C#o1", "CONN"); !parked(pk) {
		t.Fatalf("a new OAuth connection is not parked: %q", pk)
	}
	exp := now.Add(8 * time.Hour)
	if err := env.Store.PutTokens(ctx, store.TokenWrite{Tenant: "t1", ID: "o1", FromSecretVersion: 0, Secret: seal(t, env, "t1", "o1", 1, `{"accessToken":"a"}`), TokenExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	refresh := exp.Add(-expiry.DefaultRefreshAhead)
	// The token write moved o1 out of the parked partition and left the
	// rest of the index whole. (Had o1 not been filed before, the
	// emulator's UpdateItem would have overwritten another entry's key.)
	if got := due(t, env, now, now); len(got) != 1 || got[0].ID != "p0" {
		t.Fatalf("now's bucket after PutTokens: %+v", got)
	}
	got := due(t, env, refresh, refresh)
	if len(got) != 1 || got[0].ID != "o1" || got[0].Conn.SecretVersion != 1 || !got[0].TokensAt.Equal(now) || !got[0].Conn.TokenExpiresAt.Equal(exp) || got[0].Conn.Status != connection.StatusActive {
		t.Fatalf("after PutTokens: %+v", got)
	}
	rec, err := env.Store.Get(ctx, "t1", "o1")
	if err != nil || !rec.TokensAt.Equal(now) {
		t.Fatalf("TokensAt read back: %v %v", rec.TokensAt, err)
	}
	// A whole-item write (a rename) keeps the same filing.
	rec.Conn.Name = "renamed"
	rec.Conn.Version++
	if err := env.Store.Update(ctx, rec, rec.Conn.Version-1, rec.Conn.Owners, store.Changes{}); err != nil {
		t.Fatal(err)
	}
	if got := due(t, env, refresh, refresh); len(got) != 1 || got[0].Conn.Name != "renamed" || !got[0].TokensAt.Equal(now) {
		t.Fatalf("after a rename: %+v", got)
	}
	err = env.Store.MarkExpired(ctx, store.ExpiredMark{Tenant: "t1", ID: "o1", SecretVersion: 1, ExpectedVersion: rec.Conn.Version, Reason: "invalid_grant",
		Audit: connection.AuditEntry{ID: "01X", At: now, Actor: "system", Action: connection.ActionExpired, Version: rec.Conn.Version + 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got := due(t, env, refresh, refresh.Add(24*time.Hour)); len(got) != 0 {
		t.Fatalf("an expired connection is still due: %+v", got)
	}
	if pk, _ := rawGSI3(t, env, "T#t1#C#o1", "CONN"); !parked(pk) {
		t.Errorf("MarkExpired left gsi3pk %q, want the parked partition", pk)
	}
}

// TestDueIndexRuns: a suspended run is due 24 h before it terminates, is
// warned once, and leaves the index when it resumes.
func TestDueIndexRuns(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	run := &runs.Run{Tenant: "t1", ID: "r1", WorkflowID: "wf", Site: "/sites/hr", Owner: "bob", Status: runs.StatusRunning,
		Steps: []runs.Step{{ID: "s1", Action: runs.ActionHTTPRequest, Connection: "c1"}}, Results: []runs.StepResult{}, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := env.Store.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	susp := *run
	susp.Version, susp.Status, susp.TaskToken = 2, runs.StatusSuspended, "tok"
	susp.Suspension = &runs.Suspension{Connection: "c1", Reason: "credentials_expired", SuspendedAt: now, TerminatesAt: now.Add(runs.SuspensionTimeout)}
	if err := env.Store.UpdateRun(ctx, run, &susp, store.RunCondition{}); err != nil {
		t.Fatal(err)
	}
	warnAt := now.Add(runs.SuspensionTimeout - 24*time.Hour)
	got := due(t, env, warnAt, warnAt)
	if len(got) != 1 || got[0].Kind != store.DueRun || got[0].ID != "r1" || got[0].Tenant != "t1" || !got[0].Due.Equal(warnAt) {
		t.Fatalf("suspended run entry: %+v", got)
	}
	ev := events.ForRun(events.RunTerminationApproaching, &susp, "01EV", "", warnAt)
	if err := env.Store.WarnTermination(ctx, got[0], &susp, ev); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.WarnTermination(ctx, got[0], &susp, ev); !errors.Is(err, store.ErrAlreadyWarned) {
		t.Fatalf("second warning: %v", err)
	}
	if got := due(t, env, warnAt, warnAt); len(got) != 0 {
		t.Fatalf("a warned run is still due: %+v", got)
	}
	if ids, err := env.Store.SuspendedOn(ctx, "t1", "c1"); err != nil || len(ids) != 1 {
		t.Fatalf("the warned edge left gsi1: %v %v", ids, err)
	}
	// Resumed: the edge goes, and a new suspension is due again.
	resumed := susp
	resumed.Version, resumed.Status, resumed.Suspension, resumed.TaskToken = 3, runs.StatusRunning, nil, ""
	if err := env.Store.UpdateRun(ctx, &susp, &resumed, store.RunCondition{}); err != nil {
		t.Fatal(err)
	}
	again := resumed
	again.Version, again.Status = 4, runs.StatusSuspended
	again.Suspension = &runs.Suspension{Connection: "c1", Reason: "credentials_expired", SuspendedAt: now.Add(time.Hour), TerminatesAt: now.Add(time.Hour + runs.SuspensionTimeout)}
	if err := env.Store.UpdateRun(ctx, &resumed, &again, store.RunCondition{}); err != nil {
		t.Fatal(err)
	}
	if got := due(t, env, warnAt.Add(time.Hour), warnAt.Add(time.Hour)); len(got) != 1 {
		t.Fatalf("the second suspension is not due: %+v", got)
	}
	// A warning decided on the first suspension's entry does nothing now.
	if err := env.Store.WarnTermination(ctx, got[0], &susp, ev); !errors.Is(err, store.ErrAlreadyWarned) {
		t.Fatalf("a warning on a stale run: %v", err)
	}
}

// TestApplyStatusChanges: changes commit in groups; one whose connection
// moved on fails alone; a repeat commits nothing.
func TestApplyStatusChanges(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	pe := now.Add(3 * 24 * time.Hour)
	var entries []store.DueEntry
	for _, id := range []string{"a", "b", "c"} {
		passwordConn(t, env, id, pe)
	}
	entries = due(t, env, now, now)
	if len(entries) != 3 {
		t.Fatalf("%d entries", len(entries))
	}
	update(t, env, "b", func(c *connection.Connection) { c.Name = "moved on" })
	change := func(e store.DueEntry) store.StatusChange {
		after := e.Conn
		after.Status, after.Version = connection.StatusExpiring, e.Conn.Version+1
		return store.StatusChange{Entry: e, To: connection.StatusExpiring, Reason: expiry.ReasonPasswordExpiring,
			Audit:  connection.AuditEntry{ID: "01ZZ" + e.ID, At: now, Actor: "system:expiry-check", Action: expiry.ActionExpiring, Version: e.Conn.Version + 1, Changes: []string{"status"}},
			Events: []events.Event{events.ForConnection(events.ConnectionExpiring, &after, "01EV"+e.ID, "", expiry.ReasonPasswordExpiring, []string{"status"}, now)}}
	}
	var chs []store.StatusChange
	for _, e := range entries {
		chs = append(chs, change(e))
	}
	errs := env.Store.ApplyStatusChanges(ctx, chs)
	for i, e := range entries {
		if e.ID == "b" {
			if !errors.Is(errs[i], store.ErrMovedOn) || !apperr.Is(errs[i], apperr.PreconditionFailed) {
				t.Errorf("b moved on: %v", errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("%s: %v", e.ID, errs[i])
		}
	}
	for id, want := range map[string]connection.Status{"a": connection.StatusExpiring, "b": connection.StatusActive, "c": connection.StatusExpiring} {
		r, err := env.Store.Get(ctx, "t1", id)
		if err != nil || r.Conn.Status != want {
			t.Errorf("%s: %s %v, want %s", id, r.Conn.Status, err, want)
		}
		if want == connection.StatusExpiring && (r.Conn.Version != 2 || r.Conn.StatusReason != expiry.ReasonPasswordExpiring) {
			t.Errorf("%s: %+v", id, r.Conn)
		}
	}
	// Expiring connections are due again at the expiry itself.
	if got := due(t, env, pe, pe); len(got) != 2 {
		t.Errorf("due at expiry: %d entries", len(got))
	}
	pending, err := env.Store.Pending(ctx, 10)
	if err != nil || len(pending) != 2 {
		t.Errorf("outbox: %d events %v", len(pending), err)
	}
	// The same changes again: nothing commits twice.
	for i, err := range env.Store.ApplyStatusChanges(ctx, chs) {
		if !errors.Is(err, store.ErrMovedOn) {
			t.Errorf("repeat of %s: %v", chs[i].Entry.ID, err)
		}
	}
	audit, _, err := env.Store.Audit(ctx, "t1", "a", "", 10)
	if err != nil || len(audit) != 2 || audit[0].Action != expiry.ActionExpiring {
		t.Errorf("audit of a: %+v %v", audit, err)
	}
}

func TestCheckpointAndRefile(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	if _, ok, err := env.Store.Checkpoint(ctx); ok || err != nil {
		t.Fatalf("a checkpoint before any: %v %v", ok, err)
	}
	b := expiry.BucketOf(now)
	for _, step := range []struct{ advance, want expiry.Bucket }{{b, b}, {b - 5, b}, {b + 2, b + 2}, {b + 2, b + 2}} {
		if err := env.Store.AdvanceCheckpoint(ctx, step.advance); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := env.Store.Checkpoint(ctx); !ok || err != nil || got != step.want {
			t.Fatalf("after advancing to %s: %s %v %v, want %s", step.advance, got, ok, err, step.want)
		}
	}
	passwordConn(t, env, "p", now.Add(24*time.Hour))
	e := due(t, env, now, now)[0]
	later := now.Add(time.Hour)
	if err := env.Store.Refile(ctx, e, later); err != nil {
		t.Fatal(err)
	}
	if len(due(t, env, now, now)) != 0 || len(due(t, env, later, later)) != 1 {
		t.Fatal("refile did not move the entry")
	}
	// A refile decided on the old entry is a no-op.
	if err := env.Store.Refile(ctx, e, now.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(due(t, env, later, later)) != 1 || len(due(t, env, now.Add(5*time.Hour), now.Add(5*time.Hour))) != 0 {
		t.Fatal("a stale refile moved the entry")
	}
}

// TestDueIndexRefreshTokenExpiry: a refresh token's expiry is kept beside
// the access token's, read back, carried by whole-item writes, and files
// the connection at the window's start (active) or at the expiry
// (expiring) when that comes before the refresh. A token write decided on
// a status that moved on is refused.
func TestDueIndexRefreshTokenExpiry(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	newConn(t, env, "t1", "o1")
	exp, rte := now.Add(8*time.Hour), now.Add(7*24*time.Hour+2*time.Hour)
	if err := env.Store.PutTokens(ctx, store.TokenWrite{Tenant: "t1", ID: "o1", FromSecretVersion: 0, Secret: seal(t, env, "t1", "o1", 1, `{"accessToken":"a"}`),
		TokenExpiresAt: exp, RefreshTokenExpiresAt: rte}); err != nil {
		t.Fatal(err)
	}
	window := rte.Add(-7 * 24 * time.Hour) // now+2h, before the refresh at now+6h45m
	got := due(t, env, window, window)
	if len(got) != 1 || got[0].ID != "o1" || !got[0].Due.Equal(window) || !got[0].Conn.RefreshTokenExpiresAt.Equal(rte) || got[0].Conn.Status != connection.StatusActive {
		t.Fatalf("filed for the window: %+v", got)
	}
	rec, err := env.Store.Get(ctx, "t1", "o1")
	if err != nil || !rec.Conn.RefreshTokenExpiresAt.Equal(rte) {
		t.Fatalf("read back: %v %v", rec.Conn.RefreshTokenExpiresAt, err)
	}
	rec.Conn.Name, rec.Conn.Version = "renamed", rec.Conn.Version+1
	if err := env.Store.Update(ctx, rec, rec.Conn.Version-1, rec.Conn.Owners, store.Changes{}); err != nil {
		t.Fatal(err)
	}
	if got = due(t, env, window, window); len(got) != 1 || got[0].Conn.Name != "renamed" || !got[0].Conn.RefreshTokenExpiresAt.Equal(rte) {
		t.Fatalf("after a rename: %+v", got)
	}
	// The check's transition to expiring files it at the next of its
	// refresh and the expiry: the refresh.
	e := got[0]
	after := e.Conn
	after.Status, after.Version = connection.StatusExpiring, e.Conn.Version+1
	errs := env.Store.ApplyStatusChanges(ctx, []store.StatusChange{{Entry: e, To: connection.StatusExpiring, Reason: expiry.ReasonRefreshTokenExpiring,
		Audit:  connection.AuditEntry{ID: "01E", At: window, Actor: "system:expiry-check", Action: expiry.ActionExpiring, Version: after.Version},
		Events: []events.Event{events.ForConnection(events.ConnectionExpiring, &after, "01EV", "", expiry.ReasonRefreshTokenExpiring, []string{"status"}, window).WithExpiresAt(rte)}}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	refresh := exp.Add(-expiry.DefaultRefreshAhead)
	if got := due(t, env, refresh, refresh); len(got) != 1 || got[0].Conn.Status != connection.StatusExpiring || !got[0].Due.Equal(refresh) {
		t.Fatalf("expiring: %+v", got)
	}
	// A refresh decided on the active connection it read is refused: the
	// status moved on (and not the secret).
	w := store.TokenWrite{Tenant: "t1", ID: "o1", FromSecretVersion: 1, Secret: seal(t, env, "t1", "o1", 2, `{"accessToken":"b"}`),
		TokenExpiresAt: exp.Add(time.Hour), RefreshTokenExpiresAt: rte, Status: connection.StatusActive, ExpectedStatus: connection.StatusActive}
	if err := env.Store.PutTokens(ctx, w); !apperr.Is(err, apperr.PreconditionFailed) || errors.Is(err, store.ErrSecretChanged) {
		t.Fatalf("a token write on a stale status: %v", err)
	}
	// Decided again on the expiring connection, it stays expiring and is
	// filed at its refresh, the expiry kept.
	w.Status, w.StatusReason, w.ExpectedStatus = connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, connection.StatusExpiring
	if err := env.Store.PutTokens(ctx, w); err != nil {
		t.Fatal(err)
	}
	got = due(t, env, exp.Add(time.Hour-expiry.DefaultRefreshAhead), exp.Add(time.Hour))
	if len(got) != 1 || got[0].Conn.Status != connection.StatusExpiring || got[0].Conn.StatusReason != expiry.ReasonRefreshTokenExpiring ||
		got[0].Conn.SecretVersion != 2 || !got[0].Conn.RefreshTokenExpiresAt.Equal(rte) {
		t.Fatalf("after a refresh that kept the expiry: %+v", got)
	}
	// A refresh token without an expiry: the attribute is set to nothing
	// (SET 0, not REMOVE), and the connection active.
	if err := env.Store.PutTokens(ctx, store.TokenWrite{Tenant: "t1", ID: "o1", FromSecretVersion: 2, Secret: seal(t, env, "t1", "o1", 3, `{"accessToken":"c"}`),
		TokenExpiresAt: exp, ExpectedStatus: connection.StatusExpiring}); err != nil {
		t.Fatal(err)
	}
	if rec, err := env.Store.Get(ctx, "t1", "o1"); err != nil || !rec.Conn.RefreshTokenExpiresAt.IsZero() || rec.Conn.Status != connection.StatusActive || rec.Conn.StatusReason != "" {
		t.Fatalf("after a refresh token without an expiry: %+v %v", rec.Conn, err)
	}
}

// TestDueIndexOAuthClients: a client registration is filed by its secret's
// expiry (parked without one), each notice moves it on once, and deleting
// it leaves the index whole.
func TestDueIndexOAuthClients(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	passwordConn(t, env, "p0", now.Add(-time.Minute)) // due now
	const typ = "oauth2-generic"
	c := &store.OAuthClient{Tenant: "t1", Type: typ, ClientID: "crm-app", SecretVersion: 1, Version: 1, TokenURL: "https://idp/token",
		UpdatedAt: now, UpdatedBy: "root", Secret: seal(t, env, "t1", store.OAuthClientSubject(typ), 1, "client-secret")}
	if err := env.Store.PutOAuthClient(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	if pk, sk := rawGSI3(t, env, "T#t1#OAUTHCLIENT#"+typ, "CLIENT"); !parked(pk) || sk != "O#t1#"+typ {
		t.Fatalf("a registration without a secret expiry: %q %q", pk, sk)
	}
	exp := now.Add(10 * 24 * time.Hour)
	window := exp.Add(-7 * 24 * time.Hour)
	c.Version, c.SecretExpiresAt = 2, exp
	if err := env.Store.PutOAuthClient(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	got := due(t, env, window, window)
	if len(got) != 1 {
		t.Fatalf("window bucket: %+v", got)
	}
	e := got[0]
	if e.Kind != store.DueOAuthClient || e.Tenant != "t1" || e.ID != typ || !e.Due.Equal(window) ||
		e.Client != (store.OAuthClientDue{Type: typ, ClientID: "crm-app", Version: 2, SecretVersion: 1, SecretExpiresAt: exp}) {
		t.Fatalf("entry: %+v", e)
	}
	ev := events.ForOAuthClient(events.OAuthClientExpiring, "t1", typ, "crm-app", "01EVC1", "expiring", expiry.ReasonClientSecretExpiring, exp, window)
	if err := env.Store.NoteClientSecret(ctx, e, expiry.NoticeExpiring, ev); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.NoteClientSecret(ctx, e, expiry.NoticeExpiring, ev); !errors.Is(err, store.ErrMovedOn) {
		t.Fatalf("the same notice twice: %v", err)
	}
	if got := due(t, env, window, exp); len(got) != 0 {
		t.Fatalf("still in the window's bucket: %+v", got)
	}
	got = due(t, env, exp, exp)
	if len(got) != 1 || got[0].Client.Notice != expiry.NoticeExpiring || got[0].Client.Version != 3 || !got[0].Due.Equal(exp) {
		t.Fatalf("after the expiring notice: %+v", got)
	}
	reg, err := env.Store.GetOAuthClient(ctx, "t1", typ)
	if err != nil || reg.SecretNotice != expiry.NoticeExpiring || !reg.SecretExpiresAt.Equal(exp) || reg.Version != 3 {
		t.Fatalf("read back: %+v %v", reg, err)
	}
	if pending, err := env.Store.Pending(ctx, 10); err != nil || len(pending) != 1 || pending[0].ID() != "01EVC1" {
		t.Fatalf("outbox: %+v %v", pending, err)
	}
	// The notice bumped the version: a write based on the one before is stale.
	if err := env.Store.PutOAuthClient(ctx, c, 2); !apperr.Is(err, apperr.PreconditionFailed) {
		t.Fatalf("a write over the notice: %v", err)
	}
	ev = events.ForOAuthClient(events.OAuthClientExpired, "t1", typ, "crm-app", "01EVC2", "expired", expiry.ReasonClientSecretExpired, exp, exp)
	if err := env.Store.NoteClientSecret(ctx, got[0], expiry.NoticeExpired, ev); err != nil {
		t.Fatal(err)
	}
	if pk, _ := rawGSI3(t, env, "T#t1#OAUTHCLIENT#"+typ, "CLIENT"); !parked(pk) {
		t.Fatalf("after the last notice: %q", pk)
	}
	// Deleting the parked registration leaves the index whole.
	passwordConn(t, env, "p1", now.Add(-time.Minute))
	if err := env.Store.DeleteOAuthClient(ctx, "t1", typ, 4); err != nil {
		t.Fatal(err)
	}
	if got := due(t, env, now, now); len(got) != 2 || got[0].ID == got[1].ID {
		t.Fatalf("after deleting a parked registration, now's bucket holds %+v, want p0 and p1", got)
	}
}

// TestParkedEntriesSpread: parked items go to DUE#NONE#<n> by a hash of
// the entry, not all to one index partition, and stay out of every bucket
// the check reads.
func TestParkedEntriesSpread(t *testing.T) {
	env := stacktest.Start(t)
	now := env.Clock.Now()
	shards := map[string]int{}
	for i := range 40 {
		id := fmt.Sprintf("o%02d", i)
		newConn(t, env, "t1", id) // an OAuth connection is parked from its creation
		pk, sk := rawGSI3(t, env, "T#t1#C#"+id, "CONN")
		if !parked(pk) || sk != "C#t1#"+id {
			t.Fatalf("%s filed under %q %q", id, pk, sk)
		}
		shards[pk]++
	}
	t.Logf("40 parked connections over %d shards", len(shards))
	if len(shards) < 2 {
		t.Fatalf("every parked entry in one partition: %v", shards)
	}
	if got := due(t, env, now, now.Add(48*time.Hour)); len(got) != 0 {
		t.Fatalf("parked entries are due: %+v", got)
	}
}
