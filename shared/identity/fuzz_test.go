package identity

import (
	"strings"
	"testing"
)

// FuzzCanonicalPath: a canonical path is stable, absolute, free of dot
// segments and key separators, and contained in its own collections.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/sites/hr", "/sites/HR/", "/sites/my site", "/sites/a%2Fb", "/sites/%2e%2e", "//x", "/sites/../hr", "/é/ü", "/sites/a#b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := CanonicalPath(p)
		if err != nil {
			return
		}
		if !strings.HasPrefix(c, "/") || strings.Contains(c, "#") || strings.Contains(c, "//") || strings.HasSuffix(c, "/") {
			t.Fatalf("CanonicalPath(%q) = %q", p, c)
		}
		for _, seg := range strings.Split(c[1:], "/") {
			if seg == "." || seg == ".." || seg == "%2e%2e" || seg == "%2e" {
				t.Fatalf("CanonicalPath(%q) = %q keeps a dot segment", p, c)
			}
		}
		again, err := CanonicalPath(c)
		if err != nil || again != c {
			t.Fatalf("not stable: %q → %q → %q, %v", p, c, again, err)
		}
		cols := CollectionsOf(c)
		if len(cols) == 0 || cols[0] != c {
			t.Fatalf("CollectionsOf(%q) = %q", c, cols)
		}
		for _, col := range cols {
			if !InCollection(c, col) {
				t.Fatalf("%q is not in its collection %q", c, col)
			}
		}
	})
}

// FuzzParseList: what FormatList writes, ParseList reads back.
func FuzzParseList(f *testing.F) {
	f.Add("/sites/a", "/sites/b%20c")
	f.Add("tenant_admin", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		var in []string
		for _, v := range []string{a, b} {
			if v != "" && !strings.ContainsAny(v, " []") {
				in = append(in, v)
			}
		}
		got := ParseList(FormatList(in))
		if len(got) != len(in) {
			t.Fatalf("round trip of %q = %q", in, got)
		}
		for i := range in {
			if got[i] != in[i] {
				t.Fatalf("round trip of %q = %q", in, got)
			}
		}
	})
}
