package sam_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/sam"
)

const rulesTemplate = `
Transform: AWS::Serverless-2016-10-31
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties: { Name: app }
  QueueDLQ:
    Type: AWS::SQS::Queue
  ResumeRunsFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: bootstrap
      Events:
        Updated:
          Type: EventBridgeRule
          Properties:
            EventBusName: !GetAtt Bus.Name
            Pattern: { source: [connmgr.connections], detail: { version: [{ numeric: [">", 1] }] } }
            InputPath: $.detail
            RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 600 }
            DeadLetterConfig: { Arn: !GetAtt QueueDLQ.Arn }
            Target: { Id: ResumeTarget }
        Legacy:
          Type: CloudWatchEvent
          Properties: { Pattern: { source: [aws.ec2] } }
        Api:
          Type: HttpApi
          Properties: { Method: GET, Path: /x }
  ExpiryCheckFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: bootstrap
      Events:
        Tick:
          Type: Schedule
          Properties: { Schedule: "cron(0 * * * ? *)", Input: '{"a":1}', State: DISABLED }
        Untyped:
          Type: Schedule
          Properties: { Schedule: rate(1 day), RetryPolicy: { MaximumRetryAttempts: 0 } }
  NightlyRule:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 day)
      Targets:
        - { Id: Expiry, Arn: !GetAtt ExpiryCheckFunction.Arn, Input: '{"full":true}' }
        - { Id: Elsewhere, Arn: !GetAtt QueueDLQ.Arn }
`

func TestEventRules(t *testing.T) {
	tmpl, err := sam.Parse("/repo", []byte(rulesTemplate))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := tmpl.EventRules()
	if err != nil {
		t.Fatal(err)
	}
	fnTarget := func(fn, id string) sam.EventTarget {
		return sam.EventTarget{ID: id, Function: fn, Arn: "getatt:" + fn + ".Arn"}
	}
	resume := fnTarget("ResumeRunsFunction", "ResumeTarget")
	resume.InputPath = "$.detail"
	resume.RetryPolicy = &sam.RetryPolicy{MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 600}
	resume.DeadLetterConfig = map[string]any{"Arn": "getatt:QueueDLQ.Arn"}
	tick := fnTarget("ExpiryCheckFunction", "ExpiryCheckFunctionTickLambdaTarget")
	tick.Input = `{"a":1}`
	untyped := fnTarget("ExpiryCheckFunction", "ExpiryCheckFunctionUntypedLambdaTarget")
	untyped.RetryPolicy = &sam.RetryPolicy{}
	want := []sam.EventRule{
		{Name: "ExpiryCheckFunctionTick", Kind: sam.RuleSchedule, EventBus: "default", Schedule: "cron(0 * * * ? *)",
			Enabled: false, Targets: []sam.EventTarget{tick}},
		{Name: "ExpiryCheckFunctionUntyped", Kind: sam.RuleSchedule, EventBus: "default", Schedule: "rate(1 day)",
			Enabled: true, Targets: []sam.EventTarget{untyped}},
		{Name: "NightlyRule", Kind: sam.RuleResource, EventBus: "default", Schedule: "rate(1 day)", Enabled: true,
			Targets: []sam.EventTarget{
				{ID: "Expiry", Function: "ExpiryCheckFunction", Arn: "getatt:ExpiryCheckFunction.Arn", Input: `{"full":true}`},
				{ID: "Elsewhere", Arn: "getatt:QueueDLQ.Arn"},
			}},
		{Name: "ResumeRunsFunctionLegacy", Kind: sam.RuleCloudWatch, EventBus: "default",
			Pattern: map[string]any{"source": []any{"aws.ec2"}}, Enabled: true,
			Targets: []sam.EventTarget{fnTarget("ResumeRunsFunction", "ResumeRunsFunctionLegacyLambdaTarget")}},
		{Name: "ResumeRunsFunctionUpdated", Kind: sam.RuleEventBridge, EventBus: "Bus",
			Pattern: map[string]any{"source": []any{"connmgr.connections"},
				"detail": map[string]any{"version": []any{map[string]any{"numeric": []any{">", 1}}}}},
			Enabled: true, Targets: []sam.EventTarget{resume}},
	}
	if !reflect.DeepEqual(rules, want) {
		for i := range max(len(rules), len(want)) {
			if i >= len(rules) || i >= len(want) || !reflect.DeepEqual(rules[i], want[i]) {
				var got, exp any
				if i < len(rules) {
					got = rules[i]
				}
				if i < len(want) {
					exp = want[i]
				}
				t.Errorf("rule %d:\n got %#v\nwant %#v", i, got, exp)
			}
		}
	}

	// Why the rules are read from the raw template: goformation v7.14.9
	// decodes event Properties with DisallowUnknownFields, so these events
	// come out with no typed Properties at all.
	res := tmpl.CF.GetAllServerlessFunctionResources()
	if p := res["ResumeRunsFunction"].Events["Updated"].Properties; p != nil && p.EventBridgeRuleEvent != nil {
		t.Error("goformation now types an EventBridgeRule with RetryPolicy: reconsider reading the raw template")
	}
	if p := res["ExpiryCheckFunction"].Events["Untyped"].Properties; p != nil && p.ScheduleEvent != nil {
		t.Error("goformation now types a Schedule with RetryPolicy: reconsider reading the raw template")
	}
}

func TestEventRulesRejects(t *testing.T) {
	for _, tc := range []struct{ events, text string }{
		{`{ E: { Type: ScheduleV2, Properties: { ScheduleExpression: rate(1 hour) } } }`, "ScheduleV2"},
		{`{ E: { Type: Schedule, Properties: { Enabled: true } } }`, "Schedule is required"},
		{`{ E: { Type: EventBridgeRule, Properties: { EventBusName: default } } }`, "Pattern must be a mapping"},
		{`{ E: { Type: Schedule, Properties: { Schedule: rate(1 hour), Input: { a: 1 } } } }`, "Input must be a string"},
	} {
		doc := "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: bootstrap\n      Events: " + tc.events + "\n"
		tmpl, err := sam.Parse("/repo", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmpl.EventRules(); err == nil || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.events, err, tc.text)
		}
	}
}

func TestBusName(t *testing.T) {
	for in, want := range map[string]string{
		"": "default", "default": "default", "app": "app", "ref:AppBus": "AppBus", "getatt:AppBus.Name": "AppBus",
		"getatt:AppBus.Arn": "AppBus", "arn:aws:events:us-east-1:111122223333:event-bus/app": "app",
	} {
		if got := sam.BusName(in); got != want {
			t.Errorf("BusName(%q) = %q, want %q", in, got, want)
		}
	}
}
