package asl_test

import (
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/asl"
)

// task is a minimal lambda:invoke Task with extra fields spliced in.
func task(extra string) string {
	return `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
		"Parameters":{"FunctionName":"fn","Payload":{}},` + extra + `"End":true}}}`
}

func pass(extra string) string {
	return `{"StartAt":"P","States":{"P":{"Type":"Pass",` + extra + `"End":true}}}`
}

func TestParseRefusesUnsupportedFeatures(t *testing.T) {
	for _, tc := range []struct{ name, def, want string }{
		{"Map", `{"StartAt":"M","States":{"M":{"Type":"Map","End":true}}}`, `state "M": state type "Map" is not supported by the local engine`},
		{"Parallel", `{"StartAt":"P","States":{"P":{"Type":"Parallel","Branches":[],"End":true}}}`, `state type "Parallel" is not supported`},
		{"Wait", `{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":5,"End":true}}}`, `state type "Wait" is not supported`},
		{"unknown type", `{"StartAt":"X","States":{"X":{"Type":"Sleep","End":true}}}`, `state type "Sleep" is not a States Language state type`},
		{"ItemsPath", pass(`"ItemsPath":"$.items",`), `state "P": field "ItemsPath" is not supported by the local engine`},
		{"HeartbeatSeconds", task(`"HeartbeatSeconds":60,`), `state "T": field "HeartbeatSeconds" is not supported`},
		{"TimeoutSecondsPath", task(`"TimeoutSecondsPath":"$.t",`), `field "TimeoutSecondsPath" is not supported`},
		{"Credentials", task(`"Credentials":{"RoleArn":"x"},`), `field "Credentials" is not supported`},
		{"Assign (variables)", pass(`"Assign":{"x":1},`), `field "Assign" is not supported`},
		{"QueryLanguage", `{"QueryLanguage":"JSONata","StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`, `field "QueryLanguage" is not supported`},
		{"Version", `{"Version":"1.0","StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`, `field "Version" is not supported`},
		{"Fail ErrorPath", `{"StartAt":"F","States":{"F":{"Type":"Fail","ErrorPath":"$.e"}}}`, `field "ErrorPath" is not supported`},
		{"Choice TimestampEquals", `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.t","TimestampEquals":"2020-01-01T00:00:00Z","Next":"E"}],"Default":"E"},"E":{"Type":"Succeed"}}}`, `operator "TimestampEquals" is not supported`},
		{"Choice Condition (JSONata)", `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Condition":"{% true %}","Next":"E"}]},"E":{"Type":"Succeed"}}}`, `field "Condition" is not supported`},
		{"dynamodb resource", strings.Replace(task(""), "arn:aws:states:::lambda:invoke", "arn:aws:states:::dynamodb:putItem", 1), `Resource "arn:aws:states:::dynamodb:putItem" is not supported by the local engine`},
		{"legacy Lambda ARN resource", strings.Replace(task(""), "arn:aws:states:::lambda:invoke", "arn:aws:lambda:us-east-1:111122223333:function:f", 1), `Resource "arn:aws:lambda:us-east-1:111122223333:function:f" is not supported`},
		{".sync resource", strings.Replace(task(""), "arn:aws:states:::lambda:invoke", "arn:aws:states:::states:startExecution.sync:2", 1), `is not supported`},
		{"lambda:invoke InvocationType", strings.Replace(task(""), `"Payload":{}`, `"Payload":{},"InvocationType":"Event"`, 1), `Parameters field "InvocationType" of lambda:invoke is not supported`},
		{"States.Format", pass(`"Parameters":{"m.$":"States.Format('hi {}', $.n)"},`), `field "m.$": intrinsic function States.Format is not supported by the local engine`},
		{"States.StringToJson", pass(`"Parameters":{"m.$":"States.StringToJson($.s)"},`), `intrinsic function States.StringToJson is not supported`},
		{"wildcard path", pass(`"Parameters":{"m.$":"$.a[*].b"},`), `wildcard '[*]' is not supported`},
		{"recursive descent", pass(`"Parameters":{"m.$":"$..b"},`), `recursive descent '..' is not supported`},
		{"filter", pass(`"Parameters":{"m.$":"$.a[?(@.x == 1)]"},`), `filter expression is not supported`},
		{"slice", pass(`"Parameters":{"m.$":"$.a[0:2]"},`), `slice or union '[0:2]' is not supported`},
		{"Comment in a retrier", task(`"Retry":[{"ErrorEquals":["X"],"Comment":"c"}],`), `Retry[0]: field "Comment" is not supported`},
		{"context path in InputPath", pass(`"InputPath":"$$.Execution.Input",`), `context object paths ($$) are not supported`},
		{"array index in ResultPath", pass(`"ResultPath":"$.a[0]",`), `an array index in a ResultPath is not supported`},
		{"no Payload", strings.Replace(task(""), `,"Payload":{}`, ``, 1), `Parameters needs Payload`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := asl.Parse([]byte(tc.def), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "asl: ") {
				t.Errorf("error %q lacks the asl: prefix", err)
			}
		})
	}
}

func TestParseChecksStructure(t *testing.T) {
	callback := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken",
		"Parameters":{"FunctionName":"fn","Payload":{"x.$":"$.x"}},"End":true}}}`
	for _, tc := range []struct{ name, def, want string }{
		{"bad Next", `{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"}}}`, `state "A": Next "B" is not a state`},
		{"bad StartAt", `{"StartAt":"Z","States":{"A":{"Type":"Pass","End":true}}}`, `StartAt "Z" is not a state`},
		{"unreachable", `{"StartAt":"A","States":{"A":{"Type":"Pass","End":true},"B":{"Type":"Pass","End":true}}}`, `state "B" is not reachable`},
		{"Next and End", pass(`"Next":"P",`), `Next and End cannot both be set`},
		{"no transition", `{"StartAt":"A","States":{"A":{"Type":"Pass"}}}`, `needs Next or "End": true`},
		{"States.ALL not alone", task(`"Retry":[{"ErrorEquals":["States.ALL","X"]}],`), `States.ALL must appear alone, in the last element`},
		{"States.ALL not last", task(`"Catch":[{"ErrorEquals":["States.ALL"],"Next":"T"},{"ErrorEquals":["X"],"Next":"T"}],`), `Catch[0]: States.ALL must appear alone`},
		{"typo in error name", task(`"Catch":[{"ErrorEquals":["States.Timout"],"Next":"T"}],`), `"States.Timout" is not an error name`},
		{"fractional TimeoutSeconds", task(`"TimeoutSeconds":1.5,`), `field "TimeoutSeconds" must be an integer`},
		{"zero TimeoutSeconds", task(`"TimeoutSeconds":0,`), `field "TimeoutSeconds" must be an integer`},
		{"BackoffRate below 1", task(`"Retry":[{"ErrorEquals":["X"],"BackoffRate":0.5}],`), `BackoffRate must be a number >= 1.0`},
		{"JitterStrategy neither FULL nor NONE", task(`"Retry":[{"ErrorEquals":["X"],"JitterStrategy":"PARTIAL"}],`), `Retry[0]: JitterStrategy must be FULL or NONE`},
		{"JitterStrategy lower case", task(`"Retry":[{"ErrorEquals":["X"],"JitterStrategy":"full"}],`), `JitterStrategy must be FULL or NONE`},
		{"callback without token", callback, `must pass $$.Task.Token`},
		{"token outside callback", strings.Replace(task(""), `"Payload":{}`, `"Payload":{"t.$":"$$.Task.Token"}`, 1), `$$.Task.Token exists only in a`},
		{"value and path twice", pass(`"Parameters":{"a":1,"a.$":"$.a"},`), `field "a" is given both as a value and as a path`},
		{"choice rule without Next", `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.a","IsPresent":true}],"Default":"E"},"E":{"Type":"Succeed"}}}`, `a Choice rule needs Next`},
		{"two operators", `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.a","IsPresent":true,"IsNull":false,"Next":"E"}]},"E":{"Type":"Succeed"}}}`, `exactly one operator, found 2`},
		{"operator value type", `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.a","NumericEquals":"1","Next":"E"}]},"E":{"Type":"Succeed"}}}`, `NumericEquals needs a number`},
		{"not JSON", `{"StartAt":`, `not valid JSON`},
		{"unknown placeholder", strings.Replace(task(""), `"fn"`, `"${Missing}"`, 1), `placeholder ${Missing} has no substitution`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := asl.Parse([]byte(tc.def), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	def := []byte(`{"a":"${Fn}","b":${N},"c":"x-${Quote}-y","d":"$.path"}`)
	got, err := asl.Substitute(def, map[string]string{"Fn": "arn:aws:lambda:us-east-1:1:function:f", "N": "42", "Quote": `say "hi"\`})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, string(got), `{"a":"arn:aws:lambda:us-east-1:1:function:f","b":42,"c":"x-say \"hi\"\\-y","d":"$.path"}`)
	if _, err := asl.Substitute([]byte(`{"a":"${Nope}"}`), nil); err == nil || !strings.Contains(err.Error(), "${Nope}") {
		t.Errorf("unknown placeholder: err = %v", err)
	}
	d, err := asl.Parse([]byte(strings.Replace(task(""), `"fn"`, `"${Fn}"`, 1)), map[string]string{"Fn": "my-function"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(d.JSON()), `"FunctionName":"my-function"`) {
		t.Errorf("JSON() = %s", d.JSON())
	}
}
