package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"maps"
	"slices"
	"strconv"

	"github.com/connmgr/connmgr/shared/apperr"
)

// CursorScope is what a list route's page cursor is bound to: the tenant
// and the user who listed, the route, and the listing's filters. Every
// list route encodes and decodes its cursors through one.
//
// A cursor is base64url(version, digest, position): position is where the
// next page starts (an id); digest is a SHA-256 over the scope and the
// position. Decoding recomputes it for the request's own scope, so a
// cursor used on another route, by another user or tenant, or with other
// filters, and one altered or truncated, is 400 invalid_cursor instead of
// a page taken from an unintended place.
//
// The digest is not keyed: the functions hold no secret to key it with
// (the KMS key is an encryption key only the connections function may use),
// so it makes cursors tamper-evident, not unforgeable. Someone who
// recomputes it can make a cursor for their own scope, which only moves
// where their own listing starts; every page is still filtered by the
// caller's permissions (ListQuery.Keep, RunListQuery.Keep), so a forged
// cursor shows nothing the caller could not list anyway.
type CursorScope struct {
	Tenant, User string
	// Route is the route key, such as "GET /connections".
	Route string
	// Filters are the listing's filters by query parameter (and path
	// parameters such as the connection id of an audit log); an empty
	// value is the same as an absent one.
	Filters map[string]string
}

const (
	cursorVersion   = 1
	cursorDigestLen = 16
)

// Encode returns the cursor continuing the scope's listing after position.
func (sc CursorScope) Encode(position string) string {
	d := sc.digest(position)
	b := make([]byte, 0, 1+len(d)+len(position))
	b = append(b, cursorVersion)
	b = append(b, d...)
	b = append(b, position...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode returns the position of a cursor Encode made for the same scope.
func (sc CursorScope) Decode(cursor string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) <= 1+cursorDigestLen || b[0] != cursorVersion {
		return "", errInvalidCursor
	}
	d, position := b[1:1+cursorDigestLen], string(b[1+cursorDigestLen:])
	if !hmac.Equal(d, sc.digest(position)) || !validKeyPart(position) {
		return "", errInvalidCursor
	}
	return position, nil
}

var errInvalidCursor = apperr.InvalidField("cursor", "invalid_cursor", "the cursor is not one this API issued for this listing: start again without it")

// digest hashes the scope and position, each length-prefixed so no two
// scopes share an encoding.
func (sc CursorScope) digest(position string) []byte {
	h := sha256.New()
	put := func(s string) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	var filters []string
	for _, k := range slices.Sorted(maps.Keys(sc.Filters)) {
		if v := sc.Filters[k]; v != "" {
			filters = append(filters, k, v)
		}
	}
	put("connmgr page cursor v1")
	put(sc.Tenant)
	put(sc.User)
	put(sc.Route)
	put(strconv.Itoa(len(filters)))
	for _, f := range filters {
		put(f)
	}
	put(position)
	return h.Sum(nil)[:cursorDigestLen]
}
