package gateway

import (
	"sync"
	"time"
)

// bucket is API Gateway's stage throttling: a token bucket holding at most
// burst requests, refilled at rate a second (real time: throttling is
// about load, not the runtime's movable clock). A request that finds it
// empty is answered 429 {"message":"Too Many Requests"}.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	if rate <= 0 || burst <= 0 {
		return nil // no throttling configured
	}
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// take reports whether a request may pass, spending a token if so.
func (b *bucket) take() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
