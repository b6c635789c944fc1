package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/shared/secret"
)

// verbs are every fmt verb, valid or not for a string: a bad verb makes fmt
// print the operand's value with %v, which is how naive redaction leaks.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%p", "%e", "%U", "%c", "%b", "%o", "%w", "%T"}

func TestNeverPrinted(t *testing.T) {
	const canary = "CANARY-4d1c"
	s := secret.New(canary)
	type inner struct{ s secret.String }
	type holder struct {
		Exported secret.String
		hidden   secret.String
		ptr      *secret.String
		nested   inner
		list     []secret.String
		m        map[string]secret.String
		iface    any
	}
	h := holder{s, s, &s, inner{s}, []secret.String{s}, map[string]secret.String{"k": s}, s}
	var out bytes.Buffer
	for _, v := range []any{s, &s, h, &h, []any{h}, map[string]any{"h": h}} {
		for _, verb := range verbs {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
	}
	for _, hnd := range []slog.Handler{slog.NewJSONHandler(&out, nil), slog.NewTextHandler(&out, nil)} {
		slog.New(hnd).Info("m", "s", s, "h", h, "any", any(h))
	}
	if strings.Contains(out.String(), canary) {
		t.Fatalf("canary printed:\n%s", out.String())
	}
	t.Logf("%d verbs × 6 shapes, JSON and 2 slog handlers: %d bytes, 0 canaries", len(verbs), out.Len())
	if s.Reveal() != canary || s.IsZero() || !secret.New("").IsZero() || secret.New("").String() != "" {
		t.Fatal("Reveal / IsZero")
	}
	var in struct{ P secret.String }
	if err := json.Unmarshal([]byte(`{"P":"`+canary+`"}`), &in); err != nil || in.P.Reveal() != canary {
		t.Fatalf("unmarshal: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"P":12}`), &in); err == nil || strings.Contains(err.Error(), "12") {
		t.Fatalf("bad JSON: %v", err)
	}
}
