package connection

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/connmgr/connmgr/shared/apperr"
)

// ValidName checks a connection name and returns the form stored and
// compared: NFC-normalised and trimmed of white space, 1 to MaxNameLength
// characters (code points), with at least one visible character. It
// refuses control characters and the bidirectional formatting characters
// that make a name display differently from what it is (overrides,
// embeddings, isolates and direction marks). Other format characters
// (zero-width joiners and spaces, needed by some scripts and emoji) are
// allowed beside visible ones, never alone.
func ValidName(n string) (string, error) {
	if !utf8.ValidString(n) {
		return "", apperr.InvalidField("name", "invalid_value", "name must be UTF-8 text")
	}
	n = strings.TrimSpace(norm.NFC.String(n))
	switch {
	case n == "":
		return "", apperr.InvalidField("name", "required", "name is required")
	case utf8.RuneCountInString(n) > MaxNameLength:
		return "", apperr.InvalidField("name", "too_long", "name is at most %d characters", MaxNameLength)
	case strings.ContainsFunc(n, unicode.IsControl):
		return "", apperr.InvalidField("name", "invalid_value", "name may not contain control characters")
	case strings.ContainsFunc(n, isBidiControl):
		return "", apperr.InvalidField("name", "invalid_value", "name may not contain bidirectional override, embedding, isolate or mark characters")
	case !strings.ContainsFunc(n, isVisible):
		return "", apperr.InvalidField("name", "invalid_value", "name needs at least one visible character")
	}
	return n, nil
}

// isBidiControl reports the characters that reorder or redirect text:
// LRE, RLE, PDF, LRO, RLO (U+202A–U+202E), LRI, RLI, FSI, PDI
// (U+2066–U+2069), LRM, RLM (U+200E, U+200F) and ALM (U+061C).
func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}

// blankGraphic are letters and symbols that render as nothing: Hangul
// fillers and the blank Braille pattern.
var blankGraphic = []rune{0x115f, 0x1160, 0x3164, 0xffa0, 0x2800}

// isVisible reports a character that shows: a letter, digit, punctuation
// or symbol. Spaces, marks alone, and format characters (U+200B–U+200D,
// U+2060, U+FEFF, ...) do not.
func isVisible(r rune) bool {
	for _, b := range blankGraphic {
		if r == b {
			return false
		}
	}
	return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
}
