package httpaction

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/connmgr/connmgr/shared/secret"
)

// What the target answered is kept with a run only when no form of any
// credential value is left in it. Each part (the body, each kept header) is
// scrubbed, every form of every value replaced by marker, and then checked;
// a part that still holds a form (a value too short to find only where it
// was echoed, a value the marker itself contains, an encoding scrubbing
// missed) is withheld whole and named in Result.Withheld. Only the check is
// relied on: scrubbing is what lets the parts with long values be kept.

// marker replaces a credential value in what is kept.
const marker = secret.Redacted

// scrubber holds the forms of one request's credential values.
type scrubber struct {
	forms    []string // longest first
	replacer *strings.Replacer
}

func newScrubber(secrets []string) *scrubber {
	s := &scrubber{forms: forms(secrets)}
	if len(s.forms) > 0 {
		pairs := make([]string, 0, 2*len(s.forms))
		for _, f := range s.forms {
			pairs = append(pairs, f, marker)
		}
		s.replacer = strings.NewReplacer(pairs...)
	}
	return s
}

// forms returns every form of secrets that what is kept must not contain,
// longest first. Secrets are raw values, each credential field listed once,
// of any length. Derived from them:
//
//   - each value with leading and trailing HTTP whitespace removed, as a
//     header's receiver reads it;
//   - for every ordered pair of values a, b the string "a:b", which the
//     Basic scheme sends (so a Credential lists username and password and
//     the pair is found without it knowing the order or the scheme);
//   - the base64 of each of these (standard and URL alphabets, padded and
//     not) and the part of the base64 that the value alone fixes when it
//     starts 1 or 2 bytes into a 3-byte group: the base64 of any longer
//     text holding a value of 2 bytes or more (a whole Authorization
//     header, say) contains one of them;
//   - each of these JSON-escaped as encoding/json writes it (with and
//     without its \u003c escapes of <, > and &), with every non-ASCII rune
//     as a \uXXXX escape (lower and upper case hex), and with / as \/;
//   - each of these URL-escaped: query (space as + and as %20) and path
//     escaping (a segment's and a whole path's), in upper and lower case hex.
//
// Other spellings (escapes mixed within a value, HTML character
// references) are found by the check, which reads kept text decoded.
func forms(secrets []string) []string {
	var raw []string
	for _, v := range secrets {
		if v != "" && !slices.Contains(raw, v) {
			raw = append(raw, v)
		}
	}
	var plain []string
	for i, a := range raw {
		plain = append(plain, a)
		if t := strings.Trim(a, " \t\r\n"); t != "" && t != a {
			plain = append(plain, t)
		}
		for j, b := range raw {
			if i != j {
				plain = append(plain, a+":"+b)
			}
		}
	}
	var base []string
	for _, v := range plain {
		base = append(base, v)
		base = append(base, base64Forms(v)...)
	}
	var out []string
	for _, b := range base {
		out = append(out, b)
		out = append(out, jsonEscapes(b)...)
		out = append(out, urlEscapes(b)...)
	}
	slices.SortFunc(out, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(slices.DeleteFunc(out, func(s string) bool { return s == "" }))
}

// base64Forms are v's base64, padded and not, and the parts of it v alone
// fixes at the three alignments, in both alphabets.
func base64Forms(v string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		raw := enc.WithPadding(base64.NoPadding)
		out = append(out, enc.EncodeToString([]byte(v)), raw.EncodeToString([]byte(v)))
		for k := range 3 {
			// Characters whose 6 bits all lie within v's bytes, v
			// starting k bytes into a group.
			e := raw.EncodeToString(append(make([]byte, k), v...))
			if from, to := (8*k+5)/6, 8*(k+len(v))/6; from < to {
				out = append(out, e[from:to])
			}
		}
	}
	return out
}

// jsonEscapes are the ways a JSON encoder writes s inside a string.
func jsonEscapes(s string) []string {
	var out []string
	for _, escapeHTML := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(escapeHTML)
		if enc.Encode(s) != nil {
			continue
		}
		e := strings.TrimSuffix(b.String(), "\n")
		e = e[1 : len(e)-1]
		out = append(out, e, asciiEscaped(e, "\\u%04x"), asciiEscaped(e, "\\u%04X"))
	}
	for _, e := range out {
		if strings.Contains(e, "/") {
			out = append(out, strings.ReplaceAll(e, "/", `\/`))
		}
	}
	return out
}

// asciiEscaped writes every non-ASCII rune of e as UTF-16 \uXXXX escapes.
func asciiEscaped(e, format string) string {
	var b strings.Builder
	for _, r := range e {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, format, u)
		}
	}
	return b.String()
}

// urlEscapes are the ways a URL carries s.
func urlEscapes(s string) []string {
	q := url.QueryEscape(s)
	out := []string{q, strings.ReplaceAll(q, "+", "%20"), url.PathEscape(s), (&url.URL{Path: s}).EscapedPath()}
	for _, e := range out[:4] {
		out = append(out, lowerHex(e))
	}
	return out
}

// lowerHex writes the hex digits of e's percent escapes in lower case.
func lowerHex(e string) string {
	b := []byte(e)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// replace puts marker in place of every form in v.
func (s *scrubber) replace(v string) string {
	if s.replacer == nil {
		return v
	}
	return s.replacer.Replace(v)
}

// clean reports whether no form occurs in v, read as it is and decoded:
// JSON string escapes, percent escapes (with + as space or not), both in
// either order, and HTML character references.
func (s *scrubber) clean(v string) bool {
	if len(s.forms) == 0 {
		return true
	}
	for _, r := range readings(v) {
		for _, f := range s.forms {
			if strings.Contains(r, f) {
				return false
			}
		}
	}
	return true
}

func readings(v string) []string {
	out := []string{v}
	add := func(r string) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	add(unescapeJSON(v))
	for _, r := range slices.Clone(out) {
		for _, plus := range []bool{false, true} {
			p := unescapePercent(r, plus)
			add(p)
			add(unescapeJSON(p))
		}
	}
	add(html.UnescapeString(v))
	return out
}

// text is v scrubbed, or false when a form is left in it.
func (s *scrubber) text(v string) (string, bool) {
	v = s.replace(v)
	return v, s.clean(v)
}

// body is the JSON document raw with every string (keys too) scrubbed and
// every number holding a form replaced by the marker, written as
// encoding/json writes it (compact, <, > and & escaped), or false when that
// still holds a form. raw must be valid JSON.
func (s *scrubber) body(raw []byte) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	type container struct {
		object bool
		n      int // tokens read in it
	}
	var stack []container
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			out.WriteByte(byte(d))
			continue
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			switch {
			case top.object && top.n%2 == 1:
				out.WriteByte(':')
			case top.n > 0:
				out.WriteByte(',')
			}
			top.n++
		}
		switch v := tok.(type) {
		case json.Delim:
			out.WriteByte(byte(v))
			stack = append(stack, container{object: v == '{'})
		case string:
			writeString(&out, s.replace(v))
		case json.Number:
			if s.clean(string(v)) {
				out.WriteString(string(v))
			} else {
				writeString(&out, marker)
			}
		case bool:
			out.WriteString(strconv.FormatBool(v))
		case nil:
			out.WriteString("null")
		}
	}
	if !json.Valid(out.Bytes()) || !s.clean(out.String()) {
		return nil, false
	}
	return out.Bytes(), true
}

func writeString(out *bytes.Buffer, v string) {
	b, _ := json.Marshal(v) // a string always marshals
	out.Write(b)
}

// err is e, or a fixed error when e's text holds a form.
func (s *scrubber) err(e error) error {
	if e == nil || s.clean(e.Error()) {
		return e
	}
	return errCredentialInError
}

var errCredentialInError = errors.New("httpaction: the request could not be made (the error's text is withheld: it held a credential value)")

// unescapeJSON reads the JSON string escapes in v; anything else, a
// malformed escape too, is left as it is.
func unescapeJSON(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' || i+1 == len(v) {
			b.WriteByte(c)
			continue
		}
		switch n := v[i+1]; n {
		case '"', '\\', '/':
			b.WriteByte(n)
			i++
		case 'b', 'f', 'n', 'r', 't':
			b.WriteByte("\b\f\n\r\t"[strings.IndexByte("bfnrt", n)])
			i++
		case 'u':
			r, ok := hex4(v, i+2)
			if !ok {
				b.WriteByte(c)
				continue
			}
			i += 5
			if utf16.IsSurrogate(r) && i+6 < len(v) && v[i+1] == '\\' && v[i+2] == 'u' {
				if r2, ok := hex4(v, i+3); ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func hex4(v string, i int) (rune, bool) {
	if i+4 > len(v) {
		return 0, false
	}
	n, err := strconv.ParseUint(v[i:i+4], 16, 16)
	return rune(n), err == nil
}

// unescapePercent reads the percent escapes in v (and + as a space when
// plus); a malformed escape is left as it is.
func unescapePercent(v string, plus bool) string {
	if !strings.Contains(v, "%") && (!plus || !strings.Contains(v, "+")) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]):
			n, _ := strconv.ParseUint(v[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
		case c == '+' && plus:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
