// Package browsertest drives the Connections page in a real browser:
// Debian's Chromium, through npm's playwright-core, against the whole
// system started in-process by local/runtime on a loopback port, as `make
// dev` runs it. The scenarios are in page.test.mjs (node's test runner);
// this test starts what they need, runs them, and fails (never skips)
// when the browser, node or the npm packages are missing.
//
// The sign-in on AWS (OpenID Connect, code flow with PKCE) runs against
// stand-ins (oidc_test.go): the real page and web function router, a
// stand-in provider and a stub of the API.
//
// CONNMGR_BROWSER_ONLY=<pattern> runs only the scenarios whose name
// matches (node --test-name-pattern), while working on one.
//
// Each scenario saves a screenshot of its final state under
// test-artifacts/browser/ (CONNMGR_ARTIFACTS overrides), with the
// runtime's log; docs/connections-page.png and docs/connection-detail.png
// in the README are two of them.
package browsertest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/runtime"
	"github.com/connmgr/connmgr/local/sam"
)

// The browser: Debian's chromium package (.ci/run installs it).
const defaultChromium = "/usr/bin/chromium"

// Basic-auth users of the test target: the passwords it accepts.
const (
	targetUser = "svc-payroll"
)

var targetPasswords = map[string]bool{"old-secret": true, "new-secret": true}

func TestConnectionsPageInChromium(t *testing.T) {
	chromium := os.Getenv("CONNMGR_CHROMIUM")
	if chromium == "" {
		chromium = defaultChromium
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is missing (%v): apt-get install chromium (.ci/run does); the browser tests never skip", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is missing: install Node.js and run npm ci; the browser tests never skip")
	}
	root, err := sam.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"playwright-core", "axe-core"} {
		if _, err := os.Stat(filepath.Join(root, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("npm package %s is missing: run npm ci (package-lock.json pins it)", pkg)
		}
	}
	artifacts := os.Getenv("CONNMGR_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(root, "test-artifacts", "browser")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(artifacts, "runtime.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	rt, err := runtime.Start(ctx, runtime.Options{Addr: "127.0.0.1:0", Log: logFile, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if u, p, ok := r.BasicAuth(); !ok || u != targetUser || !targetPasswords[p] {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"unauthorized"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "path": r.URL.Path})
	}))
	defer target.Close()
	oidc, err := startOIDC()
	if err != nil {
		t.Fatal(err)
	}
	defer oidc.Close()

	args := []string{"--test-reporter=spec"}
	if only := os.Getenv("CONNMGR_BROWSER_ONLY"); only != "" {
		// While working on one scenario: node runs those whose name matches.
		args = append(args, "--test-name-pattern="+only)
	}
	cmd := exec.CommandContext(ctx, node, append(args, filepath.Join("local", "browsertest", "page.test.mjs"))...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"BASE_URL="+rt.URL,
		"TARGET_URL="+target.URL,
		"TARGET_USER="+targetUser,
		"ARTIFACTS="+artifacts,
		"CHROMIUM="+chromium,
		"OIDC_PAGE_URL="+oidc.Page.URL,
		"OIDC_PAGE_UNSET_URL="+oidc.PageUnset.URL,
		"OIDC_ISSUER_URL="+oidc.IdP.URL,
		"OIDC_TOKEN_URL="+oidc.Tokens.URL,
		"OIDC_AUDIENCE="+oidcAudience,
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("node page.test.mjs (screenshots in %s):\n%s", artifacts, out)
	if err != nil {
		t.Fatalf("the browser scenarios failed: %v (the runtime's log: %s)", err, logFile.Name())
	}
}
