package authpage

import (
	"strings"
	"testing"
)

func TestRenderEscapes(t *testing.T) {
	r := render(400, view{Title: "Not <authorized>", Class: "bad", Message: `a "quoted" <script>alert(1)</script>`, Code: "x&y"})
	for _, bad := range []string{"<script>", "<authorized>", `"quoted"`} {
		if strings.Contains(r.HTML, bad) {
			t.Errorf("page holds unescaped %q:\n%s", bad, r.HTML)
		}
	}
	for _, want := range []string{"Not &lt;authorized&gt;", "&lt;script&gt;", "<code>x&amp;y</code>", `class="bad"`} {
		if !strings.Contains(r.HTML, want) {
			t.Errorf("page lacks %q:\n%s", want, r.HTML)
		}
	}
	if r.Status != 400 || r.Headers["Referrer-Policy"] != "no-referrer" {
		t.Errorf("status %d headers %v", r.Status, r.Headers)
	}
	if ok := render(200, view{Title: "Connection authorized", Class: "ok", Message: "m"}); strings.Contains(ok.HTML, "Code:") {
		t.Error("a code paragraph without a code")
	}
}
