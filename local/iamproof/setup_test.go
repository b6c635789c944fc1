package iamproof_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/loopback"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/httpaction"
)

const (
	region    = "us-east-1"
	account   = "123456789012" // moto's account for the users it creates
	stackName = "connmgr-iamproof"
	// noAuthCalls: moto serves this many calls without checking them, then
	// checks every call against the caller's IAM policies. Exactly the
	// three that make the administrator (CreateUser, PutUserPolicy,
	// CreateAccessKey): the rest of the setup is signed and authorized too.
	noAuthCalls = 3
)

// role is one role of the translated template.
type role struct {
	Role     string
	Policies []struct {
		PolicyName     string
		PolicyDocument json.RawMessage
	}
	ManagedPolicyArns []string
}

// statement is what the proof reads of a policy statement.
type statement struct {
	Sid       string
	Effect    string
	Action    any
	Resource  any
	Condition map[string]map[string]any
}

func (r role) statements(t *testing.T) []statement {
	t.Helper()
	var out []statement
	for _, p := range r.Policies {
		var doc struct{ Statement []statement }
		if err := json.Unmarshal(p.PolicyDocument, &doc); err != nil {
			t.Fatalf("%s %s: %v", r.Role, p.PolicyName, err)
		}
		out = append(out, doc.Statement...)
	}
	return out
}

// proof is the stack in one IAM-enforcing moto_server: the template's
// table, a key, the event bus, and an IAM user per function whose policies
// are its role's.
type proof struct {
	t         *testing.T
	root      string
	moto      *emulator.MotoServer
	admin     aws.Config
	tableName string
	tableARN  string
	keyARN    string
	busName   string
	busARN    string
	roles     map[string]role  // by function (or state machine) logical id
	users     map[string]*user // likewise
	clock     *clock.Clock
	logs      *logbuf.Buffer
	lambda    *lambdaserver.Registry
	lambdaURL string // the Invoke API: authorized by moto, run here
}

// user is a function's IAM user: its credentials and every AWS call made
// with them.
type user struct {
	name  string
	aws   aws.Config
	calls *recorder
}

func start(t *testing.T) *proof {
	t.Helper()
	root, err := sam.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := emulator.StartMoto(emulator.MotoOptions{
		Command: []string{"python3", filepath.Join(root, "local", "iamproof", "motoiam.py")},
		Env:     []string{fmt.Sprintf("INITIAL_NO_AUTH_ACTION_COUNT=%d", noAuthCalls), "MOTO_IAM_LOAD_MANAGED_POLICIES=true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	p := &proof{t: t, root: root, moto: m, tableName: stackName, busName: stackName + "-events",
		users: map[string]*user{}, clock: clock.New(), logs: &logbuf.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function logs:\n%s\nmoto_server:\n%s", p.logs, m.Output())
		}
	})
	ctx := context.Background()
	p.bootstrapAdmin(ctx)

	tmpl, err := sam.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	in, err := tmpl.CreateTableInput(p.tableName)
	if err != nil {
		t.Fatal(err)
	}
	table, err := dynamodb.NewFromConfig(p.admin, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(m.URL) }).CreateTable(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	p.tableARN = aws.ToString(table.TableDescription.TableArn)
	key, err := kms.NewFromConfig(p.admin, func(o *kms.Options) { o.BaseEndpoint = aws.String(m.URL) }).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("connmgr IAM proof")})
	if err != nil {
		t.Fatal(err)
	}
	p.keyARN = aws.ToString(key.KeyMetadata.Arn)
	bus, err := eventbridge.NewFromConfig(p.admin, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(m.URL) }).CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(p.busName)})
	if err != nil {
		t.Fatal(err)
	}
	p.busARN = aws.ToString(bus.EventBusArn)

	p.roles = translate(t, root, p.values(t, tmpl))
	for id, r := range p.roles {
		p.users[id] = p.createUser(ctx, id, r)
	}

	// The Invoke API: moto authorizes each call (it has no function to run:
	// it answers ResourceNotFound once the caller may invoke it), then the
	// registry runs it here.
	p.lambda = lambdaserver.NewRegistry(lambdaserver.Options{Clock: p.clock, Region: region, AccountID: account})
	t.Cleanup(p.lambda.Close)
	front, err := loopback.Serve("", authorizedBy(m.URL, lambdaserver.Handler(p.lambda)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close() })
	p.lambdaURL = front.URL
	return p
}

// bootstrapAdmin makes the administrator with the calls moto lets through
// unauthenticated, and checks that the next call is authorized.
func (p *proof) bootstrapAdmin(ctx context.Context) {
	t := p.t
	anon := aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider("AKIABOOTSTRAP0000000", "bootstrap", "")}
	c := iam.NewFromConfig(anon, func(o *iam.Options) { o.BaseEndpoint = aws.String(p.moto.URL) })
	if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("admin")}); err != nil {
		t.Fatal(err)
	}
	all := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	if _, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("admin"), PolicyName: aws.String("all"), PolicyDocument: aws.String(all)}); err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("admin")})
	if err != nil {
		t.Fatal(err)
	}
	// moto now checks every call: an unknown key is refused.
	if _, err := c.ListUsers(ctx, &iam.ListUsersInput{}); err == nil {
		t.Fatalf("moto answered an unknown access key after %d calls: it does not enforce IAM", noAuthCalls)
	}
	p.admin = aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey), "")}
}

// values are what the roles' policies reference: the stack's real names
// and ARNs. Functions are named by their logical ids.
func (p *proof) values(t *testing.T, tmpl *sam.Template) map[string]string {
	t.Helper()
	keyID := p.keyARN[strings.LastIndex(p.keyARN, "/")+1:]
	v := map[string]string{
		"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws", "AWS::StackName": stackName, "AWS::URLSuffix": "amazonaws.com",
		"Table": p.tableName, "Table.Arn": p.tableARN,
		"SecretsKey": keyID, "SecretsKey.Arn": p.keyARN,
		"EventBus": p.busName, "EventBus.Arn": p.busARN, "EventBus.Name": p.busName,
	}
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		v[f.LogicalID], v[f.LogicalID+".Arn"] = f.LogicalID, functionARN(f.LogicalID)
	}
	machines, err := tmpl.StateMachines()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range machines {
		name := stackName + "-" + m.LogicalID
		arn := fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", region, account, name)
		v[m.LogicalID], v[m.LogicalID+".Arn"], v[m.LogicalID+".Name"] = arn, arn, name
	}
	return v
}

func functionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, name)
}

// translate runs translate.py: aws-sam-translator's roles, intrinsics
// resolved to values.
func translate(t *testing.T, root string, values map[string]string) map[string]role {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is needed for the IAM proof (with cfn-lint, aws-sam-translator and moto: pip install cfn-lint 'moto[server]')")
	}
	in, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", filepath.Join(root, "local", "iamproof", "translate.py"), filepath.Join(root, "template.yaml"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("translate.py: %v\n%s", err, stderr.String())
	}
	var roles map[string]role
	if err := json.Unmarshal(out, &roles); err != nil {
		t.Fatalf("translate.py output: %v\n%s", err, out)
	}
	if len(roles) == 0 {
		t.Fatal("translate.py found no roles")
	}
	return roles
}

// createUser gives a user exactly the role's policies: its inline
// policies as user policies, its managed policies attached.
func (p *proof) createUser(ctx context.Context, name string, r role) *user {
	t := p.t
	t.Helper()
	c := iam.NewFromConfig(p.admin, func(o *iam.Options) { o.BaseEndpoint = aws.String(p.moto.URL) })
	if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	for _, pol := range r.Policies {
		doc := map[string]any{}
		if err := json.Unmarshal(pol.PolicyDocument, &doc); err != nil {
			t.Fatal(err)
		}
		// The template's inline policies carry no Version: IAM reads them
		// as 2008-10-17 (fine without policy variables), moto refuses
		// anything older than 2012-10-17. Same statements either way.
		if _, ok := doc["Version"]; !ok {
			doc["Version"] = "2012-10-17"
		}
		text, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(pol.PolicyName),
			PolicyDocument: aws.String(string(text))}); err != nil {
			t.Fatalf("%s: policy %s: %v\n%s", name, pol.PolicyName, err, pol.PolicyDocument)
		}
	}
	for _, arn := range r.ManagedPolicyArns {
		if _, err := c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			t.Fatalf("%s: attach %s: %v", name, arn, err)
		}
	}
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return &user{name: name, calls: &recorder{},
		aws: aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey), "")}}
}

// app builds function as its main does, with the user's credentials and
// every client pointed at moto (Lambda at the authorizing front).
func (p *proof) app(function string) (*app.App, *user) {
	t := p.t
	t.Helper()
	u := p.users[sam.LogicalID(function)]
	if u == nil {
		t.Fatalf("no role for %s", function)
	}
	cfg := app.Config{Function: function, TableName: p.tableName, KMSKeyID: p.keyARN,
		OAuthRedirectURI: "https://api.example.test/oauth/callback", ResolveFunction: sam.LogicalID(app.FnResolve),
		TargetNetworks: httpaction.Loopback, EventBusName: p.busName,
		DynamoDBEndpoint: p.moto.URL, KMSEndpoint: p.moto.URL, EventsEndpoint: p.moto.URL, LambdaEndpoint: p.lambdaURL}
	a, err := app.New(context.Background(), cfg, app.Options{AWS: &u.aws, Now: p.clock.Now, LogOutput: p.logs,
		ClientOptions: []any{
			func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, u.calls.middleware) },
			func(o *kms.Options) { o.APIOptions = append(o.APIOptions, u.calls.middleware) },
			func(o *lambda.Options) { o.APIOptions = append(o.APIOptions, u.calls.middleware) },
			func(o *eventbridge.Options) { o.APIOptions = append(o.APIOptions, u.calls.middleware) },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, u
}

// Raw clients with a user's credentials, for the calls a function's code
// never makes.
func (p *proof) ddb(u *user) *dynamodb.Client {
	return dynamodb.NewFromConfig(u.aws, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.moto.URL)
		o.APIOptions = append(o.APIOptions, u.calls.middleware)
	})
}

func (p *proof) kms(u *user) *kms.Client {
	return kms.NewFromConfig(u.aws, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(p.moto.URL)
		o.APIOptions = append(o.APIOptions, u.calls.middleware)
	})
}

func (p *proof) lambdaClient(u *user, url string) *lambda.Client {
	return lambda.NewFromConfig(u.aws, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(url)
		o.APIOptions = append(o.APIOptions, u.calls.middleware)
		o.RetryMaxAttempts = 1
	})
}

// authorizedBy serves the Lambda Invoke API with local after moto has
// authorized the call: the request goes to moto first, as signed (Host
// kept); a 403 is the answer, anything else (moto's ResourceNotFound: it
// runs no functions) hands the request to local.
func authorizedBy(motoURL string, local http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, motoURL+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out.Header = r.Header.Clone()
		out.Host = r.Host
		res, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(w, "moto: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusForbidden {
			for k, v := range res.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(res.StatusCode)
			io.Copy(w, res.Body)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		local.ServeHTTP(w, r)
	})
}

// call is one AWS call a user made.
type call struct {
	Op     string // Service.Operation, e.g. DynamoDB.GetItem
	Status int
	Code   string // the error code, read from the body (moto answers IAM errors in XML)
	// ContextKeys are a KMS call's encryption context keys, sorted.
	ContextKeys []string
	KMS         bool
}

func (c call) denied() bool { return c.Status == http.StatusForbidden && c.Code == "AccessDenied" }

func (c call) String() string {
	s := fmt.Sprintf("%s %d", c.Op, c.Status)
	if c.Code != "" {
		s += " " + c.Code
	}
	return s
}

type recorder struct {
	mu    sync.Mutex
	calls []call
}

type contextKeysKey struct{}

var errorCode = regexp.MustCompile(`<Code>([^<]+)</Code>|"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"`)

// middleware records every call: the encryption context keys of KMS
// calls (from the input) and the status and error code of the answer
// (read next to the transport, before the SDK decodes it).
func (r *recorder) middleware(stack *middleware.Stack) error {
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("iamproofContext",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			var ec map[string]string
			switch v := in.Parameters.(type) {
			case *kms.GenerateDataKeyInput:
				ec = v.EncryptionContext
			case *kms.DecryptInput:
				ec = v.EncryptionContext
			case *kms.EncryptInput:
				ec = v.EncryptionContext
			default:
				return next.HandleInitialize(ctx, in)
			}
			keys := []string{}
			for k := range ec {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			return next.HandleInitialize(middleware.WithStackValue(ctx, contextKeysKey{}, keys), in)
		}), middleware.After); err != nil {
		return err
	}
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("iamproofRecord",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			c := call{Op: awsmiddleware.GetServiceID(ctx) + "." + middleware.GetOperationName(ctx)}
			if keys, ok := middleware.GetStackValue(ctx, contextKeysKey{}).([]string); ok {
				c.ContextKeys, c.KMS = keys, true
			}
			if res, ok := out.RawResponse.(*smithyhttp.Response); ok {
				c.Status = res.StatusCode
				if res.StatusCode >= 300 {
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					res.Body = io.NopCloser(bytes.NewReader(body))
					if m := errorCode.FindSubmatch(body); m != nil {
						c.Code = string(m[1]) + string(m[2])
					} else if h := res.Header.Get("X-Amzn-ErrorType"); h != "" {
						c.Code, _, _ = strings.Cut(h, ":")
					}
				}
			}
			r.mu.Lock()
			r.calls = append(r.calls, c)
			r.mu.Unlock()
			return out, md, err
		}), middleware.After)
}

// all returns the calls so far.
func (r *recorder) all() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// last is the last call made.
func (r *recorder) last() call {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return call{}
	}
	return r.calls[len(r.calls)-1]
}

// ops lists the distinct operations among calls.
func ops(calls []call) []string {
	var out []string
	for _, c := range calls {
		if !slices.Contains(out, c.Op) {
			out = append(out, c.Op)
		}
	}
	slices.Sort(out)
	return out
}
