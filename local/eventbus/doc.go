// Package eventbus is a local EventBridge: PutEvents over the real wire
// protocol (AWS JSON 1.1, X-Amz-Target: AWSEvents.PutEvents), so the real
// aws-sdk-go-v2 eventbridge client works with only its BaseEndpoint
// changed; event patterns; and the template's scheduled rules fired on the
// injected clock.
//
// A Bus is built from the template's rules (sam.Template.EventRules:
// function events of Type EventBridgeRule, CloudWatchEvent and Schedule,
// and AWS::Events::Rule resources whose targets are functions). PutEvents
// validates as EventBridge does — at most 10 entries and the size limit
// (request-level ValidationException), Source, DetailType and Detail
// required (entry ErrorCode InvalidArgument), Detail a JSON object
// (MalformedDetail) — and answers per entry with an EventId or an error
// plus FailedEntryCount. Each accepted event gets the full envelope
// (version "0", id, detail-type, source, account, time, region, resources,
// detail; events.EventBridgeEvent) and is handed, with Lambda's Event
// invocation semantics, to the targets of every enabled pattern rule on its
// bus that matches: the Invoker (a *lambdaserver.Registry) queues it,
// retries function errors with backoff and drops it with a log line after
// the last attempt. A target's Input replaces the event; InputPath ($ or
// $.a.b) selects part of it.
//
// Patterns (CompilePattern) follow EventBridge's content filtering: arrays
// of exact values (strings, numbers compared by value, booleans, null),
// nested objects, $or, prefix, suffix, equals-ignore-case, wildcard,
// anything-but (value, list, prefix, suffix, equals-ignore-case, wildcard),
// exists and numeric. An event array matches when one element does; an
// array of objects matches a nested pattern when one element matches all
// of it (stricter than EventBridge, which flattens arrays and can combine
// fields of different elements). cidr is refused.
//
// Scheduled rules (ParseSchedule): rate(N minute(s)|hour(s)|day(s)),
// counted from when the Bus is created, and AWS cron
// (minutes hours day-of-month month day-of-week year, in UTC; L, W and #
// refused). The scheduler sleeps until the next firing on a real timer and
// wakes on Clock.Advance. When the clock jumps over several firings of a
// rule it fires once, stamped with the last of them: EventBridge does not
// backfill missed schedules, so one event per jump is the faithful choice
// and keeps a test that advances ten days from receiving 240 hourly
// events. A scheduled event is source "aws.events", detail-type
// "Scheduled Event", detail {}, resources [the rule's ARN], or the target's
// Input when given.
//
// Events keeps the last LogSize events put or fired (newest last, filter
// by detail-type) for a local-only GET /dev/events; EventsHandler serves
// them.
//
// Limits: PutEvents is the only operation; EventBusName may name any bus
// (an event on a bus no rule listens on is accepted and dropped, as AWS
// does for a bus that does not exist); a target's RetryPolicy and
// DeadLetterConfig are ignored (they govern EventBridge's delivery to
// Lambda, which locally cannot fail but for a full queue, logged);
// InputTransformer, global endpoints and non-function targets are refused
// with an error naming them; the size limit defaults to 256 KB where AWS
// now allows 1 MB. It never checks signatures or credentials and is never
// linked into a Lambda binary.
package eventbus
