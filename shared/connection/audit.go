package connection

import "time"

// Action names what an audit entry records.
type Action string

const (
	ActionCreated             Action = "connection.created"
	ActionUpdated             Action = "connection.updated"
	ActionCredentialsChanged  Action = "connection.credentials_changed"
	ActionAvailabilityChanged Action = "connection.availability_changed"
	ActionOwnersChanged       Action = "connection.owners_changed"
	ActionDeleted             Action = "connection.deleted"
	// ActionAuthorized: an OAuth authorization completed and new tokens were stored.
	ActionAuthorized Action = "connection.authorized"
	// ActionExpired: the provider rejected the stored refresh token (or
	// credentials); Details["reason"] holds the provider's error code.
	ActionExpired Action = "connection.expired"
)

// AuditEntry is who did what to a connection, and when. Changes names the
// fields touched, never their values; Details holds non-secret facts such as
// the new availability or owners.
type AuditEntry struct {
	ID      string            `json:"id"`
	At      time.Time         `json:"at"`
	Actor   string            `json:"actor"`
	Action  Action            `json:"action"`
	Version int64             `json:"version"`
	Changes []string          `json:"changes,omitempty"`
	Details map[string]string `json:"details,omitempty"`
}
