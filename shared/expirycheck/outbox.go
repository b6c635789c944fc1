package expirycheck

import (
	"context"
	"time"

	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/outbox"
)

// DefaultGrace is how old an outbox event must be before the drain
// publishes it.
const DefaultGrace = time.Minute

// Settled is the outbox as the check's drain sees it: only events at least
// grace old, so the drain never races the publication that follows the
// commit of a change (which would put the same event on the bus twice); an
// event still there after grace is one whose PutEvents failed.
func Settled(st outbox.Store, grace time.Duration, now func() time.Time) outbox.Store {
	return settled{st: st, grace: grace, now: now}
}

type settled struct {
	st    outbox.Store
	grace time.Duration
	now   func() time.Time
}

func (s settled) Pending(ctx context.Context, limit int) ([]events.Event, error) {
	evs, err := s.st.Pending(ctx, limit)
	if err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-s.grace)
	out := evs[:0]
	for _, e := range evs {
		if at := e.At(); !at.IsZero() && at.After(cutoff) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func (s settled) Published(ctx context.Context, ids []string) error { return s.st.Published(ctx, ids) }
