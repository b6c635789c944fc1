// Package events is the catalogue of events the connection manager puts on
// its EventBridge bus, and the publisher.
//
// Every event has source "connmgr", a detail-type from the catalogue and a
// detail carrying ids, owners (connection events, where readable: see
// CheckFailedDetail; run events name the run's owner, OAuth client events
// are for the tenant's administrators),
// reason codes and timestamps with a schema version: never a secret. Events are written to the outbox in the same
// transaction as the change they report and published after it commits, so
// a failed PutEvents is retried later and never loses or undoes the change.
// Delivery is at least once; consumers deduplicate on detail.eventId.
//
// Each detail type has a JSON Schema (draft 2020-12) in schemas/ (package
// schemas, which tests import and the functions do not): the contract for
// subscribers. The schemas admit no property they do not list, so a secret
// cannot ride along unnoticed; tests validate every builder's output and
// every event the end-to-end scenarios put on the local bus.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/connmgr/connmgr/shared/retry"
)

// Source is the source of every event.
const Source = "connmgr"

// SchemaVersion is the version of every detail shape below.
const SchemaVersion = 1

// Detail types: the catalogue.
const (
	ConnectionCreated         = "Connection Created"
	ConnectionUpdated         = "Connection Updated"
	ConnectionDeleted         = "Connection Deleted"
	ConnectionExpiring        = "Connection Expiring"
	ConnectionExpired         = "Connection Expired"
	ConnectionRefreshFailed   = "Connection Refresh Failed"
	ConnectionRecovered       = "Connection Recovered"
	ConnectionCheckFailed     = "Connection Check Failed"
	RunSuspended              = "Run Suspended"
	RunResumed                = "Run Resumed"
	RunTerminated             = "Run Terminated"
	RunSucceeded              = "Run Succeeded"
	RunFailed                 = "Run Failed"
	RunTerminationApproaching = "Run Termination Approaching"
	OAuthClientExpiring       = "OAuth Client Expiring"
	OAuthClientExpired        = "OAuth Client Expired"
)

// Catalogue lists every detail type.
var Catalogue = []string{
	ConnectionCreated, ConnectionUpdated, ConnectionDeleted, ConnectionExpiring, ConnectionExpired,
	ConnectionRefreshFailed, ConnectionRecovered, ConnectionCheckFailed,
	RunSuspended, RunResumed, RunTerminated, RunSucceeded, RunFailed, RunTerminationApproaching,
	OAuthClientExpiring, OAuthClientExpired,
}

// The schedule's own events. Each time the expiry check's schedule
// (ExpiryCheckSchedule) fires, EventBridge puts a "Scheduled Event" with
// source "aws.events", detail {} and the rule's ARN in resources on the
// account's default bus, and delivers it to the expiry check. It is not
// the connection manager's: it is not in Catalogue, has no schema here and
// never reaches the stack's bus, so a rule there (source connmgr) never
// sees it; the local runtime's /dev/events lists every bus and shows it.
const (
	ScheduleSource = "aws.events"
	ScheduledEvent = "Scheduled Event"
)

// Event is one event before publication.
type Event struct {
	DetailType string
	Detail     any // *ConnectionDetail, *CheckFailedDetail, *RunDetail or *OAuthClientDetail
}

// ConnectionDetail is the detail of every Connection event.
type ConnectionDetail struct {
	SchemaVersion int      `json:"schemaVersion"`
	EventID       string   `json:"eventId"`
	Tenant        string   `json:"tenant"`
	ConnectionID  string   `json:"connectionId"`
	Type          string   `json:"type"`
	Name          string   `json:"name,omitempty"`
	Kind          string   `json:"kind"`
	Owners        []string `json:"owners"`
	// PreviousOwners are the owners before an owners change (Connection
	// Updated with "owners" in changes); absent otherwise.
	PreviousOwners []string  `json:"previousOwners,omitempty"`
	Status         string    `json:"status"`
	Reason         string    `json:"reason,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	Changes        []string  `json:"changes,omitempty"`
	Version        int64     `json:"version"`
	ExpiresAt      time.Time `json:"expiresAt,omitzero"`
	At             time.Time `json:"at"`
}

// RunDetail is the detail of every Run event.
type RunDetail struct {
	SchemaVersion int       `json:"schemaVersion"`
	EventID       string    `json:"eventId"`
	Tenant        string    `json:"tenant"`
	RunID         string    `json:"runId"`
	WorkflowID    string    `json:"workflowId"`
	Site          string    `json:"site"`
	Owner         string    `json:"owner"`
	Status        string    `json:"status"`
	StepID        string    `json:"stepId,omitempty"`
	ConnectionID  string    `json:"connectionId,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	TerminatesAt  time.Time `json:"terminatesAt,omitzero"`
	At            time.Time `json:"at"`
}

// OAuthClientDetail is the detail of every OAuth Client event: a tenant's
// client registration for a connection type, addressed to the tenant's
// administrators (who manage registrations). The client id is not a
// secret; the client secret never appears.
type OAuthClientDetail struct {
	SchemaVersion int    `json:"schemaVersion"`
	EventID       string `json:"eventId"`
	Tenant        string `json:"tenant"`
	// Type is the connection type the client is registered for.
	Type     string `json:"type"`
	ClientID string `json:"clientId"`
	// Status is where the secret stands: expiring or expired.
	Status    string    `json:"status"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expiresAt"`
	At        time.Time `json:"at"`
}

// ID returns the event id carried in the detail.
func (e Event) ID() string {
	switch d := e.Detail.(type) {
	case *ConnectionDetail:
		return d.EventID
	case *RunDetail:
		return d.EventID
	case *OAuthClientDetail:
		return d.EventID
	case *CheckFailedDetail:
		return d.EventID
	}
	return ""
}

// Tenant returns the tenant carried in the detail.
func (e Event) Tenant() string {
	switch d := e.Detail.(type) {
	case *ConnectionDetail:
		return d.Tenant
	case *RunDetail:
		return d.Tenant
	case *OAuthClientDetail:
		return d.Tenant
	case *CheckFailedDetail:
		return d.Tenant
	}
	return ""
}

// At returns when the change the event reports was committed.
func (e Event) At() time.Time {
	switch d := e.Detail.(type) {
	case *ConnectionDetail:
		return d.At
	case *RunDetail:
		return d.At
	case *OAuthClientDetail:
		return d.At
	case *CheckFailedDetail:
		return d.At
	}
	return time.Time{}
}

// PutEventsAPI is the EventBridge call the publisher needs.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Publisher puts events on one bus.
type Publisher struct {
	eb  PutEventsAPI
	bus string
}

// NewPublisher returns a Publisher for bus.
func NewPublisher(eb PutEventsAPI, bus string) *Publisher { return &Publisher{eb: eb, bus: bus} }

// publishRetry bounds the attempts at entries EventBridge failed inside a
// successful PutEvents (FailedEntryCount: ThrottlingException or
// InternalFailure per entry), which the SDK's retryer never sees. A failed
// call is not retried here: the SDK has already retried it (shared/app),
// and what stays unpublished waits in the outbox for the drain.
var publishRetry = retry.Policy{Attempts: 3, Base: 50 * time.Millisecond, Max: 400 * time.Millisecond}

// Publish puts evs, ten per call, retrying entries EventBridge reports as
// failed (publishRetry). It returns the ids it could not publish with the
// error.
func (p *Publisher) Publish(ctx context.Context, evs []Event) (failed []string, err error) {
	for start := 0; start < len(evs); start += 10 {
		batch := evs[start:min(start+10, len(evs))]
		entries := make([]ebtypes.PutEventsRequestEntry, len(batch))
		for i, e := range batch {
			detail, merr := json.Marshal(e.Detail)
			if merr != nil {
				return ids(evs[start:]), fmt.Errorf("events: marshal %s: %w", e.DetailType, merr)
			}
			entries[i] = ebtypes.PutEventsRequestEntry{
				EventBusName: aws.String(p.bus), Source: aws.String(Source), DetailType: aws.String(e.DetailType),
				Detail: aws.String(string(detail)), Resources: []string{},
			}
		}
		pending, pendingEvs := entries, batch
		err := publishRetry.Do(ctx, func(int) (bool, error) {
			out, perr := p.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: pending})
			if perr != nil {
				return false, fmt.Errorf("events: PutEvents: %w", perr)
			}
			var again []ebtypes.PutEventsRequestEntry
			var againEvs []Event
			lastCode := ""
			for i, r := range out.Entries {
				if r.ErrorCode != nil && i < len(pending) {
					again = append(again, pending[i])
					againEvs = append(againEvs, pendingEvs[i])
					lastCode = aws.ToString(r.ErrorCode)
				}
			}
			if pending, pendingEvs = again, againEvs; len(pending) > 0 {
				return true, errors.New("events: PutEvents left entries unpublished: " + lastCode)
			}
			return false, nil
		})
		if err != nil {
			return append(ids(pendingEvs), ids(evs[start+len(batch):])...), err
		}
	}
	return nil, nil
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID()
	}
	return out
}
