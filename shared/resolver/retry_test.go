package resolver_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/store"
)

// scriptedStore answers PutTokens with the scripted errors first, then
// writes through; it counts the writes and the reads.
type scriptedStore struct {
	*store.Store
	mu         sync.Mutex
	errs       []error
	puts, gets int
	// moves: the connection is renamed just before each of the first
	// `moves` MarkExpired calls (an edit landing between read and write).
	moves, marks int
}

func (s *scriptedStore) MarkExpired(ctx context.Context, m store.ExpiredMark) error {
	s.mu.Lock()
	s.marks++
	move := s.moves > 0
	s.moves--
	s.mu.Unlock()
	if move {
		r, err := s.Store.Get(ctx, m.Tenant, m.ID)
		if err != nil {
			return err
		}
		prev := r.Conn.Version
		r.Conn.Name, r.Conn.Version = "renamed", prev+1
		if err := s.Store.Update(ctx, r, prev, r.Conn.Owners, store.Changes{Audits: []connection.AuditEntry{{
			ID: "01ZRENAME" + m.ID + string(rune('a'+prev)), At: r.Conn.UpdatedAt, Actor: "root", Action: connection.ActionUpdated, Version: prev + 1}}}); err != nil {
			return err
		}
	}
	return s.Store.MarkExpired(ctx, m)
}

func (s *scriptedStore) PutTokens(ctx context.Context, w store.TokenWrite) error {
	s.mu.Lock()
	s.puts++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	return s.Store.PutTokens(ctx, w)
}

func (s *scriptedStore) Get(ctx context.Context, tenant, id string) (*store.Record, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.Store.Get(ctx, tenant, id)
}

// sleeps records the waits asked for and returns at once.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (s *sleeps) total() (n int, sum time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.waits {
		sum += d
	}
	return len(s.waits), sum
}

// TestRefresh_StoreRetries: the write of refreshed tokens is tried again
// only for what the SDK's retryer does not retry (a transaction conflict),
// at most four times; a throttled write is not retried on top of the SDK.
// Either way the caller gets the new tokens.
func TestRefresh_StoreRetries(t *testing.T) {
	conflict := apperr.Wrap(store.ErrConcurrentChange.Kind, store.ErrConcurrentChange.Code, store.ErrConcurrentChange.Message, errors.New("TransactionConflict"))
	throttled := apperr.Wrap(apperr.Throttled, "throttled", "the store is busy; retry", errors.New("ThrottlingException"))
	tests := []struct {
		id     string
		errs   []error
		puts   int
		stored bool
	}{
		{"first-time", nil, 1, true},
		{"one-conflict", []error{conflict}, 2, true},
		{"three-conflicts", []error{conflict, conflict, conflict}, 4, true},
		{"conflicts-throughout", []error{conflict, conflict, conflict, conflict}, 4, false},
		{"throttled", []error{throttled}, 1, false},
	}
	f := newFixture(t)
	ctx := context.Background()
	for _, tt := range tests {
		f.authorized(t, tt.id)
	}
	f.env.Clock.Advance(time.Hour)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			before, _ := f.stored(t, tt.id)
			st := &scriptedStore{Store: f.env.Store, errs: tt.errs}
			sl := &sleeps{}
			res := f.instance(t, func(c *resolver.Config) { c.Store, c.Sleep = st, sl.sleep })
			cred, err := res.Resolve(ctx, f.input(tt.id))
			if err != nil {
				t.Fatal(err)
			}
			after, ts := f.stored(t, tt.id)
			if got := after.Conn.SecretVersion > before.Conn.SecretVersion; got != tt.stored {
				t.Errorf("stored %v (secret version %d → %d), want %v", got, before.Conn.SecretVersion, after.Conn.SecretVersion, tt.stored)
			}
			if tt.stored && cred.AccessToken() != ts.AccessToken() {
				t.Error("the caller got other tokens than the stored ones")
			}
			if st.puts != tt.puts {
				t.Errorf("%d writes, want %d", st.puts, tt.puts)
			}
			if n, _ := sl.total(); n != tt.puts-1 {
				t.Errorf("%d waits for %d writes", n, st.puts)
			}
		})
	}
}

// TestRefresh_LeaseWaitBoundedByMaxWait: a caller waiting for another
// instance's refresh polls with jittered waits that add up to MaxWait,
// counted on the injected Sleep, then fails retryably; a context that ends
// while waiting ends the wait.
func TestRefresh_LeaseWaitBoundedByMaxWait(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.authorized(t, "c1")
	f.env.Clock.Advance(time.Hour)
	if ok, err := f.env.Store.AcquireLease(ctx, "t1", "c1", "other-instance", resolver.DefaultLeaseTTL); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}

	st := &scriptedStore{Store: f.env.Store}
	sl := &sleeps{}
	res := f.instance(t, func(c *resolver.Config) { c.Store, c.Sleep, c.MaxWait = st, sl.sleep, 2*time.Second })
	_, err := res.Resolve(ctx, f.input("c1"))
	if fl := failure(t, err); fl.Code != resolver.CodeRefreshInProgress || !fl.Retryable || fl.AuthFailure {
		t.Fatalf("%+v", fl)
	}
	n, sum := sl.total()
	if sum != 2*time.Second {
		t.Errorf("waited %s in %d waits, want exactly MaxWait", sum, n)
	}
	for _, d := range sl.waits {
		if d < 0 || d > 400*time.Millisecond {
			t.Errorf("a wait of %s", d)
		}
	}
	// One read before the lease attempts, one after each wait.
	if st.gets != n+1 {
		t.Errorf("%d reads for %d waits", st.gets, n)
	}
	t.Logf("%d polls in %s of waits", n, sum)

	// The function's deadline arrives during the first wait.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waits := 0
	impatient := f.instance(t, func(c *resolver.Config) {
		c.Sleep = func(ctx context.Context, d time.Duration) error { waits++; cancel(); return ctx.Err() }
	})
	_, err = impatient.Resolve(cctx, f.input("c1"))
	if fl := failure(t, err); fl.Code != resolver.CodeRefreshInProgress || !errors.Is(err, context.Canceled) || waits != 1 {
		t.Fatalf("cancelled while waiting: %+v after %d waits", fl, waits)
	}
}

// TestRefresh_MarkExpiredRereads: a connection whose refresh token the
// provider refused is marked expired even when edits land between the read
// and the mark, up to three attempts; past them it stays as it is and the
// caller still gets the rejection.
func TestRefresh_MarkExpiredRereads(t *testing.T) {
	tests := []struct {
		id      string
		moves   int
		marks   int
		expired bool
	}{
		{"undisturbed", 0, 1, true},
		{"two-edits", 2, 3, true},
		{"edits-throughout", 3, 3, false},
	}
	f := newFixture(t)
	ctx := context.Background()
	for _, tt := range tests {
		f.authorized(t, tt.id)
	}
	f.env.Clock.Advance(time.Hour)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			f.idp.Fail(oauthprovider.Failure{Grant: "refresh_token", Status: 400, Code: "invalid_grant"})
			st := &scriptedStore{Store: f.env.Store, moves: tt.moves}
			sl := &sleeps{}
			res := f.instance(t, func(c *resolver.Config) { c.Store, c.Sleep = st, sl.sleep })
			_, err := res.Resolve(ctx, f.input(tt.id))
			if fl := failure(t, err); !fl.AuthFailure || fl.ProviderCode != "invalid_grant" {
				t.Fatalf("%+v", fl)
			}
			rec, _ := f.stored(t, tt.id)
			if got := rec.Conn.Status == connection.StatusExpired; got != tt.expired {
				t.Errorf("status %s, want expired: %v", rec.Conn.Status, tt.expired)
			}
			if st.marks != tt.marks {
				t.Errorf("%d marks, want %d", st.marks, tt.marks)
			}
			if n, _ := sl.total(); n != tt.marks-1 {
				t.Errorf("%d waits for %d marks", n, st.marks)
			}
		})
	}
}
