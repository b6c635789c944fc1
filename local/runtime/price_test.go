package runtime_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/local/stacktest"
)

var updatePrices = flag.Bool("update-cost-md", false, "rewrite "+priceFile+" from the counted calls")

const priceFile = "docs/cost.md"

// AWS list prices, us-east-1, November 2026 (the free tiers left out).
const (
	priceTransition = 0.025 / 1000 // Step Functions Standard, per state transition
	priceGBSecond   = 0.0000133334 // Lambda arm64, per GB-second
	priceInvocation = 0.20 / 1e6   // Lambda, per request
	priceRRU        = 0.125 / 1e6  // DynamoDB on-demand, per read request unit
	priceWRU        = 0.625 / 1e6  // DynamoDB on-demand, per write request unit
	priceKMS        = 0.03 / 10000 // KMS, per request
	priceEvent      = 1.0 / 1e6    // EventBridge, per custom event (64 KB chunk)
	priceHTTPAPI    = 1.0 / 1e6    // API Gateway HTTP API, per request (512 KB chunk)
)

// Assumptions, stated in the document.
const (
	// memoryGB is every function's memory (template.yaml Globals MemorySize 256).
	memoryGB = 0.25
	// awsRoundTripMS is one AWS API round trip from a function in the same
	// Region (DynamoDB, KMS, EventBridge, Step Functions, a Lambda Invoke's
	// own overhead).
	awsRoundTripMS = 10.0
	// targetMS is a step's target answering its request.
	targetMS = 100.0
	// cpuMS is the functions' own work per invocation and per step:
	// BenchmarkResolveWarm (shared/resolver) measured 1.2 ms/op on the
	// 2-core development machine, emulators included, and is charged to
	// every invocation and every step.
	cpuMS = 1.2
	// Steps per run and runs measured.
	priceRunSteps = 20
	priceRuns     = 5
)

// priceCounts are what the workload did, counted.
type priceCounts struct {
	Runs, Steps                     int
	Transitions                     int
	StepInvocations, FinishInvokes  int
	Resolutions                     int
	ResolveGetItems, ResolveUpdates int
	ResolveKMS                      int
	ResolveTrips                    int
	StepTrips, StepGetRuns          int
	StepTransactions, StepPuts      int
	StepQueries, StepQueryItems     int
	FinishTrips, FinishGetItems     int
	FinishTransactions, FinishDels  int
	StartTrips, StartGetItems       int
	StartQueries, StartTransactions int
	StartUpdates                    int
	StartExecutions, Events         int
	RunItemKB, OutputItemKB         int // sizes rounded up to 1 KB (write units)
	RunItemRRU, ConnItemRRU         int // strongly consistent read units
	RunEdges                        int
}

// priceLine is one line of a cost breakdown, in dollars per million.
type priceLine struct {
	What, Basis string
	PerMillion  float64
}

func perM(x float64) float64 { return x * 1e6 }

// resolutionCost is the cost of one warm-or-cold resolution as counted:
// the resolve function's invocation, its reads and writes and KMS calls.
func resolutionCost(c priceCounts) []priceLine {
	n := float64(c.Resolutions)
	ms := math.Ceil(float64(c.ResolveTrips)/n*awsRoundTripMS + cpuMS)
	return []priceLine{
		{"Lambda requests", "1 invocation of resolve", perM(priceInvocation)},
		{"Lambda duration", fmt.Sprintf("%.0f ms × %.2f GB (%.2f round trips × %.0f ms + %.1f ms CPU)", ms, memoryGB, float64(c.ResolveTrips)/n, awsRoundTripMS, cpuMS), perM(ms / 1000 * memoryGB * priceGBSecond)},
		{"DynamoDB reads", fmt.Sprintf("%.2f GetItem × %d RRU (connection item)", float64(c.ResolveGetItems)/n, c.ConnItemRRU), perM(float64(c.ResolveGetItems*c.ConnItemRRU) / n * priceRRU)},
		{"DynamoDB writes", fmt.Sprintf("%.3f UpdateItem (last used) × 1 WRU", float64(c.ResolveUpdates)/n), perM(float64(c.ResolveUpdates) / n * priceWRU)},
		{"KMS", fmt.Sprintf("%.3f Decrypt (data-key cache misses)", float64(c.ResolveKMS)/n), perM(float64(c.ResolveKMS) / n * priceKMS)},
	}
}

// stepCost is the cost of one workflow step, the run's start and finish
// shared by its steps, the resolution included.
func stepCost(c priceCounts) []priceLine {
	s := float64(c.Steps)
	res := 0.0
	for _, l := range resolutionCost(c) {
		res += l.PerMillion
	}
	invocations := float64(c.StepInvocations + c.FinishInvokes + c.Runs) // run-step, finish-run, the runs function's start
	resolveMS := math.Ceil(float64(c.ResolveTrips)/float64(c.Resolutions)*awsRoundTripMS + cpuMS)
	stepMS := float64(c.StepTrips)/s*awsRoundTripMS + resolveMS + targetMS + cpuMS
	otherMS := (float64(c.FinishTrips+c.StartTrips)*awsRoundTripMS + 2*cpuMS*float64(c.Runs)) / s
	// run-step reads the run and queries its steps' own items once an
	// invocation (a strongly consistent Query costs at least 1 RRU; the
	// items it reads are the few from the run's current step on, under
	// 4 KB), and the run's stop marker, absent, before each further step
	// (1 RRU: a strongly consistent read of nothing costs one unit).
	stopReads := c.StepGetRuns - c.StepInvocations
	rru := float64(c.StepInvocations*c.RunItemRRU+stopReads+c.StepQueries+c.FinishGetItems*c.RunItemRRU+(c.StartGetItems+c.StartQueries)*c.ConnItemRRU) / s
	// A step's result is one PutItem of its own item. Transactional writes
	// cost 2 WRU per KB of each item: run-step writes the run item once an
	// invocation, and with the run's success its event's outbox item and
	// its usage items (a put and a delete, each under 1 KB); finish-run the
	// run item and its event's outbox item; the start the run item, its
	// edges, a usage item per connection and its event's outbox item.
	wru := float64(c.StepPuts*c.OutputItemKB) + float64(c.StepTransactions)*2*float64(c.RunItemKB) + float64(c.Runs)*2*3 +
		float64(c.FinishTransactions)*2*float64(c.RunItemKB+1) + float64(c.FinishDels) +
		float64(c.StartTransactions)*2*float64(c.RunItemKB+c.RunEdges+2) + float64(c.StartUpdates)
	return []priceLine{
		{"Step Functions", fmt.Sprintf("%.2f state transitions (%d for %d runs of %d steps, start and end included)", float64(c.Transitions)/s, c.Transitions, c.Runs, priceRunSteps), perM(float64(c.Transitions) / s * priceTransition)},
		{"Lambda requests", fmt.Sprintf("%.3f invocations of run-step, finish-run and runs", invocations/s), perM(invocations / s * priceInvocation)},
		{"Lambda duration", fmt.Sprintf("%.1f ms × %.2f GB: run-step %.2f round trips × %.0f ms, waiting %.0f ms for resolve and %.0f ms for the target, %.1f ms CPU; start and finish %.1f ms", stepMS+otherMS, memoryGB, float64(c.StepTrips)/s, awsRoundTripMS, resolveMS, targetMS, cpuMS, otherMS), perM((stepMS + otherMS) / 1000 * memoryGB * priceGBSecond)},
		{"DynamoDB reads", fmt.Sprintf("%.2f RRU (the run, %d RRU, and its steps' items read once an invocation; its stop marker before each further step, 1 RRU; the start's connection checks)", rru, c.RunItemRRU), perM(rru * priceRRU)},
		{"DynamoDB writes", fmt.Sprintf("%.2f WRU (the step's result item, %d KB; the run item, %d KB, once an invocation and with the run's success, in a transaction; the start's)", wru/s, c.OutputItemKB, c.RunItemKB), perM(wru / s * priceWRU)},
		{"EventBridge", fmt.Sprintf("%.3f events (a run's start and end)", float64(c.Events)/s), perM(float64(c.Events) / s * priceEvent)},
		{"API Gateway", fmt.Sprintf("%.3f requests (POST /runs)", float64(c.Runs)/s), perM(float64(c.Runs) / s * priceHTTPAPI)},
		{"the step's resolution", "the table above", res},
	}
}

func total(lines []priceLine) float64 {
	t := 0.0
	for _, l := range lines {
		t += l.PerMillion
	}
	return t
}

// Targets (issue 12).
const (
	targetPerMillionResolutions = 0.50
	targetPerMillionSteps       = 5.00
)

var priceDoc = template.Must(template.New("cost").Funcs(template.FuncMap{
	"usd":   func(x float64) string { return fmt.Sprintf("$%.3f", x) },
	"total": total,
	"met": func(x, target float64) string {
		if x <= target {
			return "met"
		}
		return "not met"
	},
}).Parse(`# What a resolution and a workflow step cost in AWS

Generated by TestCostPerMillion (local/runtime/price_test.go) from calls
counted on the local system; do not edit by hand. The test fails when this
file differs from what it computes. After a change that moves a number,
regenerate it and review the difference:

    go test ./local/runtime/ -run TestCostPerMillion -count=1 -update-cost-md

## How it is counted
The workload: {{.C.Runs}} runs of {{.Steps}} GET steps each, on one
password connection, every step succeeding, run through the local runtime
(every function of template.yaml on the DynamoDB and KMS emulators and the
project's Lambda, Step Functions and EventBridge stand-ins). Counted: every
AWS request each function sent and its sequential round trips (the
functions' SDK clients' counters, local/emulator Counter), the state
transitions of each execution as Step Functions bills them (every state
entered, every task retry; from the execution histories), and the sizes of
the items written (read back from the table). Prices are AWS list prices in
us-east-1, free tiers left out: Step Functions Standard $0.025 per 1,000
transitions; Lambda arm64 $0.0000133334 per GB-second and $0.20 per million
requests; DynamoDB on-demand $0.125 per million read units and $0.625 per
million write units; KMS $0.03 per 10,000 requests; EventBridge $1.00 per
million events; API Gateway HTTP API $1.00 per million requests.

Assumptions:
- Every function has 256 MB (template.yaml Globals) on arm64.
- A function's billed duration is its sequential AWS round trips at
  {{printf "%.0f" .RoundTrip}} ms each (same Region), plus {{printf "%.1f" .CPU}} ms of its own work per
  invocation and per step (BenchmarkResolveWarm, shared/resolver, on the
  2-core development machine, emulators included), plus, for run-step, the
  time it waits for the resolve function and for the target, assumed to
  answer in {{printf "%.0f" .Target}} ms.
- Reads are strongly consistent: 1 read unit per 4 KB of item; writes 1
  write unit per KB, twice that inside a transaction. An outbox event item
  and a usage item are under 1 KB.
- KMS: the resolve function keeps data keys in memory (the data-key cache);
  the workload's one cold instance decrypted once for all its resolutions.
  A deployment pays one Decrypt per connection per instance per cache
  lifetime; the figure below is the measured share.

Counted for the workload: {{.C.Transitions}} state transitions;
{{.C.StepInvocations}} run-step invocations for {{.C.Steps}} steps; {{.C.Resolutions}} resolutions making
{{.C.ResolveGetItems}} GetItem, {{.C.ResolveUpdates}} UpdateItem and {{.C.ResolveKMS}} KMS Decrypt in {{.C.ResolveTrips}} round trips;
run-step {{.C.StepTrips}} round trips ({{.C.StepGetRuns}} GetItem, {{.C.StepQueries}} Query reading {{.C.StepQueryItems}} items,
{{.C.StepPuts}} PutItem, {{.C.StepTransactions}} TransactWriteItems, {{.C.Resolutions}} Invoke); {{.C.FinishInvokes}} finish-run invocations;
run item {{.C.RunItemKB}} KB, step result item {{.C.OutputItemKB}} KB, connection item {{.C.ConnItemRRU}} read unit.

## Per million resolutions: {{usd (total .Resolution)}} (target ≤ $0.50: {{met (total .Resolution) 0.5}})

| cost | per resolution | per million |
|---|---|---|
{{range .Resolution}}| {{.What}} | {{.Basis}} | {{usd .PerMillion}} |
{{end}}
## Per million workflow steps: {{usd (total .Step)}} (target ≤ $5.00: {{met (total .Step) 5.0}})

| cost | per step | per million |
|---|---|---|
{{range .Step}}| {{.What}} | {{.Basis}} | {{usd .PerMillion}} |
{{end}}
How a step got here (issue 12): each step used to take three state
transitions (RunStep, Outcome, NextStep), $75 per million steps in Step
Functions alone, with a run-step invocation, a read of the run and a
transaction rewriting the whole run item (every step's definition and
result) per step: $17.33 per million steps once run-step ran consecutive
steps in one invocation. Now run-step writes each step's result to an
item of its own (one write unit), reads the run's stop marker before each
further step (a terminated run runs no more steps), writes the run item once as its
invocation ends and records the run's success itself, in that write: a
run whose steps succeed is one state transition in all, RunStep ending
the execution. Its other answers (suspend, continue, fail) are function
errors the state machine catches by name.
`))

// TestCostPerMillion computes the cost per million resolutions and per
// million workflow steps from counted calls, and holds docs/cost.md to it.
func TestCostPerMillion(t *testing.T) {
	w := newRunsWorld(t)
	target := newFlakyTarget(t, "CANARY-run-pw-1")
	conn := w.connectionTo(t, target.URL+"/api", "CANARY-run-pw-1")
	counters := w.rt.Calls.Counters()
	counter := func(fn string) *emulator.Counter { return w.rt.Calls.Counter(fn) }
	for _, c := range counters {
		c.Reset()
	}
	// One run after another: a function's round trips are counted across
	// its invocations, so concurrent runs would overlap theirs.
	c := priceCounts{Runs: priceRuns, Steps: priceRuns * priceRunSteps}
	start := counter("RunsFunction")
	var ids []string
	for range priceRuns {
		start.Reset()
		id := w.startGets(t, conn, priceRunSteps)
		c.StartTrips += int(start.Trips.Count())
		c.StartGetItems += int(start.Count("GetItem"))
		c.StartQueries += int(start.ItemsRead("Query"))
		c.StartTransactions += int(start.Count("TransactWriteItems"))
		c.StartUpdates += int(start.Count("UpdateItem"))
		c.StartExecutions += int(start.Count("StartExecution"))
		c.Events += int(start.Count("PutEvents"))
		ids = append(ids, id)
		for w.execution(t, id).Status == asl.StatusRunning {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, id := range ids {
		ex := w.execution(t, id)
		if ex.Status != asl.StatusSucceeded {
			t.Fatalf("execution %s", ex.Status)
		}
		n, _ := transitions(t, w.rt, ex.ARN)
		c.Transitions += n
		h, _ := w.rt.Engine.History(ex.ARN)
		state := ""
		for _, ev := range h {
			if ev.StateName != "" {
				state = ev.StateName
			}
			if ev.Type == asl.EventTaskScheduled && state == "RunStep" {
				c.StepInvocations++
			}
			if ev.Type == asl.EventTaskScheduled && state == "MarkSucceeded" {
				c.FinishInvokes++
			}
		}
	}
	w.rt.Engine.WaitIdle(context.Background())
	step, res, fin := counter("RunStepFunction"), counter("ResolveFunction"), counter("FinishRunFunction")
	c.Resolutions = int(step.Count("Invoke"))
	c.ResolveGetItems, c.ResolveUpdates, c.ResolveKMS, c.ResolveTrips = int(res.Count("GetItem")), int(res.Count("UpdateItem")), int(res.Sent("KMS")), int(res.Trips.Count())
	c.StepTrips, c.StepGetRuns, c.StepTransactions = int(step.Trips.Count()), int(step.Count("GetItem")), int(step.Count("TransactWriteItems"))
	c.StepPuts, c.StepQueries, c.StepQueryItems = int(step.Count("PutItem")), int(step.Count("Query")), int(step.ItemsRead("Query"))
	c.FinishTrips, c.FinishGetItems, c.FinishTransactions, c.FinishDels = int(fin.Trips.Count()), int(fin.Count("GetItem")), int(fin.Count("TransactWriteItems")), int(fin.Count("DeleteItem"))
	for fn, cn := range w.rt.Calls.Counters() {
		if fn != "RunsFunction" { // counted at the starts, before the test's reads
			c.Events += int(cn.Count("PutEvents"))
		}
	}
	if c.Resolutions != c.Steps || c.StepPuts != c.Steps || c.FinishInvokes != 0 || c.StepGetRuns != c.StepInvocations+c.Steps-c.Runs {
		t.Fatalf("%d resolutions, %d step writes, %d finish-run invocations and %d GetItem by run-step for %d steps", c.Resolutions, c.StepPuts, c.FinishInvokes, c.StepGetRuns, c.Steps)
	}
	// Item sizes, as DynamoDB measures them, from the table.
	items := w.partition(t, "T#contoso#R#"+ids[0])
	for _, it := range items {
		sk := it["sk"].(*ddbtypes.AttributeValueMemberS).Value
		switch {
		case sk == "RUN":
			c.RunItemKB, c.RunItemRRU = units(stacktest.ItemSize(it), 1024), units(stacktest.ItemSize(it), 4096)
		case strings.HasPrefix(sk, "OUT#"):
			c.OutputItemKB = max(c.OutputItemKB, units(stacktest.ItemSize(it), 1024))
		case strings.HasPrefix(sk, "EDGE#"):
			c.RunEdges++
		}
	}
	conns := w.partition(t, "T#contoso#C#"+conn)
	for _, it := range conns {
		if it["sk"].(*ddbtypes.AttributeValueMemberS).Value == "CONN" {
			c.ConnItemRRU = units(stacktest.ItemSize(it), 4096)
		}
	}
	if c.RunItemKB == 0 || c.ConnItemRRU == 0 {
		t.Fatalf("item sizes not found: %+v", c)
	}
	data := map[string]any{"C": c, "Steps": priceRunSteps, "RoundTrip": awsRoundTripMS, "CPU": cpuMS, "Target": targetMS,
		"Resolution": resolutionCost(c), "Step": stepCost(c)}
	var b bytes.Buffer
	if err := priceDoc.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	t.Logf("per million resolutions $%.3f, per million steps $%.3f; counts %+v", total(resolutionCost(c)), total(stepCost(c)), c)
	if r := total(resolutionCost(c)); r > targetPerMillionResolutions {
		t.Errorf("$%.3f per million resolutions, target $%.2f", r, targetPerMillionResolutions)
	}
	if s := total(stepCost(c)); s > targetPerMillionSteps {
		t.Errorf("$%.3f per million steps, target $%.2f", s, targetPerMillionSteps)
	}
	root, err := sam.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, priceFile)
	if *updatePrices {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(old, b.Bytes()) {
		t.Errorf("%s differs from the counted costs (regenerate with -update-cost-md and review); computed:\n%s", priceFile, b.String())
	}
}

// units is size in units of unit bytes, rounded up.
func units(size, unit int) int { return (size + unit - 1) / unit }

// partition reads every item under pk.
func (w *runsWorld) partition(t *testing.T, pk string) []map[string]ddbtypes.AttributeValue {
	t.Helper()
	out, err := w.rt.Stack.DynamoDBClient().Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(w.rt.Stack.TableName),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: pk}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}
