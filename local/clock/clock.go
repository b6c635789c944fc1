// Package clock is the one controllable clock the local runtime and tests
// read: the engine, schedules, expiry logic and token checks all take Now
// from it, so moving it forward moves the whole system.
package clock

import (
	"sync"
	"time"
)

// Clock is the real time plus an offset that only grows.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
	base   func() time.Time
	subs   []chan struct{}
}

// New returns a clock reading real time.
func New() *Clock { return &Clock{base: time.Now} }

// Fixed returns a clock standing still at t until advanced.
func Fixed(t time.Time) *Clock { return &Clock{base: func() time.Time { return t }} }

// Now is the current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base().Add(c.offset)
}

// Base is the time as if the clock had never been advanced: real time for
// New, the fixed time for Fixed. Local identity tokens are minted and
// checked on it, so moving the clock for the system does not age the
// developer's session.
func (c *Clock) Base() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base()
}

// Advance moves the clock forward by d and wakes everyone waiting on Changed.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	if d > 0 {
		c.offset += d
	}
	subs := c.subs
	c.subs = nil
	now := c.base().Add(c.offset)
	c.mu.Unlock()
	for _, ch := range subs {
		close(ch)
	}
	return now
}

// Changed returns a channel closed at the next Advance.
func (c *Clock) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.subs = append(c.subs, ch)
	return ch
}
