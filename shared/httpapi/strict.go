package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/connmgr/connmgr/shared/apperr"
)

// The checks encoding/json does not make, run over the raw body before it
// is decoded into the target:
//
//   - the body is valid UTF-8 and no \u escape is an unpaired surrogate
//     (encoding/json would replace either with U+FFFD, silently);
//   - no object, at any depth, holds a key twice (encoding/json keeps the
//     last one, so a value another reader would take is ignored);
//   - every key of an object decoded into a struct is one of the struct's
//     JSON names, spelled exactly (encoding/json matches them ignoring
//     case, so {"KIND": ...} would set kind).
//
// Maps (settings) keep arbitrary keys; values decoded by their own
// UnmarshalJSON and values of type any are checked for duplicates only.

// maxDepth bounds how deeply a body may nest objects and arrays.
const maxDepth = 64

// checkEncoding refuses a body that is not UTF-8 or holds an escaped
// unpaired surrogate. Escapes are only valid inside strings, so every
// backslash outside one is a syntax error the decoder reports anyway.
func checkEncoding(b []byte) error {
	if !utf8.Valid(b) {
		return apperr.E(apperr.Invalid, "invalid_utf8", "the body is not valid UTF-8")
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		i++ // the escaped character
		if b[i] != 'u' {
			continue
		}
		r, ok := hex4(b[i+1:])
		if !ok {
			continue // a syntax error
		}
		i += 4
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
			lo, ok := rune(0), false
			if i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				lo, ok = hex4(b[i+3:])
			}
			if !ok || utf16.DecodeRune(r, lo) == utf8.RuneError {
				return apperr.E(apperr.Invalid, "invalid_utf8", "the body holds an unpaired UTF-16 surrogate escape")
			}
			i += 6
		case utf16.IsSurrogate(r): // a low one alone
			return apperr.E(apperr.Invalid, "invalid_utf8", "the body holds an unpaired UTF-16 surrogate escape")
		}
	}
	return nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// checkKeys walks the body's tokens alongside target's type. Syntax errors
// are returned as the decoder reports them, for jsonError.
func checkKeys(b []byte, target reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	w := walker{dec: dec}
	return w.value(target, "", 0)
}

type walker struct{ dec *json.Decoder }

func (w walker) value(t reflect.Type, path string, depth int) error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth >= maxDepth {
		return apperr.E(apperr.Invalid, "malformed_json", fmt.Sprintf("the body nests more than %d levels", maxDepth))
	}
	t = shape(t)
	switch d {
	case '{':
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for w.dec.More() {
			tok, err := w.dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			at := joinPath(path, key)
			if seen[key] {
				return apperr.InvalidField(at, "duplicate_key", "%s appears more than once", at)
			}
			seen[key] = true
			var next reflect.Type
			switch {
			case fields != nil:
				ft, known := fields[key]
				if !known {
					return apperr.InvalidField(at, "unknown_field", "%s is not a known field", at)
				}
				next = ft
			case t != nil && t.Kind() == reflect.Map:
				next = t.Elem()
			}
			if err := w.value(next, at, depth+1); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	}
	_, err = w.dec.Token() // the closing delimiter
	return err
}

func joinPath(path, key string) string {
	if len(key) > 64 {
		key = key[:64]
		for !utf8.ValidString(key) {
			key = key[:len(key)-1]
		}
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// shape is the type whose keys a JSON value must match: pointers followed,
// nil (anything goes, duplicates aside) for a type that decodes itself or
// an interface.
func shape(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	return t
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps a struct's JSON names, as encoding/json would encode
// them, to their types: tag names, untagged exported fields by their Go
// name, and the fields of untagged embedded structs.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addFields(t, m, 0)
	fieldCache.Store(t, m)
	return m
}

func addFields(t reflect.Type, m map[string]reflect.Type, depth int) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup {
			m[name] = f.Type
		}
	}
	// Promoted fields after the struct's own: the shallower one wins.
	for _, et := range embedded {
		if depth < 8 {
			addFields(et, m, depth+1)
		}
	}
}
