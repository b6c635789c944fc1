package sam

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Kinds of EventRule, by how the template declares the rule.
const (
	RuleEventBridge = "EventBridgeRule"   // a function event of Type EventBridgeRule
	RuleCloudWatch  = "CloudWatchEvent"   // a function event of Type CloudWatchEvent
	RuleSchedule    = "Schedule"          // a function event of Type Schedule
	RuleResource    = "AWS::Events::Rule" // a rule resource with function targets
	DefaultEventBus = "default"
)

// EventRule is an EventBridge rule of the template: a function's
// EventBridgeRule, CloudWatchEvent or Schedule event (SAM generates an
// AWS::Events::Rule for each), or an AWS::Events::Rule resource.
//
// Rules are read from the raw template, not from goformation's typed
// events: goformation v7.14.9 decodes event Properties with
// DisallowUnknownFields, so an EventBridgeRule with RetryPolicy,
// DeadLetterConfig, Target, RuleName, State or InputTransformer, or a
// Schedule with State, RetryPolicy or DeadLetterConfig, comes out with nil
// typed Properties (and ScheduleV2 always does).
type EventRule struct {
	// Name is the rule's logical id: the resource's own, or
	// <FunctionLogicalID><EventName> for a function event, the logical id
	// SAM gives the rule it generates.
	Name string
	// Kind is one of RuleEventBridge, RuleCloudWatch, RuleSchedule,
	// RuleResource.
	Kind string
	// EventBus is the bus the rule listens on: DefaultEventBus, a bus name,
	// or the logical id of the bus resource a reference names (Ref Bus,
	// GetAtt Bus.Name, GetAtt Bus.Arn all give "Bus"). Schedules are on the
	// default bus.
	EventBus string
	// Pattern is the event pattern as generic JSON values; nil for a
	// schedule.
	Pattern map[string]any
	// Schedule is the schedule expression ("rate(1 hour)",
	// "cron(0 * * * ? *)"); "" for a pattern rule.
	Schedule string
	// Enabled is false when the template disables the rule (Enabled: false
	// or State: DISABLED).
	Enabled bool
	// Targets are the rule's targets; a function event has exactly one.
	Targets []EventTarget
}

// EventTarget is one target of a rule.
type EventTarget struct {
	ID string
	// Function is the logical id of the target function; "" when Arn is not
	// a function of this template.
	Function string
	// Arn is the target's Arn as written, with references as markers
	// ("getatt:ExpiryCheckFunction.Arn"); for a function event it is the
	// marker of the function's Arn.
	Arn string
	// Input is a constant JSON text sent instead of the event; "" sends the
	// event (or InputPath's part of it).
	Input string
	// InputPath is a JSONPath selecting the part of the event sent.
	InputPath string
	// InputTransformer is set when the target declares one.
	InputTransformer map[string]any
	// RetryPolicy and DeadLetterConfig are the target's delivery settings,
	// the latter as written.
	RetryPolicy      *RetryPolicy
	DeadLetterConfig map[string]any
}

// RetryPolicy is a target's RetryPolicy.
type RetryPolicy struct {
	MaximumEventAgeInSeconds int
	MaximumRetryAttempts     int
}

// EventRules lists the template's rules that target functions, sorted by
// name: every function event of Type EventBridgeRule, CloudWatchEvent or
// Schedule, and every AWS::Events::Rule. A ScheduleV2 event is an error
// (EventBridge Scheduler is a different service; use Schedule).
func (t *Template) EventRules() ([]EventRule, error) {
	resources, _ := path(t.raw, "Resources").(map[string]any)
	functions := map[string]bool{}
	for id, r := range resources {
		switch typ, _ := path(r, "Type").(string); typ {
		case "AWS::Serverless::Function", "AWS::Lambda::Function":
			functions[id] = true
		}
	}
	var out []EventRule
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		res := resources[id]
		switch typ, _ := path(res, "Type").(string); typ {
		case "AWS::Serverless::Function":
			events, _ := path(res, "Properties", "Events").(map[string]any)
			for _, name := range slices.Sorted(maps.Keys(events)) {
				r, ok, err := functionEventRule(id, name, events[name])
				if err != nil {
					return nil, err
				}
				if ok {
					out = append(out, r)
				}
			}
		case "AWS::Events::Rule":
			r, err := resourceRule(id, path(res, "Properties"), functions)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b EventRule) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func functionEventRule(fn, name string, ev any) (EventRule, bool, error) {
	typ, _ := path(ev, "Type").(string)
	props, _ := path(ev, "Properties").(map[string]any)
	fail := func(format string, args ...any) (EventRule, bool, error) {
		return EventRule{}, false, fmt.Errorf("sam: %s event %s: %s", fn, name, fmt.Sprintf(format, args...))
	}
	r := EventRule{Name: fn + name, Kind: typ, EventBus: DefaultEventBus, Enabled: true}
	tg := EventTarget{ID: fn + name + "LambdaTarget", Function: fn, Arn: markGetAtt + fn + ".Arn"}
	switch typ {
	case RuleEventBridge, RuleCloudWatch:
		pattern, ok := props["Pattern"].(map[string]any)
		if !ok {
			return fail("Pattern must be a mapping")
		}
		r.Pattern = pattern
		if typ == RuleEventBridge {
			if v, ok := props["EventBusName"]; ok {
				s, ok := v.(string)
				if !ok {
					return fail("EventBusName must be a string or a reference")
				}
				r.EventBus = BusName(s)
			}
			if id, ok := path(props, "Target", "Id").(string); ok {
				tg.ID = id
			}
		}
	case RuleSchedule:
		s, ok := props["Schedule"].(string)
		if !ok || s == "" {
			return fail("Schedule is required")
		}
		r.Schedule = s
		if v, ok := props["Enabled"]; ok {
			b, ok := v.(bool)
			if !ok {
				return fail("Enabled must be true or false")
			}
			r.Enabled = b
		}
	case "ScheduleV2":
		return fail("Type ScheduleV2 (EventBridge Scheduler) is not supported locally; use Type Schedule")
	default:
		return EventRule{}, false, nil
	}
	if state, ok := props["State"].(string); ok {
		r.Enabled = state != "DISABLED"
	}
	if err := readTarget(&tg, props); err != nil {
		return fail("%v", err)
	}
	r.Targets = []EventTarget{tg}
	return r, true, nil
}

func resourceRule(id string, props any, functions map[string]bool) (EventRule, error) {
	r := EventRule{Name: id, Kind: RuleResource, EventBus: DefaultEventBus, Enabled: true}
	if v, ok := path(props, "EventBusName").(string); ok {
		r.EventBus = BusName(v)
	}
	if v, ok := path(props, "State").(string); ok {
		r.Enabled = v != "DISABLED"
	}
	r.Schedule, _ = path(props, "ScheduleExpression").(string)
	if p := path(props, "EventPattern"); p != nil {
		m, ok := p.(map[string]any)
		if !ok {
			return EventRule{}, fmt.Errorf("sam: %s EventPattern must be a mapping", id)
		}
		r.Pattern = m
	}
	if (r.Pattern == nil) == (r.Schedule == "") {
		return EventRule{}, fmt.Errorf("sam: %s needs exactly one of EventPattern and ScheduleExpression", id)
	}
	targets, _ := path(props, "Targets").([]any)
	for i, raw := range targets {
		m, ok := raw.(map[string]any)
		if !ok {
			return EventRule{}, fmt.Errorf("sam: %s Targets[%d] is not a mapping", id, i)
		}
		tg := EventTarget{}
		tg.ID, _ = m["Id"].(string)
		tg.Arn, _ = m["Arn"].(string)
		if fn, ok := functionOfArn(tg.Arn); ok && functions[fn] {
			tg.Function = fn
		}
		if err := readTarget(&tg, m); err != nil {
			return EventRule{}, fmt.Errorf("sam: %s Targets[%d]: %w", id, i, err)
		}
		r.Targets = append(r.Targets, tg)
	}
	return r, nil
}

// readTarget reads the properties a SAM event and a rule target share.
func readTarget(tg *EventTarget, m map[string]any) error {
	if v, ok := m["Input"]; ok {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("Input must be a string of JSON")
		}
		tg.Input = s
	}
	if v, ok := m["InputPath"]; ok {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("InputPath must be a string")
		}
		tg.InputPath = s
	}
	if v, ok := m["InputTransformer"].(map[string]any); ok {
		tg.InputTransformer = v
	}
	if v, ok := m["RetryPolicy"].(map[string]any); ok {
		rp := &RetryPolicy{}
		rp.MaximumEventAgeInSeconds, _ = v["MaximumEventAgeInSeconds"].(int)
		rp.MaximumRetryAttempts, _ = v["MaximumRetryAttempts"].(int)
		tg.RetryPolicy = rp
	}
	if v, ok := m["DeadLetterConfig"].(map[string]any); ok {
		tg.DeadLetterConfig = v
	}
	return nil
}

// BusName is the local name of the event bus an EventBusName value names:
// DefaultEventBus for "" or "default", X for the markers of Ref X,
// GetAtt X.Name and GetAtt X.Arn, NAME for an event-bus ARN
// (arn:aws:events:<region>:<account>:event-bus/NAME), else the value.
func BusName(v string) string {
	if v == "" {
		return DefaultEventBus
	}
	if x, ok := RefTarget(v); ok {
		return x
	}
	if x, ok := GetAttTarget(v); ok {
		if res, attr, found := strings.Cut(x, "."); found && (attr == "Name" || attr == "Arn") {
			return res
		}
		return x
	}
	if strings.HasPrefix(v, "arn:") {
		if _, name, ok := strings.Cut(v, ":event-bus/"); ok {
			return name
		}
	}
	return v
}

// functionOfArn returns X when arn is the marker of GetAtt X.Arn, of
// Sub "${X.Arn}", or of Ref X.
func functionOfArn(arn string) (string, bool) {
	if x, ok := GetAttTarget(arn); ok {
		return strings.CutSuffix(x, ".Arn")
	}
	if x, ok := strings.CutPrefix(arn, markSub); ok {
		if inner, ok := strings.CutPrefix(x, "${"); ok {
			if inner, ok := strings.CutSuffix(inner, ".Arn}"); ok {
				return inner, true
			}
		}
		return "", false
	}
	return RefTarget(arn)
}
