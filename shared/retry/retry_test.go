package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errBusy = errors.New("busy")

func TestDo(t *testing.T) {
	final := errors.New("final")
	tests := []struct {
		name     string
		attempts int
		outcome  func(attempt int) (bool, error) // what fn answers
		ctx      func() context.Context
		calls    int
		is       []error // the returned error matches each (nil: succeeds)
	}{
		{"succeeds at once", 5, func(int) (bool, error) { return false, nil }, nil, 1, nil},
		{"succeeds on the third", 5, func(a int) (bool, error) { return a < 3, errBusy }, nil, 3, []error{errBusy}},
		{"a final error is not retried", 5, func(int) (bool, error) { return false, final }, nil, 1, []error{final}},
		{"exhausted", 4, func(int) (bool, error) { return true, errBusy }, nil, 4, []error{ErrExhausted, errBusy}},
		{"one attempt", 1, func(int) (bool, error) { return true, errBusy }, nil, 1, []error{ErrExhausted, errBusy}},
		{"cancelled context stops the waits", 5, func(int) (bool, error) { return true, errBusy }, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, 1, []error{ErrInterrupted, context.Canceled, errBusy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			var waits []time.Duration
			p := Policy{Attempts: tt.attempts, Base: 10 * time.Millisecond, Max: 40 * time.Millisecond,
				Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return Sleep(ctx, 0) }}
			calls := 0
			err := p.Do(ctx, func(a int) (bool, error) {
				calls++
				if a != calls {
					t.Fatalf("attempt %d on call %d", a, calls)
				}
				return tt.outcome(a)
			})
			if calls != tt.calls {
				t.Errorf("%d calls, want %d", calls, tt.calls)
			}
			if tt.is == nil && err != nil {
				t.Errorf("err %v", err)
			}
			for _, want := range tt.is {
				if !errors.Is(err, want) {
					t.Errorf("err %v is not %v", err, want)
				}
			}
			if len(waits) != max(0, tt.calls-1) && tt.ctx == nil {
				t.Errorf("%d waits for %d calls", len(waits), calls)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := Policy{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	bounds := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, b := range bounds {
		b *= time.Millisecond
		for range 200 {
			if d := p.Backoff(i + 1); d < 0 || d >= b {
				t.Fatalf("attempt %d: %s outside [0, %s)", i+1, d, b)
			}
		}
	}
	if d := (Policy{}).Backoff(3); d != 0 {
		t.Errorf("zero policy waits %s", d)
	}
}

func TestSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("slept past the deadline")
	}
}

func TestMaxWait(t *testing.T) {
	tests := []struct {
		name     string
		attempts int
		maxWait  time.Duration
		succeed  int // the attempt that succeeds (0: none)
		minCalls int
		maxCalls int // 0: unbounded by calls
		is       error
	}{
		{"the budget ends it", 0, 100 * time.Millisecond, 0, 11, 0, ErrExhausted},
		{"attempts end it first", 3, time.Hour, 0, 3, 3, ErrExhausted},
		{"success inside the budget", 0, time.Hour, 4, 4, 4, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waited time.Duration
			waits := 0
			p := Policy{Attempts: tt.attempts, Base: 5 * time.Millisecond, Max: 10 * time.Millisecond, MaxWait: tt.maxWait,
				Sleep: func(ctx context.Context, d time.Duration) error { waited += d; waits++; return nil }}
			calls := 0
			err := p.Do(context.Background(), func(a int) (bool, error) {
				calls++
				if a == tt.succeed {
					return false, nil
				}
				return true, errBusy
			})
			if tt.is == nil && err != nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err %v, want %v", err, tt.is)
			}
			if calls < tt.minCalls || tt.maxCalls > 0 && calls > tt.maxCalls {
				t.Errorf("%d calls, want %d..%d", calls, tt.minCalls, tt.maxCalls)
			}
			if waited > tt.maxWait {
				t.Errorf("waited %s, more than %s", waited, tt.maxWait)
			}
			if tt.is == ErrExhausted && tt.attempts == 0 && waited != tt.maxWait {
				t.Errorf("gave up after %s of waits, want all of %s (the last wait cut to fit)", waited, tt.maxWait)
			}
			if waits != calls-1 {
				t.Errorf("%d waits for %d calls", waits, calls)
			}
		})
	}
}
