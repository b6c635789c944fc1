// Package retry is the project's retry policy: a bounded number of
// attempts with jittered exponential backoff between them, waiting only as
// long as the context allows.
//
// It never retries on its own judgement (the caller's function says which
// outcomes are worth another attempt) and never sleeps past a cancelled or
// expired context.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy says how often and how patiently to retry.
type Policy struct {
	// Attempts is the most calls made, the first included (at least 1);
	// 0 with MaxWait set: as many as MaxWait allows (Base must then be
	// positive).
	Attempts int
	// Base bounds the first wait; each later bound doubles, up to Max.
	// Each wait is drawn uniformly below its bound ("full jitter"), so
	// contending callers spread out instead of colliding again.
	Base, Max time.Duration
	// MaxWait, if positive, bounds the sum of the waits: a wait is cut to
	// what is left of it, and once it is spent Do stops (ErrExhausted)
	// instead of waiting again. It counts the waits asked of Sleep, so an
	// injected Sleep sees the same bound as a real one.
	MaxWait time.Duration
	// Sleep waits d or until ctx is done, whichever is first (default: a
	// timer). Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Do's verdicts when fn still wanted another attempt, each wrapped with
// fn's last error: every attempt asked for another (ErrExhausted), or the
// context ended while waiting for the next (ErrInterrupted, wrapping the
// context's error too).
var (
	ErrExhausted   = errors.New("retry: attempts exhausted")
	ErrInterrupted = errors.New("retry: context done while waiting")
)

// Do calls fn with attempt numbers from 1 until it returns again=false
// (its error, nil on success, is returned as is), the attempts or MaxWait
// are spent (ErrExhausted) or ctx is done while waiting (ErrInterrupted).
func (p Policy) Do(ctx context.Context, fn func(attempt int) (again bool, err error)) error {
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		again, err := fn(attempt)
		if !again {
			return err
		}
		if (p.Attempts > 0 || p.MaxWait <= 0) && attempt >= p.Attempts {
			return fmt.Errorf("%w after %d attempts: %w", ErrExhausted, attempt, err)
		}
		d := p.Backoff(attempt)
		if p.MaxWait > 0 {
			if waited >= p.MaxWait {
				return fmt.Errorf("%w after %d attempts and %s of waits: %w", ErrExhausted, attempt, waited, err)
			}
			d = min(d, p.MaxWait-waited)
		}
		if werr := p.sleep(ctx, d); werr != nil {
			return fmt.Errorf("%w (%w): %w", ErrInterrupted, werr, err)
		}
		waited += d
	}
}

// Backoff is the wait after the given attempt: uniform in [0, bound)
// where bound is Base doubled attempt-1 times, at most Max.
func (p Policy) Backoff(attempt int) time.Duration {
	bound := p.Base
	for i := 1; i < attempt && bound < p.Max; i++ {
		bound *= 2
	}
	if p.Max > 0 && bound > p.Max {
		bound = p.Max
	}
	if bound <= 0 {
		return 0
	}
	return rand.N(bound)
}

func (p Policy) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep waits d or until ctx is done, returning ctx's error in that case.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
