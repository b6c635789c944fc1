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
	hash, ok := partitionValue(input, t.KeySchema, t.AttributesDef)
	if !ok {
		return sortedKeys
	}

	lo, hi := partitionRange(len(sortedKeys), func(i int) string { return sortedKeys[i] }, hash, t.KeySchema.RangeKey != "")
	part := sortedKeys[lo:hi]

	if startKey != "" && !slices.Contains(part, startKey) {
		return sortedKeys
	}

	return part
}

// indexPartition is partitionKeys for a Query of an index, after
// startSearch: it narrows the index's sorted (primary key, index key)
// pairs to the partition's, and returns the index keys the query loop
// visits, in the order it reads them (GetKeyAt reads them from the end
// when the query goes backwards).
func (t *Table) indexPartition(input QueryInput, idx *index, sortedKeys []string, startKey string) []string {
	hash, ok := partitionValue(input, idx.keySchema, t.AttributesDef)
	if !ok {
		return sortedKeys
	}

	refs := idx.sortedRefs
	forward := input.ScanIndexForward
	// startSearch sorted the pairs by index key, descending when backwards.
	at := func(i int) string {
		if forward {
			return refs[i][1]
		}

		return refs[len(refs)-1-i][1]
	}

	lo, hi := partitionRange(len(refs), at, hash, idx.keySchema.RangeKey != "")
	if !forward {
		lo, hi = len(refs)-hi, len(refs)-lo
	}

	part := refs[lo:hi]

	if startKey != "" && !slices.ContainsFunc(part, func(r [2]string) bool { return r[0] == startKey }) {
		return sortedKeys
	}

	keys := make([]string, len(part))
	for i, r := range part {
		keys[i] = r[1]
	}

	if !forward {
		slices.Reverse(keys)
	}

	idx.sortedRefs = part

	return keys
}

// partitionValue is the string hash key value a Query's key condition
// names with "=", as keySchema.getKeyValue writes it into key strings.
func partitionValue(input QueryInput, ks keySchema, attrs map[string]string) (string, bool) {
	if input.Scan || attrs[ks.HashKey] != "S" {
		return "", false
	}

	placeholder, ok := hashEquality(input.KeyConditionExpression, input.Aliases, ks.HashKey)
	if !ok {
		return "", false
	}

	v := input.ExpressionAttributeValues[placeholder]
	if v == nil || v.S == nil {
		return "", false
	}

	return *v.S, true
}

// partitionRange is the run [lo, hi) of n ascending key strings (key(i))
// of the partition hash: the hash value, then "." and the range value when
// the schema has a range key.
func partitionRange(n int, key func(int) string, hash string, ranged bool) (lo, hi int) {
	if !ranged {
		lo = sort.Search(n, func(i int) bool { return key(i) >= hash })
		hi = lo

		if lo < n && key(lo) == hash {
			hi++
		}

		return lo, hi
	}

	prefix := hash + "."
	lo = sort.Search(n, func(i int) bool { return key(i) >= prefix })
	hi = lo + sort.Search(n-lo, func(i int) bool { return !strings.HasPrefix(key(lo+i), prefix) })

	return lo, hi
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
