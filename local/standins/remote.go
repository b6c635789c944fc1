package standins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/connmgr/connmgr/local/lambdaserver"
)

// Remote is a function running in another process, invoked over HTTP as
// the Lambda Invoke API does: the Runtime Interface Emulator
// (http://127.0.0.1:9000/2015-03-31/functions/function/invocations) or
// `sam local start-lambda` (.../2015-03-31/functions/<Name>/invocations).
// Registered in StandIns.Lambda, it is what the state machines, the bus
// and the functions' Lambda clients reach under its name.
type Remote struct {
	URL    string
	Client *http.Client // nil: http.DefaultClient; the registry's timeout bounds each call
}

// Invoke posts payload and returns the function's answer; a function error
// (the X-Amz-Function-Error header, or the emulator's {"errorType",
// "errorMessage"} body) comes back as the error the registry reports.
func (r Remote) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	c := r.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("standins: invoke %s: %w", r.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, lambdaserver.MaxSyncPayload+1))
	if err != nil {
		return nil, fmt.Errorf("standins: invoke %s: %w", r.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("standins: invoke %s: %s %.200s", r.URL, resp.Status, body)
	}
	var fe struct {
		Type    *string `json:"errorType"`
		Message *string `json:"errorMessage"`
	}
	if resp.Header.Get("X-Amz-Function-Error") != "" || json.Unmarshal(body, &fe) == nil && fe.Type != nil && fe.Message != nil {
		_ = json.Unmarshal(body, &fe)
		e := messages.InvokeResponse_Error{Type: "Unhandled", Message: string(body)}
		if fe.Type != nil {
			e.Type = *fe.Type
		}
		if fe.Message != nil {
			e.Message = *fe.Message
		}
		return nil, e
	}
	return body, nil
}
