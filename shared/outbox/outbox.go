// Package outbox publishes the events that changes wrote to the store's
// outbox in their own transactions: right after the commit (Flush), and
// again from the scheduled drain for whatever could not be published then.
// A failed publication never fails or undoes the change; delivery is at
// least once.
package outbox

import (
	"context"
	"log/slog"
	"slices"

	"github.com/connmgr/connmgr/shared/events"
)

// Store is the outbox in the table.
type Store interface {
	Pending(ctx context.Context, limit int) ([]events.Event, error)
	Published(ctx context.Context, ids []string) error
}

// Publisher puts events on the bus.
type Publisher interface {
	Publish(ctx context.Context, evs []events.Event) (failed []string, err error)
}

// Relay moves events from the outbox to the bus.
type Relay struct {
	store Store
	pub   Publisher
	log   *slog.Logger
}

// New returns a Relay.
func New(st Store, pub Publisher, log *slog.Logger) *Relay {
	return &Relay{store: st, pub: pub, log: log}
}

// Flush publishes events whose change just committed and removes them from
// the outbox. Failures are logged and left for Drain.
func (r *Relay) Flush(ctx context.Context, evs []events.Event) {
	if len(evs) == 0 {
		return
	}
	if _, err := r.publish(ctx, evs); err != nil {
		r.log.WarnContext(ctx, "events left in the outbox for the next drain", slog.String("error", err.Error()))
	}
}

// Drain publishes up to limit events left in the outbox and reports how
// many it published.
func (r *Relay) Drain(ctx context.Context, limit int) (int, error) {
	evs, err := r.store.Pending(ctx, limit)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	return r.publish(ctx, evs)
}

func (r *Relay) publish(ctx context.Context, evs []events.Event) (int, error) {
	failed, perr := r.pub.Publish(ctx, evs)
	var done []string
	for _, e := range evs {
		if !slices.Contains(failed, e.ID()) {
			done = append(done, e.ID())
		}
	}
	if err := r.store.Published(ctx, done); err != nil {
		// Published but still in the outbox: the drain publishes them again,
		// which consumers absorb by eventId.
		return len(done), err
	}
	for _, e := range evs {
		if !slices.Contains(failed, e.ID()) {
			r.log.InfoContext(ctx, "event published", slog.String("detailType", e.DetailType), slog.String("eventId", e.ID()), slog.String("tenant", e.Tenant()))
		}
	}
	return len(done), perr
}
