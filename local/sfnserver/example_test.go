package sfnserver_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/sfnserver"
)

// How a local runtime wires the engine: one clock, an Invoker that runs the
// functions by the names the substitutions give them, the definition
// registered with its DefinitionSubstitutions, and the app's sfn client
// pointed at the server.
func Example() {
	clk := clock.New()
	engine := asl.NewEngine(asl.Options{
		Clock: clk,
		Invoker: asl.InvokerFunc(func(ctx context.Context, fn string, payload []byte) ([]byte, error) {
			// The local runtime calls the function's handler here.
			if fn == "greet" {
				return []byte(`{"greeting":"hello"}`), nil
			}
			return nil, &asl.FunctionError{Type: "ResourceNotFoundException", Message: fn}
		}),
	})
	defer engine.Close()
	sm, err := engine.CreateStateMachine(asl.StateMachineSpec{
		Name: "Hello",
		Definition: []byte(`{"StartAt":"Greet","States":{"Greet":{"Type":"Task",
			"Resource":"arn:aws:states:::lambda:invoke",
			"Parameters":{"FunctionName":"${GreetFunctionArn}","Payload":{"name.$":"$.name"}},
			"OutputPath":"$.Payload","End":true}}}`),
		Substitutions: map[string]string{"GreetFunctionArn": "greet"},
	})
	if err != nil {
		panic(err)
	}
	srv, err := sfnserver.Start("127.0.0.1:0", engine)
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	// The app's client: only BaseEndpoint differs from production.
	client := sfn.New(sfn.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(srv.URL),
	})
	ctx := context.Background()
	out, err := client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(sm.ARN), Name: aws.String("first"), Input: aws.String(`{"name":"Ada"}`),
	})
	if err != nil {
		panic(err)
	}
	ex, err := engine.WaitExecution(ctx, aws.ToString(out.ExecutionArn))
	if err != nil {
		panic(err)
	}
	fmt.Println(sm.ARN)
	fmt.Println(ex.Status, ex.Output)
	// Output:
	// arn:aws:states:us-east-1:111122223333:stateMachine:Hello
	// SUCCEEDED {"greeting":"hello"}
}
