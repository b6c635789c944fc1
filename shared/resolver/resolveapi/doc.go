// Package resolveapi is the resolve function's contract: what its callers
// send (Request, Input) and get back (Credential, Failure, TestResult,
// Refreshed, Completion), as both sides encode them. The resolve function
// itself is shared/resolver; resolveclient calls it over Lambda Invoke.
//
// It imports no store, no vault, no OAuth library and no AWS SDK, so a
// function that only calls the resolver (the OAuth callback, a workflow
// step) links none of what the resolver needs to answer.
//
// # What it must never do
//
// Put a secret in any encoding but Credential's wire form (MarshalWire,
// UnmarshalWire): Credential redacts itself in fmt, slog and
// encoding/json, and a Failure carries codes and sanitized causes only.
package resolveapi
