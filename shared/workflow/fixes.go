package workflow

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// auditLookback is how many of a connection's newest audit entries a
// suspension reads to learn what changed since its step failed; more
// changes than that in the interval count as a fix.
const auditLookback = 20

// fixes says whether a connection change naming changes can end a
// suspension for reason: new credentials, settings or enabling end any;
// any change may end not_usable (availability, owners, kind), the others
// (a rename, an availability change) leave an authentication failure as it was.
func fixes(reason string, changes []string) bool {
	return reason == ReasonNotUsable || slices.ContainsFunc(changes, fixesAuthentication)
}

// fixesAuthentication says whether a change named in Connection Updated
// can end any authentication failure: new credentials or settings, or
// the connection enabled again.
func fixesAuthentication(change string) bool {
	return strings.HasPrefix(change, "credentials") || strings.HasPrefix(change, "settings") || change == "enabled"
}

// fixedSince says whether connection conn changed after at in a way that
// can end a suspension for reason: the change's event may have been
// delivered before the run was suspended, and found nothing to resume.
// When the audit cannot tell, it answers true: a wasted attempt costs less
// than a run left waiting for a fix it already has.
func (s *Service) fixedSince(ctx context.Context, tenant, conn, reason string, at time.Time) bool {
	rec, err := s.Store.Get(ctx, tenant, conn)
	if err != nil || at.IsZero() || !rec.Conn.UpdatedAt.After(at) {
		return false
	}
	entries, _, err := s.Store.Audit(ctx, tenant, conn, "", auditLookback)
	if err != nil {
		s.Log.WarnContext(ctx, "audit unreadable: the changed connection counts as fixed", slog.String("connection", conn), slog.String("error", err.Error()))
		return true
	}
	for _, e := range entries { // newest first
		if !e.At.After(at) {
			return false
		}
		if fixes(reason, e.Changes) {
			return true
		}
	}
	return len(entries) == auditLookback
}
