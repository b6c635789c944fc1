package emulator

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"

	"github.com/connmgr/connmgr/local/sam"
)

// Names the local stack uses.
const (
	TableName = "connmgr-local"
	KeyAlias  = "alias/connmgr-local-secrets"
)

// Stack is DynamoDB and KMS emulators with the template's table and a
// symmetric key behind KeyAlias, ready for the functions' configuration.
type Stack struct {
	Backend  Backend
	DynamoDB *Server
	KMS      *Server
	// AWS is a configuration with static local credentials; point clients at
	// the emulators with the endpoints above.
	AWS       aws.Config
	TableName string
	KeyID     string // the key's ARN
	KeyAlias  string // alias/..., what the functions' KMS_KEY_ID may name
	dir       string
	shared    bool // DynamoDB and KMS serve other stacks too (moto)
}

// StackOptions choose listen addresses ("" = free ports) and where KMS keeps
// its keys ("" = a new temporary folder, removed on Close).
type StackOptions struct {
	DynamoDBAddr, KMSAddr string
	KMSDir                string
}

// Start runs the emulators and creates the table from tmpl and the key.
func Start(ctx context.Context, tmpl *sam.Template, opts StackOptions) (*Stack, error) {
	s := &Stack{Backend: Minidyn, TableName: TableName, KeyAlias: KeyAlias}
	dir := opts.KMSDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "connmgr-kms-"); err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		s.dir = dir
	}
	var err error
	if s.DynamoDB, err = StartDynamoDB(opts.DynamoDBAddr); err != nil {
		s.Close()
		return nil, err
	}
	if s.KMS, err = StartKMS(opts.KMSAddr, dir); err != nil {
		s.Close()
		return nil, err
	}
	s.AWS = aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	if err := s.create(ctx, tmpl); err != nil {
		return nil, err
	}
	return s, nil
}

// create makes the table from tmpl (the same CreateTableInput on every
// backend) and a symmetric key behind s.KeyAlias; on error it closes s.
func (s *Stack) create(ctx context.Context, tmpl *sam.Template) error {
	in, err := tmpl.CreateTableInput(s.TableName)
	if err != nil {
		s.Close()
		return err
	}
	if _, err := s.DynamoDBClient().CreateTable(ctx, in); err != nil {
		s.Close()
		return fmt.Errorf("emulator: create table: %w", err)
	}
	k := s.KMSClient()
	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("connmgr local secrets")})
	if err != nil {
		s.Close()
		return fmt.Errorf("emulator: create key: %w", err)
	}
	s.KeyID = aws.ToString(key.KeyMetadata.Arn)
	if _, err := k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(s.KeyAlias), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		s.Close()
		return fmt.Errorf("emulator: create alias: %w", err)
	}
	return nil
}

// SetKeyEnabled disables or enables the stack's key. It names the key by
// its id, not its ARN: KMS takes either, moto 5.2's DisableKey and
// EnableKey only the id (an ARN gets an HTTP 500).
func (s *Stack) SetKeyEnabled(ctx context.Context, enabled bool) error {
	_, id, _ := strings.Cut(s.KeyID, ":key/")
	var err error
	if enabled {
		_, err = s.KMSClient().EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	} else {
		_, err = s.KMSClient().DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
	}
	if err != nil {
		return fmt.Errorf("emulator: enable key %v: %w", enabled, err)
	}
	return nil
}

// DynamoDBClient is a client of the DynamoDB emulator.
func (s *Stack) DynamoDBClient(opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(s.AWS, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(s.DynamoDB.URL)
		o.DisableValidateResponseChecksum = true
	}}, opts...)...)
}

// KMSClient is a client of the KMS emulator.
func (s *Stack) KMSClient(opts ...func(*kms.Options)) *kms.Client {
	return kms.NewFromConfig(s.AWS, append([]func(*kms.Options){func(o *kms.Options) {
		o.BaseEndpoint = aws.String(s.KMS.URL)
	}}, opts...)...)
}

// Close stops both emulators and removes a temporary key store; on a
// shared server (moto) it deletes the stack's table and key instead.
func (s *Stack) Close() {
	if s.shared {
		s.releaseShared()
		return
	}
	if s.DynamoDB != nil {
		s.DynamoDB.Close()
	}
	if s.KMS != nil {
		s.KMS.Close()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// Counter counts the AWS API calls made by clients it is attached to, by
// operation name, and the DynamoDB items those calls read. It also counts
// the requests sent to each service (every attempt, as AWS bills them) and,
// when Trips is set, the sequential round trips they took.
type Counter struct {
	calls sync.Map // operation → *atomic.Int64
	items sync.Map // operation → *atomic.Int64
	sent  sync.Map // service id ("DynamoDB", "KMS", ...) → *atomic.Int64
	// Trips, when set, counts round trips: share one between the counters
	// of every client of one caller, so a KMS call made while a DynamoDB
	// call is in flight counts as the same round trip.
	Trips   *RoundTrips
	latency atomic.Int64 // time.Duration; SetLatency
}

// SetLatency delays every request by d (0: none), as a network would. A
// round trip is calls in flight together, and the emulators answer in
// microseconds: without a latency, concurrent calls whose goroutines the
// scheduler starts a little apart could count as sequential.
// It also gives Trips a grace of three quarters of d (see RoundTrips).
func (c *Counter) SetLatency(d time.Duration) {
	c.latency.Store(int64(d))
	if c.Trips != nil {
		c.Trips.grace.Store(int64(d * 3 / 4))
	}
}

// Middleware installs the counter on a client's stack: pass it in the
// client's APIOptions.
func (c *Counter) Middleware(stack *middleware.Stack) error {
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("connmgrCount",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := middleware.GetOperationName(ctx)
			v, _ := c.calls.LoadOrStore(op, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			// A round trip is counted per call, its retries included: the
			// design's sequential calls, not how often the network (or
			// a loaded machine's emulator) made the SDK try again.
			if c.Trips != nil {
				c.Trips.begin()
				defer c.Trips.end()
			}
			out, md, err := next.HandleInitialize(ctx, in)
			if n := itemsRead(out.Result); n > 0 {
				v, _ := c.items.LoadOrStore(op, new(atomic.Int64))
				v.(*atomic.Int64).Add(n)
			}
			return out, md, err
		}), middleware.After); err != nil {
		return err
	}
	// Inside the retry loop: once per request sent, next to the transport.
	sent := middleware.FinalizeMiddlewareFunc("connmgrCountSent",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			v, _ := c.sent.LoadOrStore(awsmiddleware.GetServiceID(ctx), new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			if d := time.Duration(c.latency.Load()); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return middleware.FinalizeOutput{}, middleware.Metadata{}, ctx.Err()
				}
			}
			return next.HandleFinalize(ctx, in)
		})
	if _, ok := stack.Finalize.Get("Retry"); ok {
		return stack.Finalize.Insert(sent, "Retry", middleware.After)
	}
	return stack.Finalize.Add(sent, middleware.After)
}

// Sent reports the requests sent to service ("" = every service), as
// its SDK names it: "DynamoDB", "KMS", "EventBridge", "SFN", "Lambda".
// Unlike Count, a retried call counts once per attempt.
func (c *Counter) Sent(service string) int64 {
	return sum(&c.sent, service)
}

// Services lists the services requests were sent to, sorted.
func (c *Counter) Services() []string {
	var out []string
	c.sent.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}

// RoundTrips counts sequential round trips: a call made while no other
// is in flight starts a new one; a call made while another is in flight
// joins it, and a call's retries are part of it. Calls made one after
// another, each waiting for the last, are as many round trips as calls;
// calls made concurrently are one. On a loaded machine the goroutines of
// concurrent calls may start later than the first of them ends, so a call
// made within a grace after the round trip's first joins it too: with
// every request delayed longer than the grace (Counter.SetLatency), a call
// that waited for another's answer always starts after it.
type RoundTrips struct {
	mu       sync.Mutex
	inFlight int
	n        int64
	started  time.Time    // the current round trip's first request
	grace    atomic.Int64 // time.Duration
}

func (r *RoundTrips) begin() {
	now := time.Now()
	r.mu.Lock()
	if r.inFlight == 0 && (r.n == 0 || now.Sub(r.started) >= time.Duration(r.grace.Load())) {
		r.n++
		r.started = now
	}
	r.inFlight++
	r.mu.Unlock()
}

func (r *RoundTrips) end() {
	r.mu.Lock()
	r.inFlight--
	r.mu.Unlock()
}

// Count reports the round trips since the last Reset.
func (r *RoundTrips) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Reset zeroes the count (requests in flight stay in flight).
func (r *RoundTrips) Reset() {
	r.mu.Lock()
	r.n = 0
	r.mu.Unlock()
}

// itemsRead is how many items a DynamoDB answer returned (for Query and
// Scan, its Count: the items that matched, whatever the projection).
func itemsRead(result any) int64 {
	switch r := result.(type) {
	case *dynamodb.GetItemOutput:
		if r.Item != nil {
			return 1
		}
	case *dynamodb.BatchGetItemOutput:
		n := 0
		for _, items := range r.Responses {
			n += len(items)
		}
		return int64(n)
	case *dynamodb.QueryOutput:
		return int64(max(r.Count, int32(len(r.Items))))
	case *dynamodb.ScanOutput:
		return int64(max(r.Count, int32(len(r.Items))))
	}
	return 0
}

// ItemsRead reports the DynamoDB items returned by op ("" = every
// operation): GetItem, BatchGetItem, Query and Scan.
func (c *Counter) ItemsRead(op string) int64 {
	return sum(&c.items, op)
}

// Count reports calls of op ("" = all operations).
func (c *Counter) Count(op string) int64 {
	return sum(&c.calls, op)
}

// sum adds the counts of m under key ("" = every key).
func sum(m *sync.Map, key string) int64 {
	var n int64
	m.Range(func(k, v any) bool {
		if key == "" || k.(string) == key {
			n += v.(*atomic.Int64).Load()
		}
		return true
	})
	return n
}

// Reset zeroes every count, and Trips.
func (c *Counter) Reset() {
	c.calls.Clear()
	c.items.Clear()
	c.sent.Clear()
	if c.Trips != nil {
		c.Trips.Reset()
	}
}
