package runtime

import (
	"encoding/json"
	"net/http"
	"time"
)

// Local-only routes, never in template.yaml.
const (
	// ClockPath: GET reads the clock; POST {"advance": "240h"} moves it
	// forward for the whole runtime (engine, schedules, expiry, tokens).
	ClockPath = "/dev/clock"
	// EventsPath lists the events put on the local bus (?detail-type=).
	EventsPath = "/dev/events"
)

func (rt *Runtime) serveClock(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var in struct {
			Advance string `json:"advance"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		d, err := time.Duration(0), dec.Decode(&in)
		if err == nil {
			d, err = time.ParseDuration(in.Advance)
		}
		if err != nil || d <= 0 {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "invalid_advance", "message": `send {"advance": "<positive Go duration such as 240h>"}`}})
			return
		}
		rt.Clock.Advance(d)
	default:
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"now": rt.Clock.Now().UTC()})
}
