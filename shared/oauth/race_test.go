package oauth_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/store"
)

// racingStore renames the connection just before each of the first
// `moves` token writes, as an administrator's edit landing between the
// callback's read and its write would.
type racingStore struct {
	*store.Store
	moves atomic.Int32
	puts  atomic.Int32
}

func (s *racingStore) PutTokens(ctx context.Context, w store.TokenWrite) error {
	s.puts.Add(1)
	if s.moves.Add(-1) >= 0 {
		r, err := s.Store.Get(ctx, w.Tenant, w.ID)
		if err != nil {
			return err
		}
		prev := r.Conn.Version
		r.Conn.Name, r.Conn.Version = fmt.Sprintf("renamed %d", prev), prev+1
		if err := s.Store.Update(ctx, r, prev, r.Conn.Owners, store.Changes{Audits: []connection.AuditEntry{{
			ID: fmt.Sprintf("01ZRENAME%03d", prev), At: r.Conn.UpdatedAt, Actor: "root", Action: connection.ActionUpdated, Version: prev + 1}}}); err != nil {
			return err
		}
	}
	return s.Store.PutTokens(ctx, w)
}

// TestCallbackStoreRetriesARace: a callback whose write loses to an edit
// reads the connection again and stores the tokens on it, at most three
// times in all; past that it fails as a precondition, storing nothing.
func TestCallbackStoreRetriesARace(t *testing.T) {
	tests := []struct {
		moves   int32
		puts    int32
		stored  bool
		version int64 // after
	}{
		{0, 1, true, 2},
		{2, 3, true, 4},
		{3, 3, false, 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d edits", tt.moves), func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			f.newConnection(t, "c1")
			st := &racingStore{Store: f.env.Store}
			st.moves.Store(tt.moves)
			cb, err := oauth.NewCallback(oauth.CallbackConfig{Store: st, Opener: f.opener, Sealer: f.env.Sealer,
				RedirectURI: redirectURI, Now: f.env.Clock.Now, HTTPClient: localHTTP, NewID: func() string { return fmt.Sprintf("01ZAUDIT%06d", f.ids.Add(1)) }})
			if err != nil {
				t.Fatal(err)
			}
			_, state, code := f.begin(t, "c1")
			_, err = cb.Complete(ctx, oauth.CallbackInput{State: state, Code: code, RedirectURI: redirectURI})
			if tt.stored && err != nil || !tt.stored && !apperr.Is(err, apperr.PreconditionFailed) {
				t.Fatalf("complete: %v", err)
			}
			if n := st.puts.Load(); n != tt.puts {
				t.Errorf("%d token writes, want %d", n, tt.puts)
			}
			r, err := f.env.Store.Get(ctx, "t1", "c1")
			if err != nil {
				t.Fatal(err)
			}
			if stored := r.Conn.SecretVersion == 1 && r.Conn.Status == connection.StatusActive; stored != tt.stored || r.Conn.Version != tt.version {
				t.Errorf("after: secret v%d %s version %d; want stored %v, version %d", r.Conn.SecretVersion, r.Conn.Status, r.Conn.Version, tt.stored, tt.version)
			}
		})
	}
}
