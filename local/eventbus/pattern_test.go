package eventbus_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/eventbus"
)

const sampleEvent = `{
	"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
	"detail-type": "Connection Updated", "source": "connmgr.connections",
	"account": "111122223333", "time": "2030-01-02T03:04:05Z", "region": "us-east-1",
	"resources": ["arn:aws:connmgr:c-1", "arn:aws:connmgr:site/hr"],
	"detail": {
		"connectionId": "c-1", "status": "active", "path": "/sites/hr",
		"owner": {"id": "u1", "roles": ["admin", "dev"]},
		"count": 5, "ratio": 0.5, "enabled": true, "note": null, "tags": [],
		"items": [{"id": "a", "n": 1}, {"id": "b", "n": 2}]
	}
}`

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		name, pattern string
		want          bool
	}{
		{"source", `{"source":["connmgr.connections"]}`, true},
		{"other source", `{"source":["connmgr.runs"]}`, false},
		{"one of several values", `{"source":["connmgr.runs","connmgr.connections"]}`, true},
		{"fields are ANDed", `{"source":["connmgr.connections"],"detail-type":["Connection Deleted"]}`, false},
		{"detail-type and source", `{"source":["connmgr.connections"],"detail-type":["Connection Updated"]}`, true},
		{"nested detail field", `{"detail":{"status":["active"]}}`, true},
		{"nested detail mismatch", `{"detail":{"status":["inactive"]}}`, false},
		{"deeply nested", `{"detail":{"owner":{"id":["u1"]}}}`, true},
		{"event array holds the value", `{"detail":{"owner":{"roles":["admin"]}}}`, true},
		{"event array lacks the value", `{"detail":{"owner":{"roles":["root"]}}}`, false},
		{"resources", `{"resources":["arn:aws:connmgr:site/hr"]}`, true},
		{"number", `{"detail":{"count":[5]}}`, true},
		{"number by value", `{"detail":{"count":[5.0]}}`, true},
		{"string is not number", `{"detail":{"count":["5"]}}`, false},
		{"boolean", `{"detail":{"enabled":[true]}}`, true},
		{"boolean mismatch", `{"detail":{"enabled":[false]}}`, false},
		{"null matches null", `{"detail":{"note":[null]}}`, true},
		{"null does not match missing", `{"detail":{"missing":[null]}}`, false},
		{"missing field", `{"detail":{"missing":["x"]}}`, false},
		{"empty string is a value", `{"detail":{"status":[""]}}`, false},
		{"prefix", `{"detail":{"path":[{"prefix":"/sites/"}]}}`, true},
		{"prefix mismatch", `{"detail":{"path":[{"prefix":"/users/"}]}}`, false},
		{"prefix ignoring case", `{"detail":{"path":[{"prefix":{"equals-ignore-case":"/SITES/"}}]}}`, true},
		{"prefix is for strings", `{"detail":{"count":[{"prefix":"5"}]}}`, false},
		{"suffix", `{"detail":{"path":[{"suffix":"/hr"}]}}`, true},
		{"equals-ignore-case", `{"detail":{"status":[{"equals-ignore-case":"ACTIVE"}]}}`, true},
		{"wildcard", `{"detail":{"path":[{"wildcard":"/sites/*"}]}}`, true},
		{"wildcard in the middle", `{"detail":{"path":[{"wildcard":"/s*s/h*"}]}}`, true},
		{"wildcard mismatch", `{"detail":{"path":[{"wildcard":"/users/*"}]}}`, false},
		{"anything-but value", `{"detail":{"status":[{"anything-but":"inactive"}]}}`, true},
		{"anything-but excludes", `{"detail":{"status":[{"anything-but":"active"}]}}`, false},
		{"anything-but list", `{"detail":{"status":[{"anything-but":["active","deleted"]}]}}`, false},
		{"anything-but number", `{"detail":{"count":[{"anything-but":[1,2]}]}}`, true},
		{"anything-but prefix", `{"detail":{"path":[{"anything-but":{"prefix":"/users"}}]}}`, true},
		{"anything-but prefix excludes", `{"detail":{"path":[{"anything-but":{"prefix":"/sites"}}]}}`, false},
		{"anything-but needs the field", `{"detail":{"missing":[{"anything-but":"x"}]}}`, false},
		{"anything-but over an array", `{"detail":{"owner":{"roles":[{"anything-but":"admin"}]}}}`, true},
		{"exists true", `{"detail":{"status":[{"exists":true}]}}`, true},
		{"exists true, missing", `{"detail":{"missing":[{"exists":true}]}}`, false},
		{"exists false, missing", `{"detail":{"missing":[{"exists":false}]}}`, true},
		{"exists false, present", `{"detail":{"status":[{"exists":false}]}}`, false},
		{"exists is for leaves", `{"detail":{"owner":[{"exists":true}]}}`, false},
		{"exists false, empty array", `{"detail":{"tags":[{"exists":false}]}}`, true},
		{"exists true, null", `{"detail":{"note":[{"exists":true}]}}`, true},
		{"exists false under a missing object", `{"detail":{"nothing":{"x":[{"exists":false}]}}}`, true},
		{"nested under a missing object", `{"detail":{"nothing":{"x":["y"]}}}`, false},
		{"numeric range", `{"detail":{"count":[{"numeric":[">",0,"<=",5]}]}}`, true},
		{"numeric out of range", `{"detail":{"count":[{"numeric":[">",5]}]}}`, false},
		{"numeric equal", `{"detail":{"ratio":[{"numeric":["=",0.5]}]}}`, true},
		{"numeric on a string", `{"detail":{"status":[{"numeric":[">",0]}]}}`, false},
		{"value or operator", `{"detail":{"status":["x",{"prefix":"act"}]}}`, true},
		{"$or at the top", `{"$or":[{"source":["connmgr.runs"]},{"detail-type":["Connection Updated"]}]}`, true},
		{"$or none", `{"$or":[{"source":["connmgr.runs"]},{"detail-type":["Run Finished"]}]}`, false},
		{"$or with other fields", `{"source":["connmgr.runs"],"$or":[{"detail":{"count":[5]}},{"detail":{"status":["active"]}}]}`, false},
		{"$or nested", `{"detail":{"$or":[{"count":[{"numeric":[">",10]}]},{"status":["active"]}]}}`, true},
		{"array of objects, one element", `{"detail":{"items":{"id":["b"],"n":[2]}}}`, true},
		{"array of objects, fields of different elements", `{"detail":{"items":{"id":["a"],"n":[2]}}}`, false},
		{"object where a leaf is expected", `{"detail":{"owner":["u1"]}}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := eventbus.CompilePattern(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.MatchJSON([]byte(sampleEvent))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPatternFromTemplateValues(t *testing.T) {
	// Patterns from the template arrive as generic YAML values (int, not float64).
	p, err := eventbus.CompilePattern(map[string]any{
		"source": []any{"connmgr.connections"},
		"detail": map[string]any{"count": []any{5}, "owner": map[string]any{"roles": []any{"dev"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.MatchJSON([]byte(sampleEvent)); !ok {
		t.Error("no match")
	}
}

func TestPatternRejects(t *testing.T) {
	for _, tc := range []struct{ pattern, reason string }{
		{`["source"]`, "must be a JSON object"},
		{`{}`, "must not be empty"},
		{`{"source":"connmgr"}`, "must be inside an array"},
		{`{"source":[]}`, "empty array"},
		{`{"detail":{}}`, "empty object"},
		{`{"source":[{"regex":"x"}]}`, "unrecognized match type regex"},
		{`{"source":[{"prefix":"a","suffix":"b"}]}`, "exactly one key"},
		{`{"source":[{"prefix":5}]}`, "takes a string"},
		{`{"detail":{"ip":[{"cidr":"10.0.0.0/8"}]}}`, "cidr"},
		{`{"detail":{"n":[{"numeric":[">"]}]}}`, "numeric takes"},
		{`{"detail":{"n":[{"numeric":["!=",1]}]}}`, "numeric operator"},
		{`{"detail":{"n":[{"exists":"yes"}]}}`, "exists takes"},
		{`{"detail":{"n":[{"anything-but":{"numeric":[">",1]}}]}}`, "anything-but does not take numeric"},
		{`{"detail":{"n":[{"anything-but":[true]}]}}`, "strings or numbers"},
		{`{"detail":{"n":[{"wildcard":"a**"}]}}`, "consecutive wildcard"},
		{`{"$or":[{"source":["a"]}]}`, "at least two"},
		{`{"source":[["nested"]]}`, "not a valid match value"},
	} {
		_, err := eventbus.CompilePattern(tc.pattern)
		var pe *eventbus.PatternError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: error %v, want a PatternError mentioning %q", tc.pattern, err, tc.reason)
		}
	}
}
