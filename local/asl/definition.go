package asl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The Task resources the engine runs: the optimized Lambda integration,
// request-response and callback.
const (
	ResourceLambdaInvoke         = "arn:aws:states:::lambda:invoke"
	ResourceLambdaInvokeCallback = "arn:aws:states:::lambda:invoke.waitForTaskToken"
)

// maxTaskTimeout is the default and the largest TimeoutSeconds of a Task.
const maxTaskTimeout = 99999999

// Definition is a state machine that passed every check of Parse.
type Definition struct {
	comment        string
	startAt        string
	timeoutSeconds int
	states         map[string]*state
	json           []byte
}

// JSON is the definition after substitution, as parsed.
func (d *Definition) JSON() []byte { return bytes.Clone(d.json) }

// StartAt is the first state.
func (d *Definition) StartAt() string { return d.startAt }

// StateNames lists the states, sorted.
func (d *Definition) StateNames() []string {
	names := make([]string, 0, len(d.states))
	for n := range d.states {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type state struct {
	name       string
	kind       string
	next       string
	end        bool
	inputPath  inputPath
	outputPath inputPath
	resultPath resultPath

	parameters     *template
	resultSelector *template
	result         any
	hasResult      bool

	callback       bool
	timeoutSeconds int
	retry          []retrier
	catch          []catcher

	choices []*rule
	deflt   string

	errName, cause string
}

type retrier struct {
	errorEquals []string
	interval    int
	maxAttempts int
	backoff     float64
	maxDelay    int
	// fullJitter: JitterStrategy FULL, each wait drawn from [0, the
	// computed backoff] (Options.Jitter).
	fullJitter bool
}

type catcher struct {
	errorEquals []string
	resultPath  resultPath
	next        string
}

// The fields each supported state type accepts, besides Type and Comment.
var stateFields = map[string][]string{
	"Task":    {"Resource", "Parameters", "ResultSelector", "ResultPath", "OutputPath", "InputPath", "TimeoutSeconds", "Retry", "Catch", "Next", "End"},
	"Pass":    {"Parameters", "Result", "ResultPath", "InputPath", "OutputPath", "Next", "End"},
	"Choice":  {"Choices", "Default", "InputPath", "OutputPath"},
	"Succeed": {"InputPath", "OutputPath"},
	"Fail":    {"Error", "Cause"},
}

var unsupportedStateTypes = map[string]bool{"Map": true, "Parallel": true, "Wait": true}

// The error names the States Language reserves.
var statesErrors = map[string]bool{
	"States.ALL": true, "States.HeartbeatTimeout": true, "States.Timeout": true,
	"States.TaskFailed": true, "States.Permissions": true, "States.ResultPathMatchFailure": true,
	"States.ParameterPathFailure": true, "States.QueryEvaluationError": true, "States.BranchFailed": true,
	"States.NoChoiceMatched": true, "States.IntrinsicFailure": true, "States.ExceedToleratedFailureThreshold": true,
	"States.ItemReaderFailed": true, "States.ResultWriterFailed": true, "States.Runtime": true,
	"States.DataLimitExceeded": true,
}

// Parse substitutes ${Name} placeholders from substitutions (as SAM's
// DefinitionSubstitutions do), then parses and checks the definition. Any
// feature the engine does not run is an error naming it.
func Parse(definition []byte, substitutions map[string]string) (*Definition, error) {
	text, err := Substitute(definition, substitutions)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(text)
	if err != nil {
		return nil, fmt.Errorf("asl: definition is not valid JSON: %w", err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("asl: definition must be a JSON object")
	}
	d := &Definition{json: text, states: map[string]*state{}}
	for _, k := range sortedKeys(top) {
		switch k {
		case "Comment", "StartAt", "States", "TimeoutSeconds":
		default:
			return nil, fmt.Errorf("asl: field %q is not supported by the local engine", k)
		}
	}
	if d.comment, err = optString(top, "Comment"); err != nil {
		return nil, fmt.Errorf("asl: %w", err)
	}
	if d.startAt, err = optString(top, "StartAt"); err != nil || d.startAt == "" {
		return nil, errors.New("asl: StartAt must name a state")
	}
	if d.timeoutSeconds, err = optPositiveInt(top, "TimeoutSeconds", math.MaxInt32); err != nil {
		return nil, fmt.Errorf("asl: %w", err)
	}
	states, ok := top["States"].(map[string]any)
	if !ok || len(states) == 0 {
		return nil, errors.New("asl: States must be a non-empty object")
	}
	for _, name := range sortedKeys(states) {
		m, ok := states[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("asl: state %q must be an object", name)
		}
		st, err := parseState(name, m)
		if err != nil {
			return nil, err
		}
		d.states[name] = st
	}
	if err := d.checkTransitions(); err != nil {
		return nil, err
	}
	return d, nil
}

func parseState(name string, m map[string]any) (*state, error) {
	where := fmt.Sprintf("state %q", name)
	errf := func(format string, args ...any) error {
		return fmt.Errorf("asl: "+where+": "+format, args...)
	}
	if len(name) == 0 || len(name) > 80 {
		return nil, errf("a state name must have 1 to 80 characters")
	}
	kind, _ := m["Type"].(string)
	if unsupportedStateTypes[kind] {
		return nil, errf("state type %q is not supported by the local engine", kind)
	}
	allowed, ok := stateFields[kind]
	if !ok {
		return nil, errf("state type %q is not a States Language state type", kind)
	}
	for _, k := range sortedKeys(m) {
		if k == "Type" || k == "Comment" || contains(allowed, k) {
			continue
		}
		return nil, errf("field %q is not supported by the local engine", k)
	}
	st := &state{name: name, kind: kind}
	var err error
	if _, err = optString(m, "Comment"); err != nil {
		return nil, errf("%v", err)
	}
	// Transitions.
	if contains(allowed, "Next") {
		next, err := optString(m, "Next")
		if err != nil {
			return nil, errf("%v", err)
		}
		end, err := optBool(m, "End")
		if err != nil {
			return nil, errf("%v", err)
		}
		switch {
		case next != "" && end:
			return nil, errf("Next and End cannot both be set")
		case next == "" && !end:
			return nil, errf("needs Next or \"End\": true")
		}
		st.next, st.end = next, end
	}
	// Paths.
	for _, f := range []struct {
		field string
		dst   *inputPath
	}{{"InputPath", &st.inputPath}, {"OutputPath", &st.outputPath}} {
		if raw, ok := m[f.field]; ok {
			if *f.dst, err = parseInputPath(raw, f.field); err != nil {
				return nil, errf("%v", err)
			}
		}
	}
	if raw, ok := m["ResultPath"]; ok {
		if st.resultPath, err = parseResultPath(raw, "ResultPath"); err != nil {
			return nil, errf("%v", err)
		}
	}
	if raw, ok := m["Parameters"]; ok {
		if _, isObj := raw.(map[string]any); !isObj {
			return nil, errf("Parameters must be an object")
		}
		if st.parameters, err = compileTemplate(raw, "asl: "+where+": Parameters"); err != nil {
			return nil, err
		}
	}
	if raw, ok := m["ResultSelector"]; ok {
		if _, isObj := raw.(map[string]any); !isObj {
			return nil, errf("ResultSelector must be an object")
		}
		if st.resultSelector, err = compileTemplate(raw, "asl: "+where+": ResultSelector"); err != nil {
			return nil, err
		}
		for _, p := range st.resultSelector.paths() {
			if p.context && len(p.steps) > 0 && p.steps[0].key == "Task" {
				return nil, errf("ResultSelector: $$.Task is not available after the task has run")
			}
		}
	}
	switch kind {
	case "Task":
		err = parseTask(st, m)
	case "Pass":
		st.result, st.hasResult = m["Result"]
	case "Choice":
		err = parseChoice(st, m)
	case "Fail":
		if st.errName, err = optString(m, "Error"); err == nil {
			st.cause, err = optString(m, "Cause")
		}
	}
	if err != nil {
		return nil, errf("%v", err)
	}
	if !st.callback {
		for _, p := range st.parameters.paths() {
			if p.context && len(p.steps) > 0 && p.steps[0].key == "Task" {
				return nil, errf("Parameters: $$.Task.Token exists only in a %s task", ResourceLambdaInvokeCallback)
			}
		}
	}
	return st, nil
}

func parseTask(st *state, m map[string]any) error {
	res, _ := m["Resource"].(string)
	switch res {
	case ResourceLambdaInvoke:
	case ResourceLambdaInvokeCallback:
		st.callback = true
	case "":
		return errors.New("a Task needs a Resource")
	default:
		return fmt.Errorf("Resource %q is not supported by the local engine (only %s and %s)", res, ResourceLambdaInvoke, ResourceLambdaInvokeCallback)
	}
	if st.parameters == nil {
		return errors.New("a lambda:invoke Task needs Parameters with FunctionName and Payload")
	}
	for _, f := range st.parameters.fields {
		switch f.name {
		case "FunctionName", "Payload":
		default:
			return fmt.Errorf("Parameters field %q of lambda:invoke is not supported by the local engine", f.name)
		}
	}
	if st.parameters.fieldNamed("FunctionName") == nil {
		return errors.New("Parameters needs FunctionName")
	}
	if st.parameters.fieldNamed("Payload") == nil {
		return errors.New("Parameters needs Payload (the local engine does not guess an empty payload)")
	}
	if st.callback {
		found := false
		for _, p := range st.parameters.paths() {
			if p.context && p.text == "$$.Task.Token" {
				found = true
			}
		}
		if !found {
			return errors.New("a .waitForTaskToken task must pass $$.Task.Token in its Parameters")
		}
	}
	var err error
	if st.timeoutSeconds, err = optPositiveInt(m, "TimeoutSeconds", maxTaskTimeout); err != nil {
		return err
	}
	if raw, ok := m["Retry"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return errors.New("Retry must be an array")
		}
		for i, item := range list {
			r, err := parseRetrier(item, i, i == len(list)-1)
			if err != nil {
				return err
			}
			st.retry = append(st.retry, r)
		}
	}
	if raw, ok := m["Catch"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return errors.New("Catch must be an array")
		}
		for i, item := range list {
			c, err := parseCatcher(item, i, i == len(list)-1)
			if err != nil {
				return err
			}
			st.catch = append(st.catch, c)
		}
	}
	return nil
}

func parseErrorEquals(m map[string]any, where string, last bool) ([]string, error) {
	list, ok := m["ErrorEquals"].([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("%s: ErrorEquals must be a non-empty array of error names", where)
	}
	var out []string
	for _, item := range list {
		s, ok := item.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("%s: ErrorEquals must hold error names", where)
		}
		if strings.HasPrefix(s, "States.") && !statesErrors[s] {
			return nil, fmt.Errorf("%s: %q is not an error name of the States Language", where, s)
		}
		if s == ErrorAll && (len(list) > 1 || !last) {
			return nil, fmt.Errorf("%s: States.ALL must appear alone, in the last element", where)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseRetrier(item any, i int, last bool) (retrier, error) {
	where := fmt.Sprintf("Retry[%d]", i)
	m, ok := item.(map[string]any)
	if !ok {
		return retrier{}, fmt.Errorf("%s must be an object", where)
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy":
		default:
			return retrier{}, fmt.Errorf("%s: field %q is not supported by the local engine", where, k)
		}
	}
	r := retrier{interval: 1, maxAttempts: 3, backoff: 2}
	var err error
	if r.errorEquals, err = parseErrorEquals(m, where, last); err != nil {
		return r, err
	}
	if _, ok := m["IntervalSeconds"]; ok {
		if r.interval, err = optPositiveInt(m, "IntervalSeconds", maxTaskTimeout); err != nil {
			return r, fmt.Errorf("%s: %w", where, err)
		}
	}
	if raw, ok := m["MaxAttempts"]; ok {
		n, ok := intValue(raw)
		if !ok || n < 0 || n > maxTaskTimeout {
			return r, fmt.Errorf("%s: MaxAttempts must be a non-negative integer", where)
		}
		r.maxAttempts = int(n)
	}
	if raw, ok := m["BackoffRate"]; ok {
		f, ok := number(raw)
		if !ok || f < 1 {
			return r, fmt.Errorf("%s: BackoffRate must be a number >= 1.0", where)
		}
		r.backoff = f
	}
	if r.maxDelay, err = optPositiveInt(m, "MaxDelaySeconds", 31622400); err != nil {
		return r, fmt.Errorf("%s: %w", where, err)
	}
	if raw, ok := m["JitterStrategy"]; ok {
		switch raw {
		case "FULL":
			r.fullJitter = true
		case "NONE":
		default:
			return r, fmt.Errorf("%s: JitterStrategy must be FULL or NONE", where)
		}
	}
	return r, nil
}

func parseCatcher(item any, i int, last bool) (catcher, error) {
	where := fmt.Sprintf("Catch[%d]", i)
	m, ok := item.(map[string]any)
	if !ok {
		return catcher{}, fmt.Errorf("%s must be an object", where)
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "ErrorEquals", "ResultPath", "Next":
		default:
			return catcher{}, fmt.Errorf("%s: field %q is not supported by the local engine", where, k)
		}
	}
	c := catcher{}
	var err error
	if c.errorEquals, err = parseErrorEquals(m, where, last); err != nil {
		return c, err
	}
	if raw, ok := m["ResultPath"]; ok {
		if c.resultPath, err = parseResultPath(raw, "ResultPath"); err != nil {
			return c, fmt.Errorf("%s: %w", where, err)
		}
	}
	if c.next, _ = m["Next"].(string); c.next == "" {
		return c, fmt.Errorf("%s: Next must name a state", where)
	}
	return c, nil
}

func parseChoice(st *state, m map[string]any) error {
	list, ok := m["Choices"].([]any)
	if !ok || len(list) == 0 {
		return errors.New("Choices must be a non-empty array")
	}
	for i, item := range list {
		rm, ok := item.(map[string]any)
		if !ok {
			return fmt.Errorf("Choices[%d] must be an object", i)
		}
		r, err := parseRule(rm, true, fmt.Sprintf("Choices[%d]", i))
		if err != nil {
			return err
		}
		st.choices = append(st.choices, r)
	}
	var err error
	st.deflt, err = optString(m, "Default")
	return err
}

// checkTransitions: every target exists and every state is reachable.
func (d *Definition) checkTransitions() error {
	if d.states[d.startAt] == nil {
		return fmt.Errorf("asl: StartAt %q is not a state", d.startAt)
	}
	seen := map[string]bool{}
	queue := []string{d.startAt}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		st := d.states[name]
		var targets []string
		add := func(field, t string) error {
			if t == "" {
				return nil
			}
			if d.states[t] == nil {
				return fmt.Errorf("asl: state %q: %s %q is not a state", name, field, t)
			}
			targets = append(targets, t)
			return nil
		}
		if err := add("Next", st.next); err != nil {
			return err
		}
		if err := add("Default", st.deflt); err != nil {
			return err
		}
		for i, r := range st.choices {
			if err := add(fmt.Sprintf("Choices[%d].Next", i), r.next); err != nil {
				return err
			}
		}
		for i, c := range st.catch {
			if err := add(fmt.Sprintf("Catch[%d].Next", i), c.next); err != nil {
				return err
			}
		}
		queue = append(queue, targets...)
	}
	for _, name := range d.StateNames() {
		if !seen[name] {
			return fmt.Errorf("asl: state %q is not reachable from StartAt", name)
		}
	}
	return nil
}

// Substitute replaces every ${Name} with substitutions[Name], JSON-escaped
// when the placeholder sits inside a string. An unknown name is an error.
func Substitute(definition []byte, substitutions map[string]string) ([]byte, error) {
	var out bytes.Buffer
	inString := false
	for i := 0; i < len(definition); i++ {
		c := definition[i]
		switch {
		case inString && c == '\\' && i+1 < len(definition):
			out.WriteByte(c)
			out.WriteByte(definition[i+1])
			i++
			continue
		case c == '"':
			inString = !inString
		case c == '$' && i+1 < len(definition) && definition[i+1] == '{':
			end := bytes.IndexByte(definition[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("asl: unterminated placeholder at offset %d", i)
			}
			name := string(definition[i+2 : i+end])
			val, ok := substitutions[name]
			if !ok {
				return nil, fmt.Errorf("asl: placeholder ${%s} has no substitution", name)
			}
			if inString {
				enc, _ := marshalJSON(val)
				out.Write(enc[1 : len(enc)-1])
			} else {
				out.WriteString(val)
			}
			i += end
			continue
		}
		out.WriteByte(c)
	}
	return out.Bytes(), nil
}

// decodeJSON decodes one JSON value keeping numbers as json.Number.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// marshalJSON encodes v compactly without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func optString(m map[string]any, key string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", nil
	}
	s, ok := raw.(string)
	if !ok {
		return "", fmt.Errorf("field %q must be a string", key)
	}
	return s, nil
}

func optBool(m map[string]any, key string) (bool, error) {
	raw, ok := m[key]
	if !ok {
		return false, nil
	}
	b, ok := raw.(bool)
	if !ok {
		return false, fmt.Errorf("field %q must be true or false", key)
	}
	return b, nil
}

// optPositiveInt reads an optional integer in [1, max]; 0 means absent.
func optPositiveInt(m map[string]any, key string, max int64) (int, error) {
	raw, ok := m[key]
	if !ok {
		return 0, nil
	}
	n, ok := intValue(raw)
	if !ok || n < 1 || n > max {
		return 0, fmt.Errorf("field %q must be an integer from 1 to %d", key, max)
	}
	return int(n), nil
}

func intValue(raw any) (int64, bool) {
	num, ok := raw.(json.Number)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	return n, err == nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
