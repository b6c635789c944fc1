package emulator

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/connmgr/connmgr/local/sam"
)

// Backend names the DynamoDB and KMS the tests run on.
type Backend string

const (
	// Minidyn is the in-process pair: github.com/truora/minidyn and
	// github.com/nsmithuk/local-kms. Fast; the default.
	Minidyn Backend = "minidyn"
	// Moto is a moto_server child process (github.com/getmoto/moto), an
	// independent implementation that, unlike minidyn, honours REMOVE,
	// enforces the 400 KB item limit and refuses ConsistentRead on a global
	// secondary index. Slow: correctness suites run on it, scale tests not.
	Moto Backend = "moto"
)

// BackendEnv is the environment variable that chooses the backend of the
// test harnesses (local/stacktest, local/apitest): minidyn (the default
// when unset) or moto. `make test` runs the correctness suites once on
// each (targets test-go and test-moto).
const BackendEnv = "CONNMGR_TEST_BACKEND"

// MotoInstall is how to install moto_server.
const MotoInstall = "pip install 'moto[server]'"

// BackendFromEnv reads BackendEnv.
func BackendFromEnv() (Backend, error) {
	switch b := Backend(strings.TrimSpace(os.Getenv(BackendEnv))); b {
	case "", Minidyn:
		return Minidyn, nil
	case Moto:
		return Moto, nil
	default:
		return "", fmt.Errorf("emulator: %s=%q: want %s or %s", BackendEnv, b, Minidyn, Moto)
	}
}

// StartBackend is Start on backend b: for Minidyn new in-process emulators
// (opts apply), for Moto a new table and key in the process's shared
// moto_server (opts do not apply), each stack with its own table name and
// key alias.
func StartBackend(ctx context.Context, tmpl *sam.Template, b Backend, opts StackOptions) (*Stack, error) {
	switch b {
	case Minidyn:
		return Start(ctx, tmpl, opts)
	case Moto:
		m, err := SharedMoto()
		if err != nil {
			return nil, err
		}
		return m.Stack(ctx, tmpl)
	default:
		return nil, fmt.Errorf("emulator: unknown backend %q", b)
	}
}

// MotoServer is a running moto_server. Its conditional writes are not atomic
// under concurrency (two concurrent PutItems conditioned on the same
// version can both succeed, where DynamoDB lets exactly one through), so
// clients reach it through Serial, which forwards one request at a time.
type MotoServer struct {
	// URL is moto_server itself; Serial forwards to it one request at a time.
	URL    string
	Serial *Server
	cmd    *exec.Cmd
	exited chan struct{}
	out    *tail
	stacks atomic.Int64
}

// MotoOptions adjust how StartMoto runs the server.
type MotoOptions struct {
	// Command and its arguments replace moto_server (for a launcher that
	// configures moto first); "-p 0" is appended either way, and the
	// command must print werkzeug's "Running on http://host:port" line.
	Command []string
	// Env is added to the server's environment, e.g.
	// INITIAL_NO_AUTH_ACTION_COUNT=3 to enforce IAM policies after three
	// unauthenticated calls.
	Env []string
}

var sharedMoto struct {
	once sync.Once
	m    *MotoServer
	err  error
}

// SharedMoto is the process's moto_server, started on first use (1-2 s) and
// stopped when the process exits. Tests share it: each takes its own table
// and key (MotoServer.Stack).
func SharedMoto() (*MotoServer, error) {
	sharedMoto.once.Do(func() { sharedMoto.m, sharedMoto.err = StartMoto(MotoOptions{}) })
	return sharedMoto.m, sharedMoto.err
}

var runningOn = regexp.MustCompile(`Running on (http://[0-9.]+:[0-9]+)`)

// StartMoto starts a moto_server on a free loopback port and waits until it
// serves. The server is killed when this process exits (on Linux even when
// it is killed), or by Close.
func StartMoto(opts MotoOptions) (*MotoServer, error) {
	argv := opts.Command
	if len(argv) == 0 {
		argv = []string{"moto_server"}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("emulator: %s is not installed (the moto backend and the IAM proof need it): %s", argv[0], MotoInstall)
	}
	found := make(chan string, 1)
	m := &MotoServer{exited: make(chan struct{}), out: &tail{max: 40, onLine: func(line string) {
		if u := runningOn.FindStringSubmatch(line); u != nil {
			select {
			case found <- u[1]:
			default:
			}
		}
	}}}
	cmd := exec.Command(path, append(append([]string{}, argv[1:]...), "-H", "127.0.0.1", "-p", "0")...)
	cmd.Env = append(os.Environ(), opts.Env...)
	// Not *os.File: Wait returns only once all output is copied, so the
	// log of a server that failed to start is complete.
	cmd.Stdout, cmd.Stderr = m.out, m.out
	killWithParent(cmd)
	m.cmd = cmd
	started := make(chan error, 1)
	// The goroutine that starts the child keeps its thread for the child's
	// lifetime: on Linux the child is killed when that thread ends.
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(m.exited)
			return
		}
		started <- nil
		cmd.Wait()
		close(m.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("emulator: start %s: %w (install: %s)", argv[0], err, MotoInstall)
	}
	select {
	case m.URL = <-found:
	case <-m.exited:
		return nil, fmt.Errorf("emulator: %s exited before serving (install: %s):\n%s", argv[0], MotoInstall, m.out)
	case <-time.After(90 * time.Second):
		m.kill()
		return nil, fmt.Errorf("emulator: %s did not start within 90 s:\n%s", argv[0], m.out)
	}
	if err := m.waitReady(60 * time.Second); err != nil {
		m.kill()
		return nil, err
	}
	target, err := url.Parse(m.URL)
	if err != nil {
		m.kill()
		return nil, fmt.Errorf("emulator: moto URL: %w", err)
	}
	if m.Serial, err = serve("", serialProxy(target), nil); err != nil {
		m.kill()
		return nil, err
	}
	return m, nil
}

func (m *MotoServer) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		res, err := http.Get(m.URL + "/moto-api/data.json")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.exited:
			return fmt.Errorf("emulator: moto_server exited:\n%s", m.out)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emulator: moto_server at %s not ready: %v\n%s", m.URL, err, m.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serialProxy forwards one request at a time to target, keeping the Host
// header the client signed (moto checks signatures when it enforces IAM).
func serialProxy(target *url.URL) http.Handler {
	var mu sync.Mutex
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		// A client that gave up (a cancelled context) is no news.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "moto: "+err.Error(), http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		rp.ServeHTTP(w, r)
	})
}

// Output is the end of the server's log, for failure messages.
func (m *MotoServer) Output() string { return m.out.String() }

func (m *MotoServer) kill() {
	if m.cmd.Process != nil {
		m.cmd.Process.Kill()
	}
	<-m.exited
}

// Close stops the proxy and the server.
func (m *MotoServer) Close() {
	if m.Serial != nil {
		m.Serial.Close()
	}
	m.kill()
}

// Stack creates a table from tmpl and a key with an alias, both with names
// of their own, in the server, reached through Serial; Close deletes the
// table and schedules the key's deletion, leaving the server running.
func (m *MotoServer) Stack(ctx context.Context, tmpl *sam.Template) (*Stack, error) {
	n := m.stacks.Add(1)
	s := &Stack{Backend: Moto, DynamoDB: m.Serial, KMS: m.Serial, TableName: fmt.Sprintf("connmgr-%d", n),
		KeyAlias: fmt.Sprintf("alias/connmgr-%d-secrets", n), shared: true}
	s.AWS = aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
	if err := s.create(ctx, tmpl); err != nil {
		return nil, fmt.Errorf("%w\nmoto_server log:\n%s", err, m.out)
	}
	return s, nil
}

// releaseShared deletes what Stack created in a shared server.
func (s *Stack) releaseShared() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.DynamoDBClient().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(s.TableName)})
	if s.KeyID != "" {
		s.KMSClient().ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(s.KeyID), PendingWindowInDays: aws.Int32(7)})
	}
}

// tail keeps the last lines written to it, handing each to onLine.
type tail struct {
	mu     sync.Mutex
	max    int
	lines  []string
	part   strings.Builder
	onLine func(string)
}

func (t *tail) add(line string) {
	if t.onLine != nil {
		t.onLine(line)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) Write(p []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if strings.HasSuffix(l, "\n") {
			t.mu.Lock()
			t.part.WriteString(strings.TrimSuffix(l, "\n"))
			line := t.part.String()
			t.part.Reset()
			t.mu.Unlock()
			t.add(line)
		} else if l != "" {
			t.mu.Lock()
			t.part.WriteString(l)
			t.mu.Unlock()
		}
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
