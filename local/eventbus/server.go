package eventbus

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/connmgr/connmgr/local/loopback"
)

// Start serves b on addr ("" = a free loopback port); Close stops the
// listener and leaves the bus running.
func Start(addr string, b *Bus) (*loopback.Server, error) {
	s, err := loopback.Serve(addr, Handler(b), nil)
	if err != nil {
		return nil, fmt.Errorf("eventbus: %w", err)
	}
	return s, nil
}

// Handler serves the EventBridge API (AWS JSON 1.1, X-Amz-Target:
// AWSEvents.<Operation>), PutEvents only, for mounting elsewhere.
func Handler(b *Bus) http.Handler { return &handler{b: b} }

type handler struct{ b *Bus }

const (
	contentType = "application/x-amz-json-1.1"
	maxBody     = 4 << 20
)

type putEventsEntry struct {
	Source       *string         `json:"Source"`
	DetailType   *string         `json:"DetailType"`
	Detail       *string         `json:"Detail"`
	EventBusName *string         `json:"EventBusName"`
	Time         json.RawMessage `json:"Time"`
	Resources    []string        `json:"Resources"`
	TraceHeader  *string         `json:"TraceHeader"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var id [16]byte
	rand.Read(id[:])
	w.Header().Set("X-Amzn-RequestId", hex.EncodeToString(id[:]))
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "the EventBridge protocol is POST only")
		return
	}
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AWSEvents.")
	if op != "PutEvents" {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("operation %q is not supported by the local event bus", op))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "ValidationException", "Total size of the entries in the request is over the limit.")
		return
	}
	var in struct {
		Entries    []putEventsEntry `json:"Entries"`
		EndpointID *string          `json:"EndpointId"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "malformed request: "+err.Error())
		return
	}
	if in.EndpointID != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "global endpoints (EndpointId) are not supported by the local event bus")
		return
	}
	if in.Entries == nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null")
		return
	}
	entries := make([]Entry, len(in.Entries))
	for i, e := range in.Entries {
		t, err := parseTime(e.Time)
		if err != nil {
			writeError(w, http.StatusBadRequest, "SerializationException", fmt.Sprintf("Entries[%d].Time: %v", i, err))
			return
		}
		entries[i] = Entry{Source: deref(e.Source), DetailType: deref(e.DetailType), Detail: deref(e.Detail),
			EventBusName: deref(e.EventBusName), Time: t, Resources: e.Resources, TraceHeader: deref(e.TraceHeader)}
	}
	results, err := h.b.PutEvents(r.Context(), entries)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			writeError(w, http.StatusBadRequest, "ValidationException", ve.Message)
			return
		}
		writeError(w, http.StatusInternalServerError, "InternalException", err.Error())
		return
	}
	failed := 0
	for _, res := range results {
		if res.ErrorCode != "" {
			failed++
		}
	}
	out, _ := json.Marshal(map[string]any{"FailedEntryCount": failed, "Entries": results})
	w.Header().Set("Content-Type", contentType)
	w.Write(out)
}

// parseTime reads a timestamp as the JSON protocol sends it (epoch
// seconds, possibly fractional), or an RFC 3339 string.
func parseTime(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return time.Parse(time.RFC3339Nano, s)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("not a timestamp")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC(), nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	w.Write(b)
}

// EventsHandler serves the recorded events as JSON, newest last:
// GET ?detail-type=X filters by detail-type. It is meant for a local-only
// route such as GET /dev/events; it shows event details, so it must never
// be mounted where anything but the developer can reach it.
func EventsHandler(b *Bus) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		recs := b.Events(r.URL.Query().Get("detail-type"))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"events": recs})
	})
}
