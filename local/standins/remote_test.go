package standins_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/connmgr/connmgr/local/standins"
)

// Remote returns the answer, or the function's error as Lambda reports
// it: from the X-Amz-Function-Error header, or from the body alone, as the
// Runtime Interface Emulator answers.
func TestRemote(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  string
		status  int
		body    string
		out     string
		errType string
	}{
		{name: "answer", status: 200, body: `{"ok":true}`, out: `{"ok":true}`},
		{name: "null", status: 200, body: `null`, out: `null`},
		{name: "RIE function error", status: 200, body: `{"errorMessage":"boom","errorType":"StepTransient"}`, errType: "StepTransient"},
		{name: "Lambda function error", header: "Unhandled", status: 200, body: `{"errorMessage":"boom","errorType":"errorString"}`, errType: "errorString"},
		{name: "not an answer", status: 502, body: `bad gateway`, errType: "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b := make([]byte, 100)
				n, _ := r.Body.Read(b)
				got = string(b[:n])
				if tc.header != "" {
					w.Header().Set("X-Amz-Function-Error", tc.header)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			out, err := standins.Remote{URL: srv.URL}.Invoke(context.Background(), []byte(`{"in":1}`))
			if got != `{"in":1}` {
				t.Errorf("the function got %q", got)
			}
			var fe messages.InvokeResponse_Error
			switch {
			case tc.errType == "" && (err != nil || string(out) != tc.out):
				t.Errorf("Invoke = %q, %v; want %q", out, err, tc.out)
			case tc.errType == "-" && (err == nil || errors.As(err, &fe)):
				t.Errorf("Invoke = %q, %v; want a transport error", out, err)
			case tc.errType != "" && tc.errType != "-" && (!errors.As(err, &fe) || fe.Type != tc.errType || fe.Message != "boom"):
				t.Errorf("Invoke = %q, %v; want function error %s", out, err, tc.errType)
			}
		})
	}
}
