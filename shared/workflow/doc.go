// Package workflow runs workflows on Step Functions: the runs HTTP API
// (start, list, get, resume, terminate), the tasks the state machine calls
// (run a step, suspend on an authentication failure, finish), and the
// automatic resume of runs suspended on a connection that was fixed.
//
// Every transition of a run is a conditional write on its version, so
// duplicated events, retried tasks and racing resumes take effect once.
// Task tokens live on the run item only: never in a state input or output,
// a response, an event or a log line.
package workflow
