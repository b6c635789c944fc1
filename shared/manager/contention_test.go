package manager_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/manager"
	"github.com/connmgr/connmgr/shared/store"
)

// racyStore is a store on which other writers win: each Update call is
// answered by lose until it returns nil, and each read after a lost race
// shows the version those writers left.
type racyStore struct {
	manager.Store
	mu      sync.Mutex
	version int64
	lose    func(call int) error
	updates int
}

func (s *racyStore) Get(_ context.Context, tenant, id string) (*store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &store.Record{Conn: connection.Connection{Tenant: tenant, ID: id, Type: "http-basic", Name: "n", Kind: connection.Shared,
		Availability: connection.Availability{Scope: connection.ScopeTenant}, Owners: []string{"alice"}, CreatedBy: "alice",
		Version: s.version, Status: connection.StatusActive, Settings: map[string]any{"baseUrl": "https://api.example.com"}}}, nil
}

func (s *racyStore) Update(_ context.Context, next *store.Record, expected int64, _ []string, _ store.Changes) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates++
	if err := s.lose(s.updates); err != nil {
		if apperr.Is(err, apperr.PreconditionFailed) {
			s.version++ // the writer who won
		}
		return err
	}
	s.version = next.Conn.Version
	return nil
}

type noEvents struct{}

func (noEvents) Flush(context.Context, []events.Event) {}

// TestMutateContention: a write that loses races is retried from the read;
// without If-Match it never answers 412: it succeeds, or after the
// retries answers 503 contention. With If-Match a version gone is 412.
func TestMutateContention(t *testing.T) {
	stale := apperr.E(apperr.PreconditionFailed, "version_mismatch", "changed")
	busy := apperr.Wrap(store.ErrConcurrentChange.Kind, store.ErrConcurrentChange.Code, "busy", errors.New("TransactionConflict"))
	always := func(err error) func(int) error { return func(int) error { return err } }
	until := func(n int, err error) func(int) error {
		return func(call int) error {
			if call < n {
				return err
			}
			return nil
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ifMatch int64
		lose    func(int) error
		ctx     context.Context
		updates int    // Update calls made
		code    string // "" when the update succeeds
		status  int
	}{
		{"wins at once", 0, always(nil), nil, 1, "", 0},
		{"wins after two lost races", 0, until(3, stale), nil, 3, "", 0},
		{"wins after transaction conflicts", 0, until(4, busy), nil, 4, "", 0},
		{"always loses without If-Match", 0, always(stale), nil, 8, "contention", 503},
		{"always in a transaction conflict", 0, always(busy), nil, 8, "contention", 503},
		{"loses with If-Match: the version is gone", 1, always(stale), nil, 1, "version_mismatch", 412},
		{"transaction conflict with If-Match, then wins", 1, until(2, busy), nil, 2, "", 0},
		{"the caller gives up while waiting", 0, always(stale), cancelled, 1, "contention", 503},
		{"another failure is not retried", 0, always(errors.New("disk on fire")), nil, 1, "internal", 500},
	}
	alice := identity.Caller{Tenant: "t1", User: "alice"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &racyStore{version: 1, lose: tt.lose}
			svc := manager.New(manager.Deps{Store: st, Events: noEvents{}, Now: time.Now, NewID: func() string { return "01ID" }})
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			name := "renamed"
			c, err := svc.Update(ctx, alice, "c1", manager.UpdateInput{Name: &name}, tt.ifMatch)
			if st.updates != tt.updates {
				t.Errorf("%d writes, want %d", st.updates, tt.updates)
			}
			if tt.code == "" {
				if err != nil || c.Name != name {
					t.Fatalf("%v %+v", err, c)
				}
				return
			}
			e := apperr.As(err)
			if e.Code != tt.code || e.Kind.Status() != tt.status {
				t.Fatalf("err %v (%d), want %d %s", err, e.Kind.Status(), tt.status, tt.code)
			}
		})
	}
}
