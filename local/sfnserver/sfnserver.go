// Package sfnserver serves an *asl.Engine over the Step Functions wire
// protocol (AWS JSON 1.0, X-Amz-Target: AWSStepFunctions.<Operation>) on a
// loopback listener, so the real aws-sdk-go-v2 sfn client talks to the local
// engine with only its BaseEndpoint changed. Errors carry the API's
// exception names in __type, which the SDK turns into its typed errors
// (*types.ExecutionAlreadyExists, *types.TaskTimedOut, ...).
//
// Operations: CreateStateMachine, DescribeStateMachine, ListStateMachines,
// StartExecution, DescribeExecution, StopExecution, ListExecutions,
// GetExecutionHistory, SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat.
// Anything else is answered UnknownOperationException. It never checks
// signatures or credentials; it is for `make dev` and the tests, never for
// a Lambda binary.
package sfnserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/loopback"
)

// Start serves engine on addr ("" = a free loopback port); Close stops the
// listener and leaves the engine running.
func Start(addr string, engine *asl.Engine) (*loopback.Server, error) {
	s, err := loopback.Serve(addr, Handler(engine), nil)
	if err != nil {
		return nil, fmt.Errorf("sfnserver: %w", err)
	}
	return s, nil
}

// Handler is the protocol handler, for mounting elsewhere.
func Handler(engine *asl.Engine) http.Handler { return &handler{e: engine} }

type handler struct {
	e      *asl.Engine
	limits *Limits // nil: none
}

type operation func(e *asl.Engine, body []byte) (any, error)

var operations = map[string]operation{
	"CreateStateMachine":   createStateMachine,
	"DescribeStateMachine": describeStateMachine,
	"ListStateMachines":    listStateMachines,
	"StartExecution":       startExecution,
	"DescribeExecution":    describeExecution,
	"StopExecution":        stopExecution,
	"ListExecutions":       listExecutions,
	"GetExecutionHistory":  getExecutionHistory,
	"SendTaskSuccess":      sendTaskSuccess,
	"SendTaskFailure":      sendTaskFailure,
	"SendTaskHeartbeat":    sendTaskHeartbeat,
}

const (
	contentType = "application/x-amz-json-1.0"
	maxBody     = 1 << 20
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var id [16]byte
	rand.Read(id[:])
	w.Header().Set("X-Amzn-RequestId", hex.EncodeToString(id[:]))
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "the Step Functions protocol is POST only")
		return
	}
	name, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	op := operations[name]
	if !ok || op == nil {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("operation %q is not supported by the local engine", name))
		return
	}
	if h.limits != nil && !h.limits.take(name) {
		writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "SerializationException", "request body unreadable or too large")
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	out, err := op(h.e, body)
	if err != nil {
		var ae *asl.APIError
		var se *serializationError
		switch {
		case errors.As(err, &ae):
			writeError(w, http.StatusBadRequest, ae.Code, ae.Message)
		case errors.As(err, &se):
			writeError(w, http.StatusBadRequest, "SerializationException", se.Error())
		default:
			writeError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		}
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.states#" + code, "message": msg})
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(b)
}

type serializationError struct{ err error }

func (e *serializationError) Error() string { return "malformed request: " + e.err.Error() }

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &serializationError{err}
	}
	return nil
}

// epoch is a timestamp as the JSON protocol sends it: seconds since the
// epoch, with milliseconds.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', 3, 64)), nil
}

func createStateMachine(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		Name       string `json:"name"`
		Definition string `json:"definition"`
		RoleArn    string `json:"roleArn"`
		Type       string `json:"type"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Type != "" && in.Type != "STANDARD" {
		return nil, &asl.APIError{Code: asl.CodeValidation, Message: fmt.Sprintf("state machine type %s is not supported by the local engine (STANDARD only)", in.Type)}
	}
	sm, err := e.CreateStateMachine(asl.StateMachineSpec{Name: in.Name, Definition: []byte(in.Definition), RoleARN: in.RoleArn})
	if err != nil {
		return nil, err
	}
	return map[string]any{"stateMachineArn": sm.ARN, "creationDate": epoch(sm.CreationDate)}, nil
}

func describeStateMachine(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		StateMachineArn string `json:"stateMachineArn"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sm, err := e.DescribeStateMachine(in.StateMachineArn)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"stateMachineArn": sm.ARN, "name": sm.Name, "status": "ACTIVE", "type": "STANDARD",
		"definition": string(sm.Definition.JSON()), "roleArn": sm.RoleARN, "creationDate": epoch(sm.CreationDate),
	}, nil
}

func listStateMachines(e *asl.Engine, body []byte) (any, error) {
	var list []map[string]any
	for _, sm := range e.StateMachines() {
		list = append(list, map[string]any{
			"stateMachineArn": sm.ARN, "name": sm.Name, "type": "STANDARD", "creationDate": epoch(sm.CreationDate),
		})
	}
	return map[string]any{"stateMachines": nonNil(list)}, nil
}

func startExecution(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		StateMachineArn string  `json:"stateMachineArn"`
		Name            string  `json:"name"`
		Input           *string `json:"input"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	input := ""
	if in.Input != nil {
		input = *in.Input
	}
	ex, err := e.StartExecution(in.StateMachineArn, in.Name, input)
	if err != nil {
		return nil, err
	}
	return map[string]any{"executionArn": ex.ARN, "startDate": epoch(ex.StartDate)}, nil
}

type executionRef struct {
	ExecutionArn string `json:"executionArn"`
}

func describeExecution(e *asl.Engine, body []byte) (any, error) {
	var in executionRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	ex, err := e.DescribeExecution(in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"executionArn": ex.ARN, "stateMachineArn": ex.StateMachineARN, "name": ex.Name,
		"status": string(ex.Status), "startDate": epoch(ex.StartDate),
		"input": ex.Input, "inputDetails": map[string]bool{"included": true},
	}
	if !ex.StopDate.IsZero() {
		out["stopDate"] = epoch(ex.StopDate)
	}
	if ex.Status == asl.StatusSucceeded {
		out["output"] = ex.Output
		out["outputDetails"] = map[string]bool{"included": true}
	}
	if ex.Error != "" {
		out["error"] = ex.Error
	}
	if ex.Cause != "" {
		out["cause"] = ex.Cause
	}
	return out, nil
}

func stopExecution(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		ExecutionArn string `json:"executionArn"`
		Error        string `json:"error"`
		Cause        string `json:"cause"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	stop, err := e.StopExecution(in.ExecutionArn, in.Error, in.Cause)
	if err != nil {
		return nil, err
	}
	return map[string]any{"stopDate": epoch(stop)}, nil
}

// page cuts list to one page; the next token is the offset, opaque to clients.
func page(n int, maxResults int, nextToken string) (from, to int, next string, err error) {
	if maxResults <= 0 || maxResults > 1000 {
		maxResults = 100
	}
	if nextToken != "" {
		raw, derr := base64.RawURLEncoding.DecodeString(nextToken)
		off, cerr := strconv.Atoi(strings.TrimPrefix(string(raw), "offset:"))
		if derr != nil || cerr != nil || off < 0 || off > n {
			return 0, 0, "", &asl.APIError{Code: asl.CodeInvalidToken, Message: "Invalid Token: 'invalid nextToken'"}
		}
		from = off
	}
	to = from + maxResults
	if to < n {
		next = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(to)))
	} else {
		to = n
	}
	return from, to, next, nil
}

func listExecutions(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		StateMachineArn string `json:"stateMachineArn"`
		StatusFilter    string `json:"statusFilter"`
		MaxResults      int    `json:"maxResults"`
		NextToken       string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	list, err := e.ListExecutions(in.StateMachineArn, asl.Status(in.StatusFilter))
	if err != nil {
		return nil, err
	}
	from, to, next, err := page(len(list), in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	var items []map[string]any
	for _, ex := range list[from:to] {
		item := map[string]any{
			"executionArn": ex.ARN, "stateMachineArn": ex.StateMachineARN, "name": ex.Name,
			"status": string(ex.Status), "startDate": epoch(ex.StartDate),
		}
		if !ex.StopDate.IsZero() {
			item["stopDate"] = epoch(ex.StopDate)
		}
		items = append(items, item)
	}
	out := map[string]any{"executions": nonNil(items)}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func getExecutionHistory(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		ExecutionArn         string `json:"executionArn"`
		MaxResults           int    `json:"maxResults"`
		NextToken            string `json:"nextToken"`
		ReverseOrder         bool   `json:"reverseOrder"`
		IncludeExecutionData *bool  `json:"includeExecutionData"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	events, err := e.History(in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	if in.ReverseOrder {
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
	}
	from, to, next, err := page(len(events), in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	withData := in.IncludeExecutionData == nil || *in.IncludeExecutionData
	var items []map[string]any
	for _, ev := range events[from:to] {
		items = append(items, eventJSON(ev, withData))
	}
	out := map[string]any{"events": nonNil(items)}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

// eventJSON is a history event with its details under the member the API
// uses for its type.
func eventJSON(ev asl.Event, withData bool) map[string]any {
	m := map[string]any{
		"id": ev.ID, "previousEventId": ev.PreviousID, "timestamp": epoch(ev.Timestamp), "type": string(ev.Type),
	}
	d := map[string]any{}
	data := func(key, val string) {
		if withData {
			d[key] = val
			d[key+"Details"] = map[string]bool{"truncated": false}
		}
	}
	errCause := func() {
		if ev.Error != "" {
			d["error"] = ev.Error
		}
		if ev.Cause != "" {
			d["cause"] = ev.Cause
		}
	}
	task := func() {
		d["resourceType"], d["resource"] = ev.ResourceType, ev.Resource
	}
	var member string
	switch t := string(ev.Type); {
	case ev.Type == asl.EventExecutionStarted:
		member = "executionStartedEventDetails"
		data("input", ev.Input)
		if ev.RoleARN != "" {
			d["roleArn"] = ev.RoleARN
		}
	case ev.Type == asl.EventExecutionSucceeded:
		member = "executionSucceededEventDetails"
		data("output", ev.Output)
	case ev.Type == asl.EventExecutionFailed:
		member = "executionFailedEventDetails"
		errCause()
	case ev.Type == asl.EventExecutionAborted:
		member = "executionAbortedEventDetails"
		errCause()
	case ev.Type == asl.EventExecutionTimedOut:
		member = "executionTimedOutEventDetails"
		errCause()
	case strings.HasSuffix(t, "StateEntered"):
		member = "stateEnteredEventDetails"
		d["name"] = ev.StateName
		data("input", ev.Input)
	case strings.HasSuffix(t, "StateExited"):
		member = "stateExitedEventDetails"
		d["name"] = ev.StateName
		data("output", ev.Output)
	case ev.Type == asl.EventTaskScheduled:
		member = "taskScheduledEventDetails"
		task()
		d["region"] = ev.Region
		d["parameters"] = ""
		if withData {
			d["parameters"] = ev.Parameters
		}
		if ev.TimeoutSeconds > 0 {
			d["timeoutInSeconds"] = ev.TimeoutSeconds
		}
	case ev.Type == asl.EventTaskStarted:
		member = "taskStartedEventDetails"
		task()
	case ev.Type == asl.EventTaskSubmitted:
		member = "taskSubmittedEventDetails"
		task()
		data("output", ev.Output)
	case ev.Type == asl.EventTaskSucceeded:
		member = "taskSucceededEventDetails"
		task()
		data("output", ev.Output)
	case ev.Type == asl.EventTaskFailed:
		member = "taskFailedEventDetails"
		task()
		errCause()
	case ev.Type == asl.EventTaskTimedOut:
		member = "taskTimedOutEventDetails"
		task()
		errCause()
	}
	if member != "" {
		m[member] = d
	}
	return m
}

func sendTaskSuccess(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		TaskToken string `json:"taskToken"`
		Output    string `json:"output"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return struct{}{}, e.SendTaskSuccess(in.TaskToken, in.Output)
}

func sendTaskFailure(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		TaskToken string `json:"taskToken"`
		Error     string `json:"error"`
		Cause     string `json:"cause"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return struct{}{}, e.SendTaskFailure(in.TaskToken, in.Error, in.Cause)
}

func sendTaskHeartbeat(e *asl.Engine, body []byte) (any, error) {
	var in struct {
		TaskToken string `json:"taskToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return struct{}{}, e.SendTaskHeartbeat(in.TaskToken)
}

func nonNil(list []map[string]any) []map[string]any {
	if list == nil {
		return []map[string]any{}
	}
	return list
}
