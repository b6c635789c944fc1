package expirycheck_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/expirycheck"
	"github.com/connmgr/connmgr/shared/store"
)

func sAttr(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func nAttr(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// poison writes a connection item straight into the table with the
// DynamoDB client, past the store and its validation (as a bad import or a
// hand edit would): an http-basic connection of tenant, due at due (its
// password's expiring window opens then) and filed in the due index there,
// by the key design of store/doc.go, with settings that are not JSON and
// attrs over the rest.
func (w *world) poison(tenant, id string, due time.Time, attrs map[string]types.AttributeValue) {
	w.t.Helper()
	item := map[string]types.AttributeValue{
		"pk": sAttr("T#" + tenant + "#C#" + id), "sk": sAttr("CONN"),
		"gsi3pk": sAttr("DUE#" + expiry.BucketOf(due).String()), "gsi3sk": sAttr(expiry.DueKey(due) + "#C#" + tenant + "#" + id),
		"tenant": sAttr(tenant), "id": sAttr(id), "type": sAttr("http-basic"), "name": sAttr("poisoned " + id), "kind": sAttr("shared"),
		"owners": &types.AttributeValueMemberL{Value: []types.AttributeValue{sAttr("alice")}},
		"status": sAttr("active"), "version": nAttr(1), "secretVersion": nAttr(1), "settings": sAttr("{not json"),
		"passwordExpiresAt": nAttr(due.Add(7 * 24 * time.Hour).Unix()),
	}
	maps.Copy(item, attrs)
	w.putRaw(item)
}

func (w *world) putRaw(item map[string]types.AttributeValue) {
	w.t.Helper()
	if _, err := w.env.DynamoDB.PutItem(w.ctx(), &dynamodb.PutItemInput{TableName: aws.String(w.env.Stack.TableName), Item: item}); err != nil {
		w.t.Fatal(err)
	}
}

// raw reads a connection item as stored.
func (w *world) raw(tenant, id string) map[string]types.AttributeValue {
	w.t.Helper()
	out, err := w.env.DynamoDB.GetItem(w.ctx(), &dynamodb.GetItemInput{TableName: aws.String(w.env.Stack.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": sAttr("T#" + tenant + "#C#" + id), "sk": sAttr("CONN")}})
	if err != nil || out.Item == nil {
		w.t.Fatalf("%s/%s: %v", tenant, id, err)
	}
	return out.Item
}

// corrupt sets attrs on a stored item, past the store.
func (w *world) corrupt(tenant, id string, attrs map[string]types.AttributeValue) {
	w.t.Helper()
	item := w.raw(tenant, id)
	maps.Copy(item, attrs)
	w.putRaw(item)
}

// checkFailed lists the Connection Check Failed events published for id.
func (w *world) checkFailed(id string) []*events.CheckFailedDetail {
	var out []*events.CheckFailedDetail
	for _, e := range w.bus.of(events.ConnectionCheckFailed) {
		if d := e.Detail.(*events.CheckFailedDetail); d.ConnectionID == id {
			out = append(out, d)
		}
	}
	return out
}

// logBuffer keeps the check's JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the log lines whose attributes include every one of want.
func (l *logBuffer) lines(want map[string]string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(l.b.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && m[k] == v
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// capture sends the logs of the checks built from now on to a buffer.
func (w *world) capture() *logBuffer {
	l := &logBuffer{}
	w.log = slog.New(slog.NewJSONHandler(l, nil))
	return l
}

// TestPoisonedItemDoesNotStopTheCheck is the case: beside a real
// password connection entering its expiring window, a connection item
// written straight into the table whose settings are not JSON and whose
// version is not a number (its due index entry does not decode). The real
// one turns expiring on time; the poisoned one is counted, logged with its
// id, reported once and retried every run without being reported again;
// fixed, it is processed; poisoned again after that, it is reported again.
func TestPoisonedItemDoesNotStopTheCheck(t *testing.T) {
	w := newWorld(t)
	logs := w.capture()
	t0 := w.now()
	pe := t0.Add(7*24*time.Hour + 20*time.Minute)
	w.password("p1", pe)
	badDue := t0.Add(10 * time.Minute) // before p1: first in the page
	w.poison("t1", "bad", badDue, map[string]types.AttributeValue{"version": sAttr("two")})
	// An item the check never reads in full: only its settings are bad.
	w.poison("t1", "odd", badDue, nil)
	w.env.Clock.Advance(70 * time.Minute) // the bucket has closed
	c := w.check(nil, nil)

	r := w.run(c)
	if r.Checked != 3 || r.Expiring != 2 || r.Failed != 1 || r.Reported != 1 || r.Checkpoint != expiry.BucketOf(t0).String() {
		t.Fatalf("first run: %s, checkpoint %s", r, r.Checkpoint)
	}
	if got := w.get("p1").Conn; got.Status != connection.StatusExpiring || len(w.bus.perConnection(events.ConnectionExpiring)) != 2 {
		t.Fatalf("p1 after the first run: %+v; Connection Expiring of %v", got, w.bus.perConnection(events.ConnectionExpiring))
	}
	if n := w.bus.perConnection(events.ConnectionExpiring)["odd"]; n != 1 {
		t.Errorf("the connection with unreadable settings: %d Connection Expiring (the check reads no settings)", n)
	}
	reported := w.checkFailed("bad")
	if len(reported) != 1 {
		t.Fatalf("%d Connection Check Failed for bad, want 1", len(reported))
	}
	d := reported[0]
	retryAt := w.now().Add(expirycheck.DefaultRetryAfter)
	if d.Tenant != "t1" || d.Reason != expirycheck.ReasonUnreadableItem || !d.RetryAt.Equal(retryAt) || !d.FirstFailedAt.Equal(w.now()) ||
		d.Owners != nil || d.Type != "" || d.EventID == "" {
		t.Errorf("Connection Check Failed: %+v", d)
	}
	if n := len(w.bus.of(events.ConnectionCheckFailed)); n != 1 {
		t.Errorf("%d Connection Check Failed in all", n)
	}
	if l := logs.lines(map[string]string{"id": "bad", "tenant": "t1", "reason": expirycheck.ReasonUnreadableItem}); len(l) != 1 {
		t.Errorf("%d log lines of the failure, want 1:\n%s", len(l), logs)
	}
	if strings.Contains(logs.String(), "not json") {
		t.Error("the logs carry an attribute's value")
	}
	if got := w.entries(retryAt, retryAt); len(got) != 1 || got[0].ID != "bad" || got[0].Err == nil {
		t.Fatalf("bad is not re-filed for %s: %+v", retryAt, got)
	}

	// Each run an hour later retries it: counted, not reported again; the
	// checkpoint moves on.
	for run := 2; run <= 3; run++ {
		w.env.Clock.Advance(time.Hour)
		r = w.run(c)
		if r.Checked != 1 || r.Failed != 1 || r.Reported != 0 || r.Checkpoint != (expiry.BucketOf(w.now())-1).String() {
			t.Fatalf("run %d: %s, checkpoint %s", run, r, r.Checkpoint)
		}
	}
	if n := len(w.checkFailed("bad")); n != 1 {
		t.Fatalf("%d Connection Check Failed for bad after its retries, want 1", n)
	}
	if n := w.raw("t1", "bad")["checkFailures"]; n.(*types.AttributeValueMemberN).Value != "3" {
		t.Errorf("failures recorded on the item: %v, want 3", n)
	}

	// Fixed in place (its filing, and the failure mark, stay): processed.
	w.corrupt("t1", "bad", map[string]types.AttributeValue{"version": nAttr(1), "settings": sAttr(`{"baseUrl":"https://api.example.com"}`)})
	w.env.Clock.Advance(time.Hour)
	if r = w.run(c); r.Checked != 1 || r.Expiring != 1 || r.Failed != 0 || r.Reported != 0 {
		t.Fatalf("after the fix: %s", r)
	}
	if got := w.get("bad").Conn; got.Status != connection.StatusExpiring || got.Version != 2 {
		t.Fatalf("bad after the fix: %+v", got)
	}

	// Poisoned again once handled: a new streak, reported again, when it
	// next falls due (its expiry; p1's and odd's come too).
	w.corrupt("t1", "bad", map[string]types.AttributeValue{"owners": sAttr("alice")})
	w.env.Clock.Advance(pe.Add(time.Minute).Sub(w.now()))
	if r = w.run(c); r.Failed != 1 || r.Reported != 1 || r.Expired != 2 {
		t.Fatalf("at bad's expiry: %s", r)
	}
	if got := w.checkFailed("bad"); len(got) != 2 || got[1].Reason != expirycheck.ReasonUnreadableItem || got[1].EventID == d.EventID {
		t.Fatalf("Connection Check Failed for bad: %+v", got)
	}
	if got := w.get("p1").Conn; got.Status != connection.StatusExpired {
		t.Errorf("p1 at its expiry: %+v", got)
	}
	w.validateAll()
}

// TestPoisonInAnotherTenant: tenant t0's item that does not decode, due
// the same second and read before tenant t1's, does not stop t1's.
func TestPoisonInAnotherTenant(t *testing.T) {
	w := newWorld(t)
	t0 := w.now()
	due := t0.Add(10 * time.Minute)
	w.poison("t0", "bad", due, map[string]types.AttributeValue{"version": sAttr("x"), "owners": sAttr("alice")})
	for _, id := range []string{"p1", "p2"} {
		w.password(id, due.Add(7*24*time.Hour))
	}
	w.env.Clock.Advance(70 * time.Minute)
	r := w.run(w.check(nil, nil))
	if r.Checked != 3 || r.Expiring != 2 || r.Failed != 1 || r.Reported != 1 || r.Checkpoint != expiry.BucketOf(t0).String() {
		t.Fatalf("report: %s, checkpoint %s", r, r.Checkpoint)
	}
	for _, id := range []string{"p1", "p2"} {
		if got := w.get(id).Conn; got.Status != connection.StatusExpiring {
			t.Errorf("%s of tenant t1: %+v", id, got)
		}
	}
	evs := w.bus.of(events.ConnectionCheckFailed)
	if len(evs) != 1 || evs[0].Tenant() != "t0" || evs[0].Detail.(*events.CheckFailedDetail).ConnectionID != "bad" {
		t.Fatalf("Connection Check Failed: %+v", evs)
	}
	w.validateAll()
}

// failingStore fails the status changes of one connection, as an
// unavailable table would.
type failingStore struct {
	*store.Store
	id string
}

func (f failingStore) ApplyStatusChanges(ctx context.Context, chs []store.StatusChange) []error {
	var pass []store.StatusChange
	var at []int
	errs := make([]error, len(chs))
	for i, ch := range chs {
		if ch.Entry.ID == f.id {
			errs[i] = apperr.Wrap(apperr.Unavailable, "store_unavailable", "the store is unavailable; retry", errCrashed)
			continue
		}
		pass, at = append(pass, ch), append(at, i)
	}
	for j, err := range f.Store.ApplyStatusChanges(ctx, pass) {
		errs[at[j]] = err
	}
	return errs
}

// TestEveryFailureIsReportedOnce: whatever keeps the check from processing
// a connection, it is counted, re-filed, reported once with its reason
// and, failing again an hour later, counted again and not reported; the
// connection beside it is processed and the checkpoint moves on.
func TestEveryFailureIsReportedOnce(t *testing.T) {
	tests := []struct {
		name   string
		oauth  bool
		setup  func(w *world) (expirycheck.Store, expirycheck.Refresher)
		reason string
		// decoded: the index entry was read, so the event names the
		// owners and type.
		decoded bool
	}{
		{"an owners attribute that is not a list", false, func(w *world) (expirycheck.Store, expirycheck.Refresher) {
			w.poison("t1", "bad", w.now().Add(time.Minute), map[string]types.AttributeValue{"owners": sAttr("alice")})
			return nil, nil
		}, expirycheck.ReasonUnreadableItem, false},
		{"a password expiry that is not a number", false, func(w *world) (expirycheck.Store, expirycheck.Refresher) {
			w.poison("t1", "bad", w.now().Add(time.Minute), map[string]types.AttributeValue{"passwordExpiresAt": sAttr("soon")})
			return nil, nil
		}, expirycheck.ReasonUnreadableItem, false},
		{"the store failing its transition", false, func(w *world) (expirycheck.Store, expirycheck.Refresher) {
			w.password("bad", w.now().Add(7*24*time.Hour+time.Minute))
			return failingStore{Store: w.env.Store, id: "bad"}, nil
		}, expirycheck.ReasonStoreError, true},
		{"a refresh that fails", true, func(w *world) (expirycheck.Store, expirycheck.Refresher) {
			w.authorized("bad")
			return nil, failing{id: "bad"}
		}, expirycheck.ReasonRefreshFailed, true},
		{"an OAuth connection whose settings are not JSON", true, func(w *world) (expirycheck.Store, expirycheck.Refresher) {
			w.authorized("bad")
			w.corrupt("t1", "bad", map[string]types.AttributeValue{"settings": sAttr("{not json")}) // the resolver cannot read it
			return nil, nil
		}, expirycheck.ReasonRefreshFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if tt.oauth {
				w.withOAuth(oauthprovider.Options{})
			}
			t0 := w.now()
			w.password("p1", t0.Add(7*24*time.Hour+2*time.Minute))
			st, refresher := tt.setup(w)
			logs := w.capture()
			w.env.Clock.Advance(70 * time.Minute)
			c := w.check(st, refresher)
			r := w.run(c)
			if r.Expiring != 1 || r.Failed != 1 || r.Reported != 1 || r.Checkpoint != expiry.BucketOf(t0).String() {
				t.Fatalf("first run: %s, checkpoint %s", r, r.Checkpoint)
			}
			if got := w.get("p1").Conn; got.Status != connection.StatusExpiring {
				t.Fatalf("p1: %+v", got)
			}
			got := w.checkFailed("bad")
			if len(got) != 1 {
				t.Fatalf("%d Connection Check Failed, want 1", len(got))
			}
			if d := got[0]; d.Reason != tt.reason || d.Tenant != "t1" || (len(d.Owners) == 1) != tt.decoded || (d.Type != "") != tt.decoded {
				t.Errorf("Connection Check Failed: %+v", d)
			}
			if n := len(logs.lines(map[string]string{"tenant": "t1", "connection": "bad"})) + len(logs.lines(map[string]string{"tenant": "t1", "id": "bad"})); n == 0 {
				t.Errorf("no log line names the connection:\n%s", logs)
			}
			retry := w.now().Add(expirycheck.DefaultRetryAfter)
			if e := w.entries(retry, retry); len(e) != 1 || e[0].ID != "bad" {
				t.Fatalf("not re-filed for %s: %+v", retry, e)
			}
			w.env.Clock.Advance(time.Hour)
			if r = w.run(c); r.Failed != 1 || r.Reported != 0 || r.Checkpoint != (expiry.BucketOf(w.now())-1).String() {
				t.Fatalf("an hour later: %s, checkpoint %s", r, r.Checkpoint)
			}
			if n := len(w.checkFailed("bad")); n != 1 {
				t.Errorf("%d Connection Check Failed after the retry, want 1", n)
			}
			w.validateAll()
		})
	}
}

// TestOverlappingChecksReportOnce: three checks at once over the same
// poisoned item report it once.
func TestOverlappingChecksReportOnce(t *testing.T) {
	w := newWorld(t)
	w.poison("t1", "bad", w.now().Add(time.Minute), map[string]types.AttributeValue{"version": sAttr("two")})
	w.env.Clock.Advance(70 * time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	reported := 0
	for range 3 {
		c := w.check(nil, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Run(w.ctx())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			reported += r.Reported
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := len(w.checkFailed("bad")); n != 1 || reported != 1 {
		t.Errorf("%d Connection Check Failed, %d reported; want 1", n, reported)
	}
}
