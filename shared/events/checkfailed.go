package events

import (
	"slices"
	"time"

	"github.com/connmgr/connmgr/shared/connection"
)

// CheckFailedDetail is the detail of Connection Check Failed: the scheduled
// expiry check could not process a connection's due entry (Reason, a
// stable code), counted it and re-filed it for its next run (RetryAt). It
// is sent once per streak of failures, on the first: the hourly retries of
// a connection that keeps failing are not reported again, and a failure
// after the connection was handled (or rewritten) begins a new streak.
//
// A connection the check cannot read may not even decode: only Tenant and
// ConnectionID (from the index keys) are certain; Type, Name and Owners
// are set when the index entry could be read.
type CheckFailedDetail struct {
	SchemaVersion int      `json:"schemaVersion"`
	EventID       string   `json:"eventId"`
	Tenant        string   `json:"tenant"`
	ConnectionID  string   `json:"connectionId"`
	Type          string   `json:"type,omitempty"`
	Name          string   `json:"name,omitempty"`
	Owners        []string `json:"owners,omitempty"`
	Reason        string   `json:"reason"`
	// FirstFailedAt is the failure that began the streak: the one this
	// event reports.
	FirstFailedAt time.Time `json:"firstFailedAt"`
	// RetryAt is when the check looks at the connection again.
	RetryAt time.Time `json:"retryAt"`
	At      time.Time `json:"at"`
}

// ForCheckFailure builds a Connection Check Failed event of the connection
// id of tenant; c is the connection as the index showed it, nil when its
// entry did not decode.
func ForCheckFailure(tenant, connID string, c *connection.Connection, id, reason string, failedAt, retryAt, at time.Time) Event {
	d := &CheckFailedDetail{SchemaVersion: SchemaVersion, EventID: id, Tenant: tenant, ConnectionID: connID, Reason: reason,
		FirstFailedAt: failedAt.UTC(), RetryAt: retryAt.UTC(), At: at.UTC()}
	if c != nil {
		d.Type, d.Name, d.Owners = c.Type, c.Name, slices.Clone(c.Owners)
	}
	return Event{DetailType: ConnectionCheckFailed, Detail: d}
}
