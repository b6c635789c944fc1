package eventbus

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/sam"
)

// Defaults and limits.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "111122223333"
	DefaultBus       = sam.DefaultEventBus
	// DefaultMaxRequestBytes is the PutEvents size limit this bus enforces,
	// counted as EventBridge counts it (Time 14 bytes, Source, DetailType,
	// Detail and each Resource by their UTF-8 length). AWS raised its
	// limit from 256 KB to 1 MB in January 2026; the local bus keeps the
	// stricter one unless Options.MaxRequestBytes says otherwise.
	DefaultMaxRequestBytes = 256 * 1024
	// MaxEntries is the most entries one PutEvents request may carry.
	MaxEntries = 10
	// DefaultLogSize is how many events Events keeps.
	DefaultLogSize = 1000

	ScheduledSource     = "aws.events"
	ScheduledDetailType = "Scheduled Event"
)

// Invoker delivers an event to a function with Lambda's Event invocation
// type: it queues the invocation and returns; retries after a function
// error are its business. *lambdaserver.Registry is one.
type Invoker interface {
	InvokeAsync(ctx context.Context, function string, payload []byte) (requestID string, err error)
}

// Options configure a Bus.
type Options struct {
	// Rules route events to functions, e.g. from Template.EventRules.
	Rules []sam.EventRule
	// Invoker runs the target functions (required). When it also has a
	// Has(name string) bool method, New checks every target is registered.
	Invoker Invoker
	// Clock stamps events, and drives the scheduled rules (nil: real time).
	Clock *clock.Clock
	// Region and AccountID go into events and ARNs.
	Region, AccountID string
	// Logger receives a line per delivery problem and per scheduled
	// firing; never event details (nil: discard).
	Logger *slog.Logger
	// LogSize bounds the events Events returns (DefaultLogSize).
	LogSize int
	// MaxRequestBytes is the PutEvents size limit (DefaultMaxRequestBytes).
	MaxRequestBytes int
}

// Entry is one PutEvents request entry.
type Entry struct {
	Source       string
	DetailType   string
	Detail       string // a JSON object
	EventBusName string // a name or an event-bus ARN; "" is the default bus
	Time         time.Time
	Resources    []string
	TraceHeader  string
}

// Result is one PutEvents result entry: EventID, or ErrorCode and
// ErrorMessage.
type Result struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

// Record is an event the bus accepted or a schedule fired, as Events
// returns it.
type Record struct {
	EventBusName string                  `json:"eventBusName"`
	Event        events.EventBridgeEvent `json:"event"`
	// Rules are the names of the rules that matched; Deliveries the
	// functions the event was queued for.
	Rules      []string `json:"rules"`
	Deliveries []string `json:"deliveries"`
}

// ValidationError is a request-level PutEvents failure
// (ValidationException).
type ValidationError struct{ Message string }

func (e *ValidationError) Error() string { return "ValidationException: " + e.Message }

// Bus routes events to the rules' target functions and fires scheduled
// rules. Its methods are safe for concurrent use.
type Bus struct {
	invoker  Invoker
	clock    *clock.Clock
	region   string
	account  string
	log      *slog.Logger
	logSize  int
	maxBytes int

	rules     []*rule // pattern rules
	schedules []*scheduled

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	records []Record
	total   int // events recorded since New, beyond the log's bound
	// firedUpTo: every schedule due at or before it has fired;
	// caughtUp is closed and replaced when it moves.
	firedUpTo time.Time
	caughtUp  chan struct{}
}

type rule struct {
	name    string
	bus     string
	pattern *Pattern
	targets []target
}

type target struct {
	id        string
	function  string
	input     json.RawMessage // constant input; nil passes the event
	inputPath []string        // nil: the whole event
}

type scheduled struct {
	rule     *rule
	schedule Schedule
	next     time.Time // zero when the schedule has no more firings
}

// New checks and compiles the rules, and starts firing the enabled
// scheduled ones on the clock. Close stops it.
func New(opts Options) (*Bus, error) {
	if opts.Invoker == nil {
		return nil, errors.New("eventbus: an Invoker is required")
	}
	b := &Bus{
		invoker: opts.Invoker, clock: opts.Clock, region: opts.Region, account: opts.AccountID,
		log: opts.Logger, logSize: opts.LogSize, maxBytes: opts.MaxRequestBytes, caughtUp: make(chan struct{}),
	}
	if b.clock == nil {
		b.clock = clock.New()
	}
	if b.region == "" {
		b.region = DefaultRegion
	}
	if b.account == "" {
		b.account = DefaultAccountID
	}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b.logSize <= 0 {
		b.logSize = DefaultLogSize
	}
	if b.maxBytes <= 0 {
		b.maxBytes = DefaultMaxRequestBytes
	}
	has, canCheck := opts.Invoker.(interface{ Has(string) bool })
	now := b.clock.Now()
	for _, sr := range opts.Rules {
		r, err := compileRule(sr)
		if err != nil {
			return nil, err
		}
		if canCheck {
			for _, t := range r.targets {
				if !has.Has(t.function) {
					return nil, fmt.Errorf("eventbus: rule %s targets function %s, which is not registered", r.name, t.function)
				}
			}
		}
		if !sr.Enabled {
			continue
		}
		if sr.Schedule == "" {
			b.rules = append(b.rules, r)
			continue
		}
		s, err := ParseSchedule(sr.Schedule)
		if err != nil {
			return nil, fmt.Errorf("eventbus: rule %s: %w", sr.Name, err)
		}
		s = s.From(now)
		sc := &scheduled{rule: r, schedule: s}
		sc.next, _ = s.Next(now)
		b.schedules = append(b.schedules, sc)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if len(b.schedules) > 0 {
		b.wg.Add(1)
		go b.runSchedules()
	}
	return b, nil
}

func compileRule(sr sam.EventRule) (*rule, error) {
	r := &rule{name: sr.Name, bus: sam.BusName(sr.EventBus)}
	fail := func(format string, args ...any) (*rule, error) {
		return nil, fmt.Errorf("eventbus: rule %s: %s", sr.Name, fmt.Sprintf(format, args...))
	}
	if (sr.Pattern == nil) == (sr.Schedule == "") {
		return fail("needs exactly one of an event pattern and a schedule")
	}
	if sr.Pattern != nil {
		p, err := CompilePattern(sr.Pattern)
		if err != nil {
			return fail("%v", err)
		}
		r.pattern = p
	}
	if len(sr.Targets) == 0 {
		return fail("has no targets")
	}
	for _, st := range sr.Targets {
		if st.Function == "" {
			return fail("target %s (%s) is not a function of the template; the local bus delivers to functions only", st.ID, st.Arn)
		}
		if st.InputTransformer != nil {
			return fail("target %s: InputTransformer is not supported by the local bus", st.ID)
		}
		if st.Input != "" && st.InputPath != "" {
			return fail("target %s: Input and InputPath are mutually exclusive", st.ID)
		}
		t := target{id: st.ID, function: st.Function}
		if st.Input != "" {
			if !json.Valid([]byte(st.Input)) {
				return fail("target %s: Input is not valid JSON", st.ID)
			}
			t.input = json.RawMessage(st.Input)
		}
		if st.InputPath != "" {
			path, err := parseInputPath(st.InputPath)
			if err != nil {
				return fail("target %s: %v", st.ID, err)
			}
			t.inputPath = path
		}
		r.targets = append(r.targets, t)
	}
	return r, nil
}

// parseInputPath accepts "$" and "$.a.b" (keys may hold any character but
// "." and "[").
func parseInputPath(p string) ([]string, error) {
	if p == "$" {
		return []string{}, nil
	}
	rest, ok := strings.CutPrefix(p, "$.")
	if !ok || rest == "" || strings.ContainsAny(rest, "[]*") {
		return nil, fmt.Errorf("InputPath %q: the local bus supports $ and $.a.b only", p)
	}
	keys := strings.Split(rest, ".")
	if slices.Contains(keys, "") {
		return nil, fmt.Errorf("InputPath %q has an empty key", p)
	}
	return keys, nil
}

// Close stops the schedules and waits for the scheduler to return.
// Deliveries already handed to the Invoker are the Invoker's.
func (b *Bus) Close() {
	b.cancel()
	b.wg.Wait()
}

// PutEvents validates and accepts entries as EventBridge does: a request
// of no entries, more than MaxEntries or over the size limit fails as a
// whole with *ValidationError; otherwise each entry gets an EventID or an
// ErrorCode (InvalidArgument for a missing Source, DetailType or Detail,
// MalformedDetail for a Detail that is not a JSON object). Each accepted
// event is recorded and queued for the targets of every enabled rule on
// its bus whose pattern matches. A bus no rule listens on accepts events
// and drops them, as AWS does for a bus that does not exist.
func (b *Bus) PutEvents(ctx context.Context, entries []Entry) ([]Result, error) {
	if len(entries) == 0 {
		return nil, &ValidationError{"1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1"}
	}
	if len(entries) > MaxEntries {
		return nil, &ValidationError{fmt.Sprintf("1 validation error detected: Value '[...%d entries]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to %d", len(entries), MaxEntries)}
	}
	if size := RequestSize(entries); size > b.maxBytes {
		return nil, &ValidationError{"Total size of the entries in the request is over the limit."}
	}
	out := make([]Result, len(entries))
	for i, e := range entries {
		out[i] = b.put(ctx, e)
	}
	return out, nil
}

// RequestSize is the size of entries as EventBridge counts it against its
// limit.
func RequestSize(entries []Entry) int {
	n := 0
	for _, e := range entries {
		if !e.Time.IsZero() {
			n += 14
		}
		n += len(e.Source) + len(e.DetailType) + len(e.Detail)
		for _, r := range e.Resources {
			n += len(r)
		}
	}
	return n
}

func (b *Bus) put(ctx context.Context, e Entry) Result {
	missing := func(f string) Result {
		return Result{ErrorCode: "InvalidArgument", ErrorMessage: fmt.Sprintf("Parameter %s is not valid. Reason: %s is a required argument.", f, f)}
	}
	switch {
	case e.Source == "":
		return missing("Source")
	case e.DetailType == "":
		return missing("DetailType")
	case e.Detail == "":
		return missing("Detail")
	}
	var detail map[string]any
	if !utf8.ValidString(e.Detail) || json.Unmarshal([]byte(e.Detail), &detail) != nil || detail == nil {
		return Result{ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed."}
	}
	t := e.Time
	if t.IsZero() {
		t = b.clock.Now()
	}
	ev := events.EventBridgeEvent{
		Version: "0", ID: newUUID(), DetailType: e.DetailType, Source: e.Source, AccountID: b.account,
		Time: t.UTC().Truncate(time.Second), Region: b.region, Resources: nonNil(e.Resources),
		Detail: json.RawMessage(e.Detail),
	}
	bus := sam.BusName(e.EventBusName)
	rec := Record{EventBusName: bus, Event: ev, Rules: []string{}, Deliveries: []string{}}
	envelope, err := json.Marshal(ev)
	if err != nil {
		return Result{ErrorCode: "InternalFailure", ErrorMessage: err.Error()}
	}
	var generic map[string]any
	if err := json.Unmarshal(envelope, &generic); err != nil {
		return Result{ErrorCode: "InternalFailure", ErrorMessage: err.Error()}
	}
	for _, r := range b.rules {
		if r.bus != bus || !r.pattern.Match(generic) {
			continue
		}
		rec.Rules = append(rec.Rules, r.name)
		rec.Deliveries = append(rec.Deliveries, b.deliver(ctx, r, ev.ID, envelope, generic)...)
	}
	if len(rec.Rules) == 0 {
		b.log.Debug("eventbus: event matched no rule", slog.String("bus", bus), slog.String("eventId", ev.ID),
			slog.String("source", ev.Source), slog.String("detailType", ev.DetailType))
	}
	b.record(rec)
	return Result{EventID: ev.ID}
}

// deliver queues the event for the rule's targets and returns the
// functions it was queued for.
func (b *Bus) deliver(ctx context.Context, r *rule, eventID string, envelope []byte, generic map[string]any) []string {
	var out []string
	for _, t := range r.targets {
		payload := envelope
		switch {
		case t.input != nil:
			payload = t.input
		case t.inputPath != nil:
			v, ok := lookupPath(generic, t.inputPath)
			if !ok {
				b.log.Warn("eventbus: InputPath matches nothing in the event; not delivered",
					slog.String("rule", r.name), slog.String("target", t.id), slog.String("eventId", eventID))
				continue
			}
			payload, _ = json.Marshal(v)
		}
		// Delivery outlives the request that put the event.
		if _, err := b.invoker.InvokeAsync(context.WithoutCancel(ctx), t.function, payload); err != nil {
			b.log.Warn("eventbus: delivery failed; event dropped for this target", slog.String("rule", r.name),
				slog.String("function", t.function), slog.String("eventId", eventID), slog.String("error", err.Error()))
			continue
		}
		out = append(out, t.function)
	}
	return out
}

func lookupPath(v any, keys []string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func (b *Bus) record(rec Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.records = append(b.records, rec)
	b.total++
	if over := len(b.records) - b.logSize; over > 0 {
		b.records = slices.Delete(b.records, 0, over)
	}
}

// Events returns the recorded events, oldest first and newest last, only
// those of the given detail-type unless it is "". At most Options.LogSize
// are kept.
func (b *Bus) Events(detailType string) []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Record, 0, len(b.records))
	for _, r := range b.records {
		if detailType == "" || r.Event.DetailType == detailType {
			out = append(out, r)
		}
	}
	return out
}

// Total is how many events the bus has recorded since it started, those
// Events no longer keeps included: the records after a moment are the
// last Total()-then of Events("").
func (b *Bus) Total() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// WaitSchedules returns once every scheduled rule due at or before t has
// fired (its event recorded and queued for its targets), or ctx ends.
// The local runtime's POST /dev/clock waits on it after moving the clock.
func (b *Bus) WaitSchedules(ctx context.Context, t time.Time) error {
	if len(b.schedules) == 0 {
		return nil
	}
	for {
		b.mu.Lock()
		done, moved := !b.firedUpTo.Before(t), b.caughtUp
		b.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.ctx.Done():
			return errors.New("eventbus: closed")
		}
	}
}

// runSchedules fires scheduled rules when the clock reaches them, woken by
// real timers and by Clock.Advance.
func (b *Bus) runSchedules() {
	defer b.wg.Done()
	changed := b.clock.Changed()
	for {
		now := b.clock.Now()
		var earliest time.Time
		for _, s := range b.schedules {
			if s.next.IsZero() {
				continue
			}
			if !s.next.After(now) {
				b.fire(s, now)
			}
			if !s.next.IsZero() && (earliest.IsZero() || s.next.Before(earliest)) {
				earliest = s.next
			}
		}
		b.mu.Lock()
		b.firedUpTo = now
		close(b.caughtUp)
		b.caughtUp = make(chan struct{})
		b.mu.Unlock()
		var timer *time.Timer
		var wake <-chan time.Time
		if !earliest.IsZero() {
			timer = time.NewTimer(earliest.Sub(now))
			wake = timer.C
		}
		select {
		case <-b.ctx.Done():
		case <-changed:
			changed = b.clock.Changed()
		case <-wake:
		}
		if timer != nil {
			timer.Stop()
		}
		if b.ctx.Err() != nil {
			return
		}
	}
}

// fire delivers one scheduled event for s, due at or before now. When the
// clock jumped over several firings it fires once, stamped with the last
// of them: EventBridge does not backfill missed schedules.
func (b *Bus) fire(s *scheduled, now time.Time) {
	at := s.next
	if last, ok := s.schedule.Latest(s.next, now); ok {
		at = last
	}
	s.next, _ = s.schedule.Next(now)
	ev := events.EventBridgeEvent{
		Version: "0", ID: newUUID(), DetailType: ScheduledDetailType, Source: ScheduledSource, AccountID: b.account,
		Time: at.UTC().Truncate(time.Second), Region: b.region,
		Resources: []string{fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", b.region, b.account, s.rule.name)},
		Detail:    json.RawMessage(`{}`),
	}
	envelope, _ := json.Marshal(ev)
	var generic map[string]any
	json.Unmarshal(envelope, &generic)
	b.log.Info("eventbus: schedule fired", slog.String("rule", s.rule.name), slog.String("schedule", s.schedule.String()),
		slog.Time("at", ev.Time), slog.String("eventId", ev.ID))
	rec := Record{EventBusName: DefaultBus, Event: ev, Rules: []string{s.rule.name}}
	rec.Deliveries = nonNil(b.deliver(b.ctx, s.rule, ev.ID, envelope, generic))
	b.record(rec)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// newUUID is a random (version 4) UUID, the form of event ids.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
