package sfnserver

import (
	"net/http"
	"sync"
	"time"

	"github.com/connmgr/connmgr/local/asl"
)

// Limits throttles operations as Step Functions' API quotas do: a token
// bucket per operation, holding at most burst calls and refilled at rate
// calls a second; a call finding it empty is answered 400
// ThrottlingException "Rate exceeded", which the SDK retries as a
// throttle. In the largest Regions SendTaskSuccess has a bucket of 3,000
// refilled at 500 a second. Operations without a bucket are not limited.
type Limits struct {
	mu        sync.Mutex
	now       func() time.Time
	buckets   map[string]*bucket
	throttled map[string]int
	allowed   map[string]int
}

type bucket struct {
	tokens, burst, rate float64
	at                  time.Time
}

// NewLimits returns Limits measuring time with now (nil: real time).
func NewLimits(now func() time.Time) *Limits {
	if now == nil {
		now = time.Now
	}
	return &Limits{now: now, buckets: map[string]*bucket{}, throttled: map[string]int{}, allowed: map[string]int{}}
}

// Set gives op (e.g. "SendTaskSuccess") a full bucket of burst calls
// refilled at rate a second.
func (l *Limits) Set(op string, burst int, rate float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buckets[op] = &bucket{tokens: float64(burst), burst: float64(burst), rate: rate, at: l.now()}
}

// take spends a token of op's bucket; false: throttled.
func (l *Limits) take(op string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[op]
	if b == nil {
		return true
	}
	now := l.now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	b.at = now
	if b.tokens < 1 {
		l.throttled[op]++
		return false
	}
	b.tokens--
	l.allowed[op]++
	return true
}

// Counts reports op's calls let through and throttled.
func (l *Limits) Counts(op string) (allowed, throttled int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allowed[op], l.throttled[op]
}

// HandlerWith is Handler with limits applied to every operation.
func HandlerWith(engine *asl.Engine, limits *Limits) http.Handler {
	return &handler{e: engine, limits: limits}
}
