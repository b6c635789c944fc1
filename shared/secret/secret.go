// Package secret holds secret strings (passwords, tokens, client secrets)
// so that they cannot be printed by accident: not by fmt with any verb,
// not by log/slog, not by encoding/json, and not by reflection over a
// struct that contains one, however deeply. The value lives in a closure,
// which fmt and reflection-based printers show only as an address.
//
// Reveal is the one way to the value; call it where the secret is sent to
// the system it belongs to, never to build a log line or an error.
package secret

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what a set secret prints as.
const Redacted = "[REDACTED]"

// String is a secret string. The zero value is empty.
type String struct {
	v func() string
}

// New wraps s.
func New(s string) String {
	if s == "" {
		return String{}
	}
	return String{v: func() string { return s }}
}

// Reveal returns the secret.
func (s String) Reveal() string {
	if s.v == nil {
		return ""
	}
	return s.v()
}

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.v == nil }

func (s String) show() string {
	if s.v == nil {
		return ""
	}
	return Redacted
}

// String redacts.
func (s String) String() string { return s.show() }

// GoString redacts.
func (s String) GoString() string { return fmt.Sprintf("secret.String(%q)", s.show()) }

// Format redacts for every verb.
func (s String) Format(f fmt.State, _ rune) { io.WriteString(f, s.show()) }

// LogValue redacts.
func (s String) LogValue() slog.Value { return slog.StringValue(s.show()) }

// MarshalJSON redacts.
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(s.show()) }

// UnmarshalJSON reads a JSON string (requests carry secrets in).
func (s *String) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret: want a JSON string")
	}
	*s = New(v)
	return nil
}
