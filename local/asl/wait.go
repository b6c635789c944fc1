package asl

import (
	"context"
	"time"
)

// park is an execution waiting with nothing to do until one of wakes is
// closed or the clock reaches deadline.
type park struct {
	deadline time.Time
	wakes    []<-chan struct{}
}

const (
	waitDeadline = -1 // the clock reached the deadline
	waitStopped  = -2 // the execution ended (stopped, timed out, engine closed)
)

// wait blocks until wakes[i] is closed (returns i; at most two), the clock
// reaches deadline (zero: none) or the execution ends. The execution's own
// TimeoutSeconds is watched too: when it passes, wait records TIMED_OUT.
// The clock is read on real timers and whenever it is advanced, so an
// Advance past a deadline wakes the waiter at once. parked tells WaitIdle
// that nothing runs on this execution's behalf meanwhile.
func (r *run) wait(deadline time.Time, parked bool, wakes ...<-chan struct{}) int {
	var w0, w1 <-chan struct{}
	if len(wakes) > 0 {
		w0 = wakes[0]
	}
	if len(wakes) > 1 {
		w1 = wakes[1]
	}
	effective := deadline
	if !r.deadline.IsZero() && (effective.IsZero() || r.deadline.Before(effective)) {
		effective = r.deadline
	}
	if parked {
		p := &park{deadline: effective, wakes: []<-chan struct{}{r.ctx.Done()}}
		for _, w := range []<-chan struct{}{w0, w1} {
			if w != nil {
				p.wakes = append(p.wakes, w)
			}
		}
		r.e.parkAdd(p)
		defer r.e.parkRemove(p)
	}
	for {
		select {
		case <-w0:
			return 0
		case <-w1:
			return 1
		default:
		}
		if r.ctx.Err() != nil {
			return waitStopped
		}
		changed := r.e.clock.Changed()
		now := r.e.clock.Now()
		if !r.deadline.IsZero() && !now.Before(r.deadline) {
			r.finish(StatusTimedOut, ErrorTimeout, "The execution exceeded its TimeoutSeconds.", "")
			return waitStopped
		}
		if !deadline.IsZero() && !now.Before(deadline) {
			return waitDeadline
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if !effective.IsZero() {
			timer = time.NewTimer(effective.Sub(now))
			fire = timer.C
		}
		select {
		case <-w0:
		case <-w1:
		case <-r.ctx.Done():
		case <-changed:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// sleep parks the execution for d on the clock (a Retry interval).
func (r *run) sleep(d time.Duration) error {
	if r.wait(r.e.clock.Now().Add(d), true) != waitDeadline {
		return errStopped
	}
	return nil
}

// checkDeadline ends the execution when its TimeoutSeconds has passed.
func (r *run) checkDeadline() error {
	if r.ctx.Err() != nil {
		return errStopped
	}
	if !r.deadline.IsZero() && !r.e.clock.Now().Before(r.deadline) {
		r.finish(StatusTimedOut, ErrorTimeout, "The execution exceeded its TimeoutSeconds.", "")
		return errStopped
	}
	return nil
}

func (e *Engine) parkAdd(p *park) {
	e.mu.Lock()
	e.parks[p] = struct{}{}
	e.busy--
	e.notifyLocked()
	e.mu.Unlock()
}

func (e *Engine) parkRemove(p *park) {
	e.mu.Lock()
	delete(e.parks, p)
	e.busy++
	e.notifyLocked()
	e.mu.Unlock()
}

// idleLocked: nothing runs, and every parked execution waits for something
// that has not happened yet (no wake channel closed, deadline ahead).
func (e *Engine) idleLocked(now time.Time) bool {
	if e.busy > 0 {
		return false
	}
	for p := range e.parks {
		if !p.deadline.IsZero() && !now.Before(p.deadline) {
			return false
		}
		for _, w := range p.wakes {
			select {
			case <-w:
				return false
			default:
			}
		}
	}
	return true
}

// WaitIdle returns once the engine is quiescent: every execution has ended
// or waits for a task token or a deadline that is still ahead on the clock,
// and no Lambda invocation is in flight. Tests call it after starting an
// execution, answering a token or advancing the clock.
func (e *Engine) WaitIdle(ctx context.Context) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		now := e.clock.Now()
		e.mu.Lock()
		idle := e.idleLocked(now)
		changed := e.changed
		e.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick.C:
		}
	}
}
