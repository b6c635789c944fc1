package core

// connmgr patch (see PATCHES.md): a Query reads only its partition's keys,
// and a transaction saves only the items it writes. Upstream v0.8.2 ran
// the key condition through the interpreter on every key of the table for
// each Query, and deep-copied the whole table before each
// TransactWriteItems, so both cost the size of the table; 1,000 workflow
// runs made them quadratic.

import (
	"slices"
	"sort"
	"strings"

	"github.com/truora/minidyn/interpreter/language"
	"github.com/truora/minidyn/types"
)

// partitionKeys narrows the sorted primary keys a Query of the table
// visits to those of the partition its key condition names: every other
// key fails the condition's equality on the hash key, and the keys of one
// partition are contiguous in sorted order, so the same items come back in
// the same order. It returns sortedKeys itself when the condition names no
// string partition value (a Scan, a syntax error the interpreter reports)
// or when the ExclusiveStartKey is outside the partition.
func (t *Table) partitionKeys(input QueryInput, sortedKeys []string, startKey string) []string {
	if input.Scan || t.AttributesDef[t.KeySchema.HashKey] != "S" {
		return sortedKeys
	}

	placeholder, ok := hashEquality(input.KeyConditionExpression, input.Aliases, t.KeySchema.HashKey)
	if !ok {
		return sortedKeys
	}

	v := input.ExpressionAttributeValues[placeholder]
	if v == nil || v.S == nil {
		return sortedKeys
	}

	// The key strings are built as keySchema.getKeyValue builds them:
	// the hash value, then "." and the range value when there is one.
	hash := *v.S

	var part []string

	if t.KeySchema.RangeKey == "" {
		lo := sort.SearchStrings(sortedKeys, hash)
		hi := lo

		if lo < len(sortedKeys) && sortedKeys[lo] == hash {
			hi++
		}

		part = sortedKeys[lo:hi]
	} else {
		prefix := hash + "."
		lo := sort.SearchStrings(sortedKeys, prefix)
		n := sort.Search(len(sortedKeys)-lo, func(i int) bool { return !strings.HasPrefix(sortedKeys[lo+i], prefix) })
		part = sortedKeys[lo : lo+n]
	}

	if startKey != "" && !slices.Contains(part, startKey) {
		return sortedKeys
	}

	return part
}

// hashEquality returns the value placeholder a key condition compares the
// hash key attribute to with "=", at its top level or in a conjunction.
func hashEquality(expression string, aliases map[string]string, hashKey string) (string, bool) {
	if expression == "" {
		return "", false
	}

	p := language.NewParser(language.NewLexer(expression))

	conditional := p.ParseConditionalExpression()
	if len(p.Errors()) != 0 || conditional.Expression == nil {
		return "", false
	}

	name := func(e language.Expression) string {
		id, ok := e.(*language.Identifier)
		if !ok || id == nil {
			return ""
		}

		if alias, ok := aliases[id.Value]; ok {
			return alias
		}

		return id.Value
	}

	var find func(e language.Expression) (string, bool)

	find = func(e language.Expression) (string, bool) {
		in, ok := e.(*language.InfixExpression)
		if !ok || in == nil {
			return "", false
		}

		switch in.Operator {
		case language.AND:
			if v, ok := find(in.Left); ok {
				return v, true
			}

			return find(in.Right)
		case language.EQ:
			l, r := name(in.Left), name(in.Right)

			switch {
			case l == hashKey && strings.HasPrefix(r, ":"):
				return r, true
			case r == hashKey && strings.HasPrefix(l, ":"):
				return l, true
			}
		}

		return "", false
	}

	return find(conditional.Expression)
}

// SnapshotItems is Snapshot for a change that writes only the items under
// keys (primary key strings as keySchema.GetKey builds them): it
// deep-copies those items alone, their index entries, and the sorted key
// lists, which are flat strings.
func (t *Table) SnapshotItems(keys []string) TableSnapshot {
	data := make(map[string]map[string]*types.Item, len(keys))

	for _, k := range keys {
		if item, ok := t.Data[k]; ok {
			data[k] = deepCopyItemMap(item)
		}
	}

	s := TableSnapshot{data: data, sortedKeys: slices.Clone(t.SortedKeys), indexes: make(map[string]indexSnapshot, len(t.Indexes)), items: keys}

	for name, idx := range t.Indexes {
		s.indexes[name] = idx.snapshotKeys(keys)
	}

	return s
}

// snapshotKeys is snapshot for a change to the items under keys: an item
// changes only its own entry of refs.
func (i *index) snapshotKeys(keys []string) indexSnapshot {
	refs := make(map[string]string, len(keys))

	for _, k := range keys {
		if ref, ok := i.refs[k]; ok {
			refs[k] = ref
		}
	}

	return indexSnapshot{sortedKeys: slices.Clone(i.sortedKeys), refs: refs, refsOf: keys}
}
