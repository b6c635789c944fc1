package connection

import (
	"strings"
	"testing"

	"github.com/connmgr/connmgr/shared/apperr"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" when refused
		code string
	}{
		{"plain", "Payroll API", "Payroll API", ""},
		{"trimmed", "  Payroll\t\n", "Payroll", ""},
		{"trimmed of Unicode spaces", "\u00a0\u3000Payroll\u2003", "Payroll", ""},
		{"NFC: decomposed é composed", "Cafe\u0301", "Caf\u00e9", ""},
		{"NFC: already composed", "Caf\u00e9", "Caf\u00e9", ""},
		{"NFC: Hangul jamo composed", "\u1112\u1161\u11ab", "\ud55c", ""},
		{"non-Latin", "東京 – 給与", "東京 – 給与", ""},
		{"emoji with ZWJ", "Team 👩\u200d💻", "Team 👩\u200d💻", ""},
		{"ZWNJ inside a Persian word", "می\u200cخواهم", "می\u200cخواهم", ""},
		{"one character", "x", "x", ""},
		{"128 characters", strings.Repeat("é", 128), strings.Repeat("é", 128), ""},
		{"128 characters once composed", strings.Repeat("e\u0301", 128), strings.Repeat("é", 128), ""},
		{"129 characters", strings.Repeat("n", 129), "", "too_long"},
		{"128 after trimming", "  " + strings.Repeat("n", 128) + "  ", strings.Repeat("n", 128), ""},
		{"empty", "", "", "required"},
		{"white space only", " \t\u00a0 ", "", "required"},
		{"NUL", "a\x00b", "", "invalid_value"},
		{"line break", "a\nb", "", "invalid_value"},
		{"DEL", "a\x7fb", "", "invalid_value"},
		{"C1 control", "a\u0085b", "", "invalid_value"},
		{"RLO", "invoice\u202egpj.exe", "", "invalid_value"},
		{"LRE", "a\u202ab", "", "invalid_value"},
		{"PDF", "a\u202cb", "", "invalid_value"},
		{"LRO", "a\u202db", "", "invalid_value"},
		{"LRI", "a\u2066b", "", "invalid_value"},
		{"FSI", "a\u2068b", "", "invalid_value"},
		{"PDI", "a\u2069b", "", "invalid_value"},
		{"LRM", "a\u200eb", "", "invalid_value"},
		{"RLM", "a\u200fb", "", "invalid_value"},
		{"ALM", "a\u061cb", "", "invalid_value"},
		{"zero-width space only", "\u200b", "", "invalid_value"},
		{"zero-width joiners only", "\u200c\u200d", "", "invalid_value"},
		{"word joiner and BOM only", "\u2060\ufeff", "", "invalid_value"},
		{"format characters between spaces", " \u200b \u2060 ", "", "invalid_value"},
		{"combining marks only", "\u0301\u0302", "", "invalid_value"},
		{"Hangul filler only", "\u3164", "", "invalid_value"},
		{"blank Braille only", "\u2800\u2800", "", "invalid_value"},
		{"invalid UTF-8", "a\xffb", "", "invalid_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidName(tt.in)
			if tt.code == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ValidName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			e := apperr.As(err)
			if err == nil || e.Kind != apperr.Invalid || e.Code != tt.code || e.Field != "name" {
				t.Fatalf("ValidName(%q) = %q, %v; want 400 %s on name", tt.in, got, err, tt.code)
			}
		})
	}
}
