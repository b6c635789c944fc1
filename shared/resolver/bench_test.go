package resolver_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/resolver"
)

// The three benchmarks resolve (or read) the same basic-auth connection
// item over the DynamoDB and KMS emulators, so their difference is the
// resolver's own cost and the KMS call the data-key cache saves.

func benchFixture(b *testing.B) *fixture {
	f := newFixture(b)
	f.create(b, connection.Connection{ID: "bench", Type: "http-basic", Name: "bench",
		Settings: map[string]any{"baseUrl": "https://erp.example.test"}}, map[string]string{"username": "svc", "password": "pw"})
	return f
}

// infoLogs logs at the production level (no per-resolution debug line).
func infoLogs(c *resolver.Config) { c.Log = slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func reportCalls(b *testing.B, f *fixture) {
	b.ReportMetric(float64(f.env.DDB.Count(""))/float64(b.N), "ddb-calls/op")
	b.ReportMetric(float64(f.env.KMS.Count(""))/float64(b.N), "kms-calls/op")
}

func benchResolve(b *testing.B, f *fixture, r *resolver.Resolver) {
	ctx := context.Background()
	in := f.input("bench")
	if _, err := r.Resolve(ctx, in); err != nil { // warm-up; records last-used once
		b.Fatal(err)
	}
	f.env.Reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Resolve(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCalls(b, f)
}

// BenchmarkResolveWarm: the data key is cached (the hot path).
func BenchmarkResolveWarm(b *testing.B) {
	f := benchFixture(b)
	benchResolve(b, f, f.instance(b, infoLogs))
}

// BenchmarkResolveCold: no key cache, one KMS Decrypt per resolution.
func BenchmarkResolveCold(b *testing.B) {
	f := benchFixture(b)
	benchResolve(b, f, f.instance(b, func(c *resolver.Config) {
		infoLogs(c)
		c.Opener = f.env.Opener(nil)
	}))
}

// BenchmarkGetItem: a bare consistent GetItem of the same item.
func BenchmarkGetItem(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	in := &dynamodb.GetItemInput{TableName: aws.String(f.env.Stack.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "T#t1#C#bench"},
			"sk": &ddbtypes.AttributeValueMemberS{Value: "CONN"},
		}}
	f.env.Reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := f.env.DynamoDB.GetItem(ctx, in)
		if err != nil || out.Item == nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCalls(b, f)
}
