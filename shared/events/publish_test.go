package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
)

// scriptedBus answers each PutEvents call by its script: the call fails
// (callErr), or the entries whose connection id is listed fail.
type scriptedBus struct {
	script []busAnswer
	calls  [][]string // connection ids per call
	put    []string   // connection ids accepted
}

type busAnswer struct {
	callErr error
	fail    []string // connection ids failed in this call
}

func (b *scriptedBus) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	var a busAnswer
	if n := len(b.calls); n < len(b.script) {
		a = b.script[n]
	}
	var conns []string
	for _, e := range in.Entries {
		conns = append(conns, connOf(aws.ToString(e.Detail)))
	}
	b.calls = append(b.calls, conns)
	if a.callErr != nil {
		return nil, a.callErr
	}
	out := &eventbridge.PutEventsOutput{Entries: make([]ebtypes.PutEventsResultEntry, len(in.Entries))}
	for i, c := range conns {
		if slices.Contains(a.fail, c) {
			out.Entries[i].ErrorCode, out.Entries[i].ErrorMessage = aws.String("ThrottlingException"), aws.String("slow down")
			out.FailedEntryCount++
			continue
		}
		out.Entries[i].EventId = aws.String("eb-" + c)
		b.put = append(b.put, c)
	}
	return out, nil
}

// connOf is the connection id of an entry's detail.
func connOf(detail string) string {
	var d struct {
		ConnectionID string `json:"connectionId"`
	}
	_ = json.Unmarshal([]byte(detail), &d)
	return d.ConnectionID
}

// TestPublishRetriesFailedEntriesOnly: entries EventBridge failed inside a
// successful call are put again, alone, at most three times in all; a
// failed call is not retried (the SDK's retryer already did), and what is
// left is reported by id.
func TestPublishRetriesFailedEntriesOnly(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name   string
		n      int // events c00..c<n-1>
		script []busAnswer
		calls  [][]string
		failed []string
		err    bool
	}{
		{"all accepted", 3, nil, [][]string{{"c00", "c01", "c02"}}, nil, false},
		{"two entries fail once", 3, []busAnswer{{fail: []string{"c00", "c02"}}},
			[][]string{{"c00", "c01", "c02"}, {"c00", "c02"}}, nil, false},
		{"an entry fails every time", 2, []busAnswer{{fail: []string{"c01"}}, {fail: []string{"c01"}}, {fail: []string{"c01"}}},
			[][]string{{"c00", "c01"}, {"c01"}, {"c01"}}, []string{"c01"}, true},
		{"the call fails: not retried on top of the SDK", 2, []busAnswer{{callErr: down}},
			[][]string{{"c00", "c01"}}, []string{"c00", "c01"}, true},
		{"the second batch's call fails", 12, []busAnswer{{}, {callErr: down}},
			[][]string{{"c00", "c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09"}, {"c10", "c11"}}, []string{"c10", "c11"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evs []events.Event
			idOf := map[string]string{}
			for i := range tt.n {
				c := &connection.Connection{Tenant: "t1", ID: fmt.Sprintf("c%02d", i), Type: "http-basic", Name: "n", Kind: connection.Shared,
					Owners: []string{"alice"}, Status: connection.StatusActive, Version: 1}
				e := events.ForConnection(events.ConnectionUpdated, c, fmt.Sprintf("01EV%02d", i), "alice", "", []string{"name"}, at)
				evs = append(evs, e)
				idOf[c.ID] = e.ID()
			}
			bus := &scriptedBus{script: tt.script}
			failed, err := events.NewPublisher(bus, "bus").Publish(context.Background(), evs)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want an error: %v", err, tt.err)
			}
			if !slices.EqualFunc(bus.calls, tt.calls, slices.Equal[[]string]) {
				t.Errorf("calls %v, want %v", bus.calls, tt.calls)
			}
			var want []string
			for _, c := range tt.failed {
				want = append(want, idOf[c])
			}
			if !slices.Equal(failed, want) {
				t.Errorf("failed %v, want %v", failed, want)
			}
		})
	}
}
