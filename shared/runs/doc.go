// Package runs is the workflow run: its steps, who may see and act on it,
// and the transitions Step Functions drives (run a step, suspend on an
// authentication failure, resume, finish).
//
// State machine inputs and outputs carry ids and outcome codes only: never
// credentials, response bodies or task tokens. The task token of a
// suspended run is kept on the run item and never rendered.
package runs
