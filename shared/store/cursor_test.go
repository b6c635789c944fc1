package store_test

import (
	"encoding/base64"
	"testing"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/store"
)

// TestCursorScope: a cursor decodes only in the scope it was issued for;
// any other tenant, user, route or filter set, and any alteration, is 400
// invalid_cursor.
func TestCursorScope(t *testing.T) {
	issued := store.CursorScope{Tenant: "t1", User: "alice", Route: "GET /connections",
		Filters: map[string]string{"type": "http-basic", "status": "", "scope": "tenant"}}
	const position = "01JCONNECTION0000000000000"
	cursor := issued.Encode(position)
	with := func(change func(*store.CursorScope)) store.CursorScope {
		sc := issued
		sc.Filters = map[string]string{}
		for k, v := range issued.Filters {
			sc.Filters[k] = v
		}
		change(&sc)
		return sc
	}
	raw, _ := base64.RawURLEncoding.DecodeString(cursor)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name   string
		scope  store.CursorScope
		cursor string
		ok     bool
	}{
		{"same scope", issued, cursor, true},
		{"filters in another order, empty ones omitted", with(func(s *store.CursorScope) {
			s.Filters = map[string]string{"scope": "tenant", "type": "http-basic"}
		}), cursor, true},
		{"another tenant", with(func(s *store.CursorScope) { s.Tenant = "t2" }), cursor, false},
		{"another user", with(func(s *store.CursorScope) { s.User = "bob" }), cursor, false},
		{"another route", with(func(s *store.CursorScope) { s.Route = "GET /runs" }), cursor, false},
		{"another filter value", with(func(s *store.CursorScope) { s.Filters["type"] = "http-api-key" }), cursor, false},
		{"a filter dropped", with(func(s *store.CursorScope) { delete(s.Filters, "scope") }), cursor, false},
		{"a filter added", with(func(s *store.CursorScope) { s.Filters["status"] = "active" }), cursor, false},
		{"a filter's value under another name", with(func(s *store.CursorScope) { s.Filters = map[string]string{"types": "http-basic", "scope": "tenant"} }), cursor, false},
		{"the version altered", issued, flip(0), false},
		{"the digest altered", issued, flip(5), false},
		{"the position altered", issued, flip(len(raw) - 1), false},
		{"truncated", issued, cursor[:len(cursor)-4], false},
		{"the digest alone", issued, base64.RawURLEncoding.EncodeToString(raw[:17]), false},
		{"an unbound cursor (the old format)", issued, base64.RawURLEncoding.EncodeToString([]byte(position)), false},
		{"not base64", issued, "!!", false},
		{"empty", issued, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.scope.Decode(tt.cursor)
			if tt.ok {
				if err != nil || got != position {
					t.Fatalf("Decode = %q, %v; want %q", got, err, position)
				}
				return
			}
			if e := apperr.As(err); err == nil || e.Kind != apperr.Invalid || e.Code != "invalid_cursor" || e.Field != "cursor" {
				t.Fatalf("Decode = %q, %v; want 400 invalid_cursor", got, err)
			}
		})
	}
	// A position scoped elsewhere never decodes as a key part it is not.
	if _, err := issued.Decode(issued.Encode("a#b")); err == nil {
		t.Error("a position that bends a key decoded")
	}
}
