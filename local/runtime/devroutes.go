package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/connmgr/connmgr/shared/events"
)

// Local-only routes, never in template.yaml.
const (
	// ClockPath: GET reads the clock; POST {"advance": "240h"} moves it
	// forward for the whole runtime (engine, schedules, expiry) and answers
	// once what that set off has settled, with the events it put on the bus.
	ClockPath = "/dev/clock"
	// EventsPath lists the events put on the local bus (?detail-type=).
	EventsPath = "/dev/events"
	// ServicesPath lists the local services a connection can point at:
	// the demo target and the OAuth provider.
	ServicesPath = "/dev/services"
)

// SettleTimeout bounds how long POST /dev/clock waits for what it fired.
const SettleTimeout = 30 * time.Second

// Fired is one event put on the bus while the clock moved and the runtime
// settled: the schedule's own (source aws.events) or the functions'.
type Fired struct {
	EventBusName string          `json:"eventBusName"`
	Source       string          `json:"source"`
	DetailType   string          `json:"detailType"`
	Time         time.Time       `json:"time"`
	Resources    []string        `json:"resources,omitempty"`
	Detail       json.RawMessage `json:"detail"`
	// Deliveries are the functions the event was queued for.
	Deliveries []string `json:"deliveries"`
}

// Settle waits until everything running in the runtime has finished what
// it can without a new request or another move of the clock: every
// schedule due by upTo (the time Clock.Advance returned) has fired, no asynchronous invocation (a rule's
// target) is queued, running or waiting to retry, and every execution has
// ended or waits for a task token or a deadline still ahead. Work that
// puts more in motion (an event that resumes runs) is waited for in turn.
func (rt *Runtime) Settle(ctx context.Context, upTo time.Time) error {
	for {
		seen := rt.Bus.Total()
		if err := rt.Bus.WaitSchedules(ctx, upTo); err != nil {
			return err
		}
		if err := rt.Lambda.WaitIdle(ctx); err != nil {
			return err
		}
		if err := rt.Engine.WaitIdle(ctx); err != nil {
			return err
		}
		// The engine's tasks may have put events on the bus, queuing
		// their targets: then go round again.
		if rt.Bus.Total() == seen && rt.Lambda.Idle() {
			return nil
		}
	}
}

// fired lists the events recorded after the bus's total was since.
func (rt *Runtime) fired(since int) []Fired {
	recs := rt.Bus.Events("")
	n := min(rt.Bus.Total()-since, len(recs))
	out := make([]Fired, 0, n)
	for _, r := range recs[len(recs)-n:] {
		ev := r.Event
		f := Fired{EventBusName: r.EventBusName, Source: ev.Source, DetailType: ev.DetailType, Time: ev.Time, Detail: ev.Detail, Deliveries: r.Deliveries}
		if ev.Source == events.ScheduleSource {
			f.Resources = ev.Resources
		}
		out = append(out, f)
	}
	return out
}

func (rt *Runtime) serveClock(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	out := map[string]any{}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		// Wait is on unless the body says "wait": false.
		in := struct {
			Advance string `json:"advance"`
			Wait    *bool  `json:"wait"`
		}{}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		d, err := time.Duration(0), dec.Decode(&in)
		if err == nil {
			d, err = time.ParseDuration(in.Advance)
		}
		if err != nil || d <= 0 {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "invalid_advance",
				"message": `send {"advance": "<positive Go duration such as 240h>"} and optionally "wait": false`}})
			return
		}
		since := rt.Bus.Total()
		upTo := rt.Clock.Advance(d)
		out["advanced"] = d.String()
		if in.Wait == nil || *in.Wait {
			ctx, cancel := context.WithTimeout(r.Context(), SettleTimeout)
			err := rt.Settle(ctx, upTo)
			cancel()
			out["settled"] = err == nil
			if errors.Is(err, context.DeadlineExceeded) {
				out["message"] = "still busy after " + SettleTimeout.String() + ": poll GET " + EventsPath
			}
			out["fired"] = rt.fired(since)
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	out["now"] = rt.Clock.Now().UTC()
	json.NewEncoder(w).Encode(out)
}

// Services are the local services a connection can point at, as GET
// /dev/services lists them.
type Services struct {
	// DemoURL is the demo target (local/demotarget): its API under /api,
	// its credentials set with PUT /admin/credentials.
	DemoURL string `json:"demoUrl"`
	// OAuthProviderURL is the local OAuth 2 provider, every tenant's
	// oauth2-generic client; OAuthResourceURL its protected resource,
	// which answers only a live access token it issued.
	OAuthProviderURL string `json:"oauthProviderUrl"`
	OAuthResourceURL string `json:"oauthResourceUrl"`
}

// Services lists the local services.
func (rt *Runtime) Services() Services {
	return Services{DemoURL: rt.DemoURL, OAuthProviderURL: rt.OAuth.Base(), OAuthResourceURL: rt.OAuth.ResourceURL()}
}

func (rt *Runtime) serveServices(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	json.NewEncoder(w).Encode(rt.Services())
}
