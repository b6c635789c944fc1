// Package riesmoke holds the smoke test of the real bootstraps: every
// function built as Lambda builds it (lambda.norpc, for the host), each
// running under the Lambda Runtime Interface Emulator (aws-lambda-rie, a
// go tool of this module) with its template.yaml environment pointed at
// the local stand-ins (local/standins), and driven with the events AWS
// would send it: HTTP API payload 2.0 with JWT claims through the local
// gateway, the state machine's task payloads from the local Step
// Functions, EventBridge events and the schedule from the local bus, and
// direct Lambda invocations.
//
// It runs in make test. Everything listens on loopback; every process it
// starts is killed when it ends.
package riesmoke
