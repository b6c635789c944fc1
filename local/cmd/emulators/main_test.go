package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/logbuf"
)

// The command starts the stand-ins, prints their endpoints and every
// function's environment, and routes invocations of a function named with
// -function to its URL; any other function answers FunctionNotRunning.
func TestEmulators(t *testing.T) {
	rie := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true,"from":"rie"}`))
	}))
	defer rie.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &logbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, out, map[string]string{"ResolveFunction": rie.URL}, map[string]string{"LogLevel": "WARN"}, "")
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "# WebFunction") {
		select {
		case err := <-done:
			t.Fatalf("run ended early: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner after 30 s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	banner := out.String()
	for _, want := range []string{"TABLE_NAME=connmgr-local", "KMS_KEY_ID=arn:aws:kms:", "RESOLVE_FUNCTION_NAME=ResolveFunction",
		"LOG_LEVEL=WARN", "AWS_REGION=us-east-1", "ResolveFunction          " + rie.URL} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	m := regexp.MustCompile(`Lambda +(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("no Lambda endpoint in:\n%s", banner)
	}
	invoke := func(fn string) (*http.Response, string) {
		resp, err := http.Post(m[1]+"/2015-03-31/functions/"+fn+"/invocations", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	if resp, body := invoke("ResolveFunction"); resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" || body != `{"ok":true,"from":"rie"}` {
		t.Errorf("ResolveFunction: %d %q %s", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), body)
	}
	if resp, body := invoke("RunStepFunction"); resp.Header.Get("X-Amz-Function-Error") == "" || !strings.Contains(body, "FunctionNotRunning") {
		t.Errorf("RunStepFunction: %d %q %s", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}
