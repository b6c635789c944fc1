package events

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/runs"
)

// ForConnection builds a Connection event from the connection as it stands
// after the change. id is the event id (a ULID); actor may be empty for
// system changes.
func ForConnection(detailType string, c *connection.Connection, id, actor, reason string, changes []string, at time.Time) Event {
	return Event{DetailType: detailType, Detail: &ConnectionDetail{
		SchemaVersion: SchemaVersion, EventID: id, Tenant: c.Tenant, ConnectionID: c.ID, Type: c.Type, Name: c.Name,
		Kind: string(c.Kind), Owners: slices.Clone(c.Owners), Status: string(c.Status), Reason: reason, Actor: actor,
		Changes: changes, Version: c.Version, At: at.UTC(),
	}}
}

// WithPreviousOwners sets who owned the connection before an owners change.
func (e Event) WithPreviousOwners(owners []string) Event {
	if d, ok := e.Detail.(*ConnectionDetail); ok && len(owners) > 0 {
		d.PreviousOwners = slices.Clone(owners)
	}
	return e
}

// WithExpiresAt sets when a Connection event's credentials expire (the
// password's or the refresh token's expiry of Connection Expiring and
// Connection Expired).
func (e Event) WithExpiresAt(t time.Time) Event {
	if d, ok := e.Detail.(*ConnectionDetail); ok && !t.IsZero() {
		d.ExpiresAt = t.UTC()
	}
	return e
}

// ForRun builds a Run event from the run as it stands after the change.
func ForRun(detailType string, r *runs.Run, id, reason string, at time.Time) Event {
	d := &RunDetail{
		SchemaVersion: SchemaVersion, EventID: id, Tenant: r.Tenant, RunID: r.ID, WorkflowID: r.WorkflowID,
		Site: r.Site, Owner: r.Owner, Status: string(r.Status), Reason: reason, At: at.UTC(),
	}
	if r.Current >= 0 && r.Current < len(r.Steps) {
		d.StepID = r.Steps[r.Current].ID
	}
	if s := r.Suspension; s != nil {
		d.ConnectionID, d.TerminatesAt = s.Connection, s.TerminatesAt
		if d.Reason == "" {
			d.Reason = s.Reason
		}
	}
	return Event{DetailType: detailType, Detail: d}
}

// ForOAuthClient builds an OAuth Client event of the tenant's registration
// for typ: status expiring or expired, the secret's expiry and the reason.
func ForOAuthClient(detailType, tenant, typ, clientID, id, status, reason string, expiresAt, at time.Time) Event {
	return Event{DetailType: detailType, Detail: &OAuthClientDetail{
		SchemaVersion: SchemaVersion, EventID: id, Tenant: tenant, Type: typ, ClientID: clientID,
		Status: status, Reason: reason, ExpiresAt: expiresAt.UTC(), At: at.UTC(),
	}}
}

// Marshal encodes the detail for the outbox.
func (e Event) Marshal() (string, error) {
	b, err := json.Marshal(e.Detail)
	return string(b), err
}

// Decode rebuilds an event read back from the outbox.
func Decode(detailType, detail string) (Event, error) {
	var d any
	switch {
	case detailType == ConnectionCheckFailed:
		d = &CheckFailedDetail{}
	case strings.HasPrefix(detailType, "Run "):
		d = &RunDetail{}
	case strings.HasPrefix(detailType, "OAuth Client "):
		d = &OAuthClientDetail{}
	default:
		d = &ConnectionDetail{}
	}
	if err := json.Unmarshal([]byte(detail), d); err != nil {
		return Event{}, err
	}
	return Event{DetailType: detailType, Detail: d}, nil
}
