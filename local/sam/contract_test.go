package sam_test

// The template contract: template.yaml is checked against the code, so a
// function, route, environment variable or permission cannot be added on
// one side only. Set CONNMGR_BUILD_LAMBDAS=1 to also run every function's
// `make build-<LogicalId>` (the arm64 build SAM runs; about a minute on a
// cold build cache).

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/connmgr/connmgr/local/devauth"
	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/functions"
	"github.com/connmgr/connmgr/shared/store"
)

// The one function allowed to decrypt secrets.
const decryptingFolder = "resolve"

// Managed policies a function may attach besides its inline statements.
var allowedManagedPolicies = []string{"AWSXRayDaemonWriteAccess"}

func load(t *testing.T) (*sam.Template, []sam.Function) {
	t.Helper()
	tmpl, err := sam.LoadFromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) == 0 {
		t.Fatalf("%s declares no functions", sam.TemplateFile)
	}
	return tmpl, fns
}

// goCmd runs the go command at the repository root.
func goCmd(t *testing.T, root string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

var lambdaEnv = []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"}

// (a) Every function is built from functions/<folder>, a main package that
// compiles; every folder there is a function of the template.
func TestContractFunctionsAreBuildable(t *testing.T) {
	tmpl, fns := load(t)
	declared := map[string]bool{}
	for _, f := range fns {
		t.Run(f.LogicalID, func(t *testing.T) {
			if f.Folder == "" {
				t.Fatalf("%s does not follow the naming convention <folder in CamelCase>Function", f.LogicalID)
			}
			declared[f.Folder] = true
			pkg := "./functions/" + f.Folder
			if st, err := os.Stat(filepath.Join(tmpl.Root, "functions", f.Folder)); err != nil || !st.IsDir() {
				t.Fatalf("%s: folder functions/%s does not exist", f.LogicalID, f.Folder)
			}
			// As Lambda builds it: linux/arm64 with lambda.norpc; -export
			// compiles the package and its dependencies (no link).
			out, err := goCmd(t, tmpl.Root, lambdaEnv, "list", "-export", "-tags", "lambda.norpc", "-e", "-f", "{{.Name}}|{{if .Error}}{{.Error}}{{end}}|{{range .DepsErrors}}{{.}} {{end}}", pkg)
			if err != nil {
				t.Fatalf("go list %s: %v\n%s", pkg, err, out)
			}
			name, rest, _ := strings.Cut(out, "|")
			if name != "main" {
				t.Errorf("%s is package %q, want main", pkg, name)
			}
			if strings.Trim(rest, "| ") != "" {
				t.Errorf("%s does not load for linux/arm64: %s", pkg, rest)
			}
		})
	}
	// Linking the arm64 bootstraps runs under CONNMGR_BUILD_LAMBDAS=1 in
	// TestContractMakefile, and in `make build`.
	entries, err := os.ReadDir(filepath.Join(tmpl.Root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !declared[e.Name()] {
			t.Errorf("functions/%s has no %s in %s", e.Name(), sam.LogicalID(e.Name()), sam.TemplateFile)
		}
	}
}

// (b) SAM builds each function with `make build-<LogicalId>`, which must
// write an arm64 bootstrap of ./functions/<folder> into $(ARTIFACTS_DIR);
// Globals pin provided.al2023 on arm64.
func TestContractMakefile(t *testing.T) {
	tmpl, fns := load(t)
	global, err := tmpl.CF.GetServerlessGlobalFunction()
	if err != nil {
		t.Fatalf("%s has no Globals.Function: %v", sam.TemplateFile, err)
	}
	if rt := aws.ToString(global.Runtime); rt != "provided.al2023" {
		t.Errorf("Globals.Function.Runtime = %q, want provided.al2023", rt)
	}
	var arch []string
	if global.Architectures != nil {
		arch = *global.Architectures
	}
	if !slices.Equal(arch, []string{"arm64"}) {
		t.Errorf("Globals.Function.Architectures = %v, want [arm64]", arch)
	}
	makePath, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed: cannot check the build-<LogicalId> targets")
	}
	build := os.Getenv("CONNMGR_BUILD_LAMBDAS") == "1"
	for _, f := range fns {
		t.Run(f.LogicalID, func(t *testing.T) {
			if f.BuildMethod != "makefile" {
				t.Errorf("%s Metadata.BuildMethod = %q, want makefile", f.LogicalID, f.BuildMethod)
			}
			if f.Runtime != "provided.al2023" || !slices.Equal(f.Architectures, []string{"arm64"}) || f.Handler != "bootstrap" {
				t.Errorf("%s runs %s on %v with handler %q; want provided.al2023, [arm64], bootstrap", f.LogicalID, f.Runtime, f.Architectures, f.Handler)
			}
			if cu := f.Resource.CodeUri; cu == nil || cu.String == nil || *cu.String != "." {
				t.Errorf("%s CodeUri must be . (the folder holding the Makefile)", f.LogicalID)
			}
			dir := t.TempDir()
			target := "build-" + f.LogicalID
			cmd := exec.Command(makePath, "-n", "-s", target, "ARTIFACTS_DIR="+dir)
			cmd.Dir = tmpl.Root
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the Makefile has no target %s: %v\n%s", target, err, out)
			}
			recipe := strings.Fields(string(out))
			for _, want := range []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "build", "lambda.norpc"} {
				if !slices.Contains(recipe, want) {
					t.Errorf("make %s does not pass %s:\n%s", target, want, out)
				}
			}
			if i := slices.Index(recipe, "-o"); i < 0 || i+1 >= len(recipe) || recipe[i+1] != filepath.Join(dir, "bootstrap") {
				t.Errorf("make %s does not write $(ARTIFACTS_DIR)/bootstrap:\n%s", target, out)
			}
			if recipe[len(recipe)-1] != "./functions/"+f.Folder {
				t.Errorf("make %s does not build ./functions/%s:\n%s", target, f.Folder, out)
			}
			if !build {
				return
			}
			cmd = exec.Command(makePath, "-s", target, "ARTIFACTS_DIR="+dir)
			cmd.Dir = tmpl.Root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make %s: %v\n%s", target, err, out)
			}
			bin, err := elf.Open(filepath.Join(dir, "bootstrap"))
			if err != nil {
				t.Fatalf("bootstrap: %v", err)
			}
			defer bin.Close()
			if bin.Machine != elf.EM_AARCH64 {
				t.Errorf("bootstrap is built for %v, want arm64", bin.Machine)
			}
		})
	}
}

// (c) Each function's environment in the template (with Globals) is exactly
// what app.LoadConfig reads, and the values point at the right resources.
func TestContractEnvironment(t *testing.T) {
	tmpl, fns := load(t)
	byFolder := map[string]sam.Function{}
	for _, f := range fns {
		byFolder[f.Folder] = f
	}
	for _, name := range app.Functions() {
		if _, ok := byFolder[name]; !ok {
			t.Errorf("app.Functions() has %q but %s has no %s", name, sam.TemplateFile, sam.LogicalID(name))
		}
	}
	for _, f := range fns {
		t.Run(f.LogicalID, func(t *testing.T) {
			if !slices.Contains(app.Functions(), f.Folder) {
				t.Fatalf("%s is in %s but app.Functions() lacks %q", f.LogicalID, sam.TemplateFile, f.Folder)
			}
			for _, problem := range envMismatches(f) {
				t.Error(problem)
			}
			for n, v := range f.Environment {
				checkEnvValue(t, tmpl, f.LogicalID, n, v)
			}
		})
	}
}

// envMismatches compares the variables the template sets for f with those
// app.LoadConfig reads for its folder: a variable on one side only is a
// mismatch, whichever side. A function may need no state machine ARN (or
// any other variable), as long as the template does not set it either.
func envMismatches(f sam.Function) []string {
	var read []string
	if _, err := app.LoadConfig(f.Folder, func(name string) string {
		read = append(read, name)
		return sampleEnv(name)
	}); err != nil {
		return []string{fmt.Sprintf("LoadConfig(%q) with every variable set: %v", f.Folder, err)}
	}
	want := map[string]bool{}
	for _, n := range read {
		if !slices.Contains(app.OptionalEnv, n) {
			want[n] = true
		}
	}
	var out []string
	for _, n := range slices.Sorted(maps.Keys(want)) {
		if _, ok := f.Environment[n]; !ok {
			out = append(out, fmt.Sprintf("the code reads %s but %s does not set it for %s", n, sam.TemplateFile, f.LogicalID))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(f.Environment)) {
		if !want[n] {
			out = append(out, fmt.Sprintf("%s sets %s for %s but the code never reads it", sam.TemplateFile, n, f.LogicalID))
		}
	}
	return out
}

// TestContractEnvironmentIsStrict: the comparison TestContractEnvironment
// makes fails a variable set on one side only. suspend-run answers task
// tokens and needs no state machine ARN (its !Ref would make a cycle:
// the state machine's definition invokes suspend-run); runs starts
// executions and needs it.
func TestContractEnvironmentIsStrict(t *testing.T) {
	tmpl, _ := load(t)
	for _, tc := range []struct {
		fn   string
		edit func(env map[string]string)
		want string // "" when the environments agree
	}{
		{app.FnSuspendRun, func(map[string]string) {}, ""},
		{app.FnSuspendRun, func(env map[string]string) { env[app.EnvStateMachineARN] = "ref:WorkflowRunStateMachine" },
			"sets STATE_MACHINE_ARN for SuspendRunFunction but the code never reads it"},
		{app.FnRuns, func(map[string]string) {}, ""},
		{app.FnRuns, func(env map[string]string) { delete(env, app.EnvStateMachineARN) },
			"the code reads STATE_MACHINE_ARN but " + sam.TemplateFile + " does not set it for RunsFunction"},
		{app.FnResumeRuns, func(env map[string]string) { env["UNUSED"] = "x" }, "sets UNUSED for ResumeRunsFunction"},
	} {
		f, err := tmpl.Function(sam.LogicalID(tc.fn))
		if err != nil {
			t.Fatal(err)
		}
		env := maps.Clone(f.Environment)
		tc.edit(env)
		f.Environment = env
		got := strings.Join(envMismatches(f), "\n")
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s with environment %v: mismatches %q, want %q", f.LogicalID, slices.Sorted(maps.Keys(env)), got, tc.want)
		}
	}
}

// sampleEnv is a valid value for every variable a function may read.
func sampleEnv(name string) string {
	switch name {
	case app.EnvLogLevel:
		return "INFO"
	case app.EnvOAuthRedirectURI:
		return "https://api.example.com/oauth/callback"
	case app.EnvTargetNetworks:
		return "public"
	case app.EnvAutoResume:
		return "true"
	case app.EnvExpiringWindowDays:
		return "7"
	case app.EnvTenantCostlyRate:
		return "10"
	case app.EnvJwtIssuer:
		return "https://login.example.com/tenant/v2.0"
	case app.EnvPageTokenEndpoint:
		return "https://example.auth.eu-west-1.amazoncognito.com/oauth2/token"
	case app.EnvDynamoDBEndpoint, app.EnvKMSEndpoint, app.EnvLambdaEndpoint:
		return ""
	}
	return "x"
}

// loadsWith loads fn's configuration with name set to value and every
// other variable to its sample.
func loadsWith(fn, name, value string) error {
	_, err := app.LoadConfig(fn, func(n string) string {
		if n == name {
			return value
		}
		return sampleEnv(n)
	})
	return err
}

// checkEnvValue checks what a known variable refers to.
func checkEnvValue(t *testing.T, tmpl *sam.Template, fn, name, value string) {
	t.Helper()
	switch name {
	case app.EnvTableName:
		target, ok := sam.RefTarget(value)
		if _, isTable := tmpl.CF.GetAllDynamoDBTableResources()[target]; !ok || !isTable {
			t.Errorf("%s %s = %q, want !Ref of the DynamoDB table", fn, name, value)
		}
	case app.EnvKMSKeyID:
		target, ok := sam.GetAttTarget(value)
		key, attr, _ := strings.Cut(target, ".")
		if _, isKey := tmpl.CF.GetAllKMSKeyResources()[key]; !ok || !isKey || attr != "Arn" {
			t.Errorf("%s %s = %q, want !GetAtt <KMS key>.Arn", fn, name, value)
		}
	case app.EnvStateMachineARN:
		machines, err := tmpl.StateMachines()
		if err != nil {
			t.Fatal(err)
		}
		target, _ := sam.RefTarget(value)
		if !slices.ContainsFunc(machines, func(m sam.StateMachine) bool { return m.LogicalID == target }) {
			t.Errorf("%s %s = %q, want !Ref of a state machine", fn, name, value)
		}
	case app.EnvResolveFunction:
		if target, ok := sam.RefTarget(value); !ok || target != sam.LogicalID(app.FnResolve) {
			t.Errorf("%s %s = %q, want !Ref %s", fn, name, value, sam.LogicalID(app.FnResolve))
		}
	case app.EnvOAuthRedirectURI, app.EnvTargetNetworks, app.EnvAutoResume:
		param, ok := tmpl.ParameterRef(value)
		if !ok {
			t.Errorf("%s %s = %q, want !Ref of a parameter", fn, name, value)
			return
		}
		p := tmpl.CF.Parameters[param]
		for _, v := range append(p.AllowedValues, p.Default) {
			fn := map[string]string{app.EnvTargetNetworks: app.FnResolve, app.EnvAutoResume: app.FnResumeRuns}[name]
			if s, _ := v.(string); s != "" && fn != "" {
				if err := loadsWith(fn, name, s); err != nil {
					t.Errorf("parameter %s allows %q, which LoadConfig rejects: %v", param, s, err)
				}
			}
		}
	case app.EnvExpiringWindowDays, app.EnvTenantCostlyRate:
		// A Number parameter whose whole range LoadConfig accepts.
		param, ok := tmpl.ParameterRef(value)
		if !ok {
			t.Errorf("%s %s = %q, want !Ref of a parameter", fn, name, value)
			return
		}
		p := tmpl.CF.Parameters[param]
		if p.Type != "Number" || p.MinValue == nil || p.MaxValue == nil {
			t.Errorf("parameter %s must be a Number with MinValue and MaxValue", param)
			return
		}
		def, _ := p.Default.(string)
		readBy := map[string]string{app.EnvExpiringWindowDays: app.FnExpiryCheck, app.EnvTenantCostlyRate: app.FnConnections}[name]
		for _, v := range []string{def, strconv.Itoa(int(*p.MinValue)), strconv.Itoa(int(*p.MaxValue))} {
			if err := loadsWith(readBy, name, v); err != nil {
				t.Errorf("parameter %s allows %q, which LoadConfig rejects: %v", param, v, err)
			}
		}
	case app.EnvPageTokenEndpoint:
		// Optional: its default (empty) and what its pattern admits load;
		// what LoadConfig refuses, the pattern refuses too.
		param, ok := tmpl.ParameterRef(value)
		if !ok {
			t.Errorf("%s %s = %q, want !Ref of a parameter", fn, name, value)
			return
		}
		p := tmpl.CF.Parameters[param]
		def, _ := p.Default.(string)
		if p.AllowedPattern == nil {
			t.Errorf("parameter %s needs an AllowedPattern", param)
			return
		}
		pattern := regexp.MustCompile(*p.AllowedPattern)
		for _, v := range []string{def, "", "https://example.auth.eu-west-1.amazoncognito.com/oauth2/token", "https://login.example.com",
			"http://idp.example.com/token", "https://idp.example.com/token?x=1", "https://user@idp.example.com/token", "idp.example.com/token"} {
			if loads := loadsWith(app.FnWeb, name, v) == nil; loads != pattern.MatchString(v) {
				t.Errorf("parameter %s: its pattern admits %q: %v; LoadConfig accepts it: %v", param, v, pattern.MatchString(v), loads)
			}
		}
	case app.EnvLogLevel:
		param, ok := tmpl.ParameterRef(value)
		if !ok {
			t.Errorf("%s %s = %q, want !Ref of a parameter", fn, name, value)
			return
		}
		p := tmpl.CF.Parameters[param]
		for _, v := range append(p.AllowedValues, p.Default) {
			var lvl slog.Level
			if s, _ := v.(string); lvl.UnmarshalText([]byte(s)) != nil {
				t.Errorf("parameter %s allows %v, which LoadConfig rejects", param, v)
			}
		}
	}
}

// (d) Routes: the template and each function's router agree on the route
// keys and on which are public; every route is on the one HttpApi.
func TestContractRoutes(t *testing.T) {
	tmpl, fns := load(t)
	api, err := tmpl.HTTPAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, f := range fns {
		t.Run(f.LogicalID, func(t *testing.T) {
			if !slices.Contains(app.Functions(), f.Folder) {
				t.Skipf("%s is not an app function (see TestContractEnvironment)", f.LogicalID)
			}
			cfg, err := app.LoadConfig(f.Folder, sampleEnv)
			if err != nil {
				t.Fatal(err)
			}
			a, err := app.New(ctx, cfg, app.Options{AWS: &aws.Config{Region: "us-east-1"}, LogOutput: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			router, err := functions.Router(a, f.Folder)
			if !f.IsHTTP() {
				if err == nil && len(router.Routes()) > 0 {
					t.Errorf("the code serves %v for %s but %s gives it no HttpApi events", router.Routes(), f.LogicalID, sam.TemplateFile)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s has HttpApi events but functions.Router(%q): %v", f.LogicalID, f.Folder, err)
			}
			code := router.Routes()
			for _, r := range f.Routes {
				if r.API != "ref:"+api.LogicalID {
					t.Errorf("%s event %s is on ApiId %q, want !Ref %s", f.LogicalID, r.Event, r.API, api.LogicalID)
				}
				if !slices.Contains(code, r.Key()) {
					t.Errorf("%s declares %s (event %s) but no handler serves it", sam.TemplateFile, r.Key(), r.Event)
					continue
				}
				if r.Public != router.IsPublic(r.Key()) {
					t.Errorf("%s: public in %s = %v (authorizer %q), in the code = %v", r.Key(), sam.TemplateFile, r.Public, r.Authorizer, router.IsPublic(r.Key()))
				}
			}
			for _, k := range code {
				if !slices.Contains(f.RouteKeys(), k) {
					t.Errorf("the code serves %s but %s gives %s no such HttpApi event", k, sam.TemplateFile, f.LogicalID)
				}
			}
		})
	}
}

// (e) IAM: only the resolver decrypts; the connections function seals;
// nobody scans; every permission is checkable.
func TestContractIAM(t *testing.T) {
	_, fns := load(t)
	for _, f := range fns {
		t.Run(f.LogicalID, func(t *testing.T) {
			if f.Role != "" {
				t.Fatalf("%s names its own Role; its permissions must be Policies the contract can read", f.LogicalID)
			}
			for _, m := range f.Policies.Managed {
				if !slices.Contains(allowedManagedPolicies, m) {
					t.Errorf("%s attaches managed policy %s; write an inline statement instead", f.LogicalID, m)
				}
			}
			for _, tpl := range f.Policies.Templates {
				if _, known := sam.TemplateActions[tpl]; !known {
					t.Errorf("%s uses SAM policy template %s, whose actions sam.TemplateActions does not list", f.LogicalID, tpl)
				}
			}
			for _, s := range f.Policies.Statements {
				if len(s.NotAction) > 0 || len(s.NotResource) > 0 {
					t.Errorf("%s statement %q uses NotAction/NotResource", f.LogicalID, s.Sid)
				}
				if slices.Contains(s.Action, "*") {
					t.Errorf("%s statement %q allows every action", f.LogicalID, s.Sid)
				}
			}
			// ForAllValues:StringEquals holds for a request with no
			// encryption context at all; the Null condition refuses that.
			for _, s := range f.Policies.Statements {
				if !s.Allows("kms:Decrypt") && !s.Allows("kms:GenerateDataKey") {
					continue
				}
				if fmt.Sprint(at(s.Condition, "Null", "kms:EncryptionContextKeys")) != "false" {
					t.Errorf("%s statement %q allows %v without the condition Null kms:EncryptionContextKeys = false", f.LogicalID, s.Sid, s.Action)
				}
				if at(s.Condition, "ForAllValues:StringEquals", "kms:EncryptionContextKeys") == nil {
					t.Errorf("%s statement %q allows %v without ForAllValues:StringEquals on kms:EncryptionContextKeys", f.LogicalID, s.Sid, s.Action)
				}
			}
			decrypts := f.Policies.Grants("kms:Decrypt")
			if decrypts && f.Folder != decryptingFolder {
				t.Errorf("%s may kms:Decrypt; only functions/%s may", f.LogicalID, decryptingFolder)
			}
			if f.Folder == app.FnConnections && !f.Policies.Grants("kms:GenerateDataKey") {
				t.Errorf("%s must be allowed kms:GenerateDataKey to seal new secrets", f.LogicalID)
			}
			if f.Policies.Grants("dynamodb:Scan") {
				t.Errorf("%s may dynamodb:Scan; every access pattern is a key lookup or a Query", f.LogicalID)
			}
			if f.Folder == app.FnExpiryCheck {
				// It refreshes through the resolver and never needs a key.
				for _, a := range []string{"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"} {
					if f.Policies.Grants(a) {
						t.Errorf("%s may %s; the expiry check never touches a key", f.LogicalID, a)
					}
				}
				for _, st := range f.Policies.Statements {
					if st.Allows("dynamodb:Query") {
						for _, r := range st.Resource {
							if !strings.HasSuffix(r, "/index/gsi3") && !strings.HasSuffix(r, "/index/gsi1") {
								t.Errorf("%s may Query %s; it queries only the due index and the outbox partition of gsi1", f.LogicalID, r)
							}
						}
					}
				}
			}
		})
	}
}

// (f) The table, the key and the authorizer are configured as deployed.
func TestContractResources(t *testing.T) {
	tmpl, _ := load(t)
	tables := tmpl.CF.GetAllDynamoDBTableResources()
	if len(tables) != 1 {
		t.Fatalf("%d DynamoDB tables, want 1", len(tables))
	}
	for id, tb := range tables {
		if aws.ToString(tb.BillingMode) != "PAY_PER_REQUEST" {
			t.Errorf("%s BillingMode = %q, want PAY_PER_REQUEST", id, aws.ToString(tb.BillingMode))
		}
		if p := tb.PointInTimeRecoverySpecification; p == nil || !aws.ToBool(p.PointInTimeRecoveryEnabled) {
			t.Errorf("%s has no point-in-time recovery", id)
		}
		if ttl := tb.TimeToLiveSpecification; ttl == nil || !ttl.Enabled || aws.ToString(ttl.AttributeName) == "" {
			t.Errorf("%s has no TTL attribute", id)
		}
	}
	keys := tmpl.CF.GetAllKMSKeyResources()
	if len(keys) == 0 {
		t.Fatal("no KMS key")
	}
	aliases := tmpl.CF.GetAllKMSAliasResources()
	for id, k := range keys {
		if !aws.ToBool(k.EnableKeyRotation) {
			t.Errorf("KMS key %s: EnableKeyRotation must be true", id)
		}
		aliased := false
		for _, a := range aliases {
			if target, ok := sam.RefTarget(a.TargetKeyId); ok && target == id && strings.Contains(a.AliasName, "alias/") {
				aliased = true
			}
		}
		if !aliased {
			t.Errorf("KMS key %s has no AWS::KMS::Alias", id)
		}
	}
	api, err := tmpl.HTTPAPI()
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := api.DefaultJWTAuthorizer()
	if err != nil {
		t.Fatal(err)
	}
	if jwt.IdentitySource != "$request.header.Authorization" {
		t.Errorf("authorizer %s IdentitySource = %q, want $request.header.Authorization", jwt.Name, jwt.IdentitySource)
	}
	if _, ok := tmpl.ParameterRef(jwt.Issuer); !ok {
		t.Errorf("authorizer %s issuer = %q, want !Ref of a template parameter", jwt.Name, jwt.Issuer)
	}
	if len(jwt.Audience) == 0 {
		t.Errorf("authorizer %s has no audience", jwt.Name)
	}
	for _, a := range jwt.Audience {
		if _, ok := tmpl.ParameterRef(a); !ok {
			t.Errorf("authorizer %s audience %q, want !Ref of a template parameter", jwt.Name, a)
		}
	}
}

// (g) The local identity provider's routes never reach the deployed API.
func TestContractNoDevRoutes(t *testing.T) {
	_, fns := load(t)
	for _, f := range fns {
		for _, r := range f.Routes {
			if r.Path == "/dev" || strings.HasPrefix(r.Path, "/dev/") || r.Path == devauth.TokenPath {
				t.Errorf("%s declares %s: /dev/ routes are local-only", f.LogicalID, r.Key())
			}
		}
	}
}

// (h) State machines: every ${placeholder} of a definition has a
// DefinitionSubstitution and every substitution is used; each function a
// definition invokes is a function of the template its role may invoke;
// no state machine may decrypt.
func TestContractStateMachines(t *testing.T) {
	tmpl, _ := load(t)
	machines, err := tmpl.StateMachines()
	if err != nil {
		t.Fatal(err)
	}
	if len(machines) == 0 {
		t.Fatal("the template has no state machine")
	}
	for _, m := range machines {
		t.Run(m.LogicalID, func(t *testing.T) {
			used := m.Placeholders()
			for _, p := range used {
				if _, ok := m.Substitutions[p]; !ok {
					t.Errorf("%s uses ${%s}, which DefinitionSubstitutions does not set", m.DefinitionPath, p)
				}
			}
			for name, v := range m.Substitutions {
				if !slices.Contains(used, name) {
					t.Errorf("substitution %s is not used by %s", name, m.DefinitionPath)
				}
				target, ok := sam.GetAttTarget(v)
				fn, attr, _ := strings.Cut(target, ".")
				if !ok || attr != "Arn" {
					t.Errorf("substitution %s = %q, want !GetAtt <Function>.Arn", name, v)
					continue
				}
				if _, err := tmpl.Function(fn); err != nil {
					t.Errorf("substitution %s names %s, which is not a function of the template", name, fn)
				}
				allowed := false
				for _, s := range m.Policies.Statements {
					if s.Allows("lambda:InvokeFunction") && slices.Contains(s.Resource, v) {
						allowed = true
					}
				}
				if !allowed {
					t.Errorf("the role of %s may not lambda:InvokeFunction %s", m.LogicalID, fn)
				}
			}
			if m.Policies.Grants("kms:Decrypt") {
				t.Errorf("%s may kms:Decrypt", m.LogicalID)
			}
		})
	}
}

// (i) Each AWS API the code of a function calls is granted by its role:
// the calls are listed here per function, as the code makes them.
func TestContractFunctionGrants(t *testing.T) {
	_, fns := load(t)
	calls := map[string][]string{
		app.FnConnections:   {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "kms:GenerateDataKey", "lambda:InvokeFunction", "events:PutEvents"},
		app.FnResolve:       {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "kms:Decrypt", "kms:GenerateDataKey", "events:PutEvents"},
		app.FnOAuthCallback: {"lambda:InvokeFunction"},
		app.FnRuns:          {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem", "states:StartExecution", "states:StopExecution", "states:SendTaskSuccess", "states:SendTaskFailure", "events:PutEvents"},
		app.FnRunStep:       {"dynamodb:GetItem", "dynamodb:PutItem", "lambda:InvokeFunction", "events:PutEvents"},
		app.FnSuspendRun:    {"dynamodb:GetItem", "dynamodb:PutItem", "states:SendTaskSuccess", "states:SendTaskFailure", "events:PutEvents"},
		app.FnFinishRun:     {"dynamodb:GetItem", "dynamodb:PutItem", "events:PutEvents"},
		app.FnResumeRuns:    {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "states:SendTaskSuccess", "events:PutEvents"},
		app.FnExpiryCheck: {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
			"dynamodb:ConditionCheckItem", "lambda:InvokeFunction", "events:PutEvents"},
		app.FnWeb: {}, // the page: embedded files, no AWS call
	}
	for _, f := range fns {
		want, ok := calls[f.Folder]
		if !ok {
			t.Errorf("%s: list the AWS calls of functions/%s in this test", f.LogicalID, f.Folder)
			continue
		}
		for _, action := range want {
			if !f.Policies.Grants(action) {
				t.Errorf("%s calls %s but its role does not allow it", f.LogicalID, action)
			}
		}
	}
}

// (j) The expiry check: its schedule comes from a parameter whose default
// and pattern admit EventBridge expressions the local bus accepts, and the
// table has the due index the store files items in, projecting what the
// store reads back.
func TestContractExpiryCheck(t *testing.T) {
	tmpl, fns := load(t)
	rules, err := tmpl.EventRules()
	if err != nil {
		t.Fatal(err)
	}
	var schedules []sam.EventRule
	for _, r := range rules {
		if r.Kind == sam.RuleSchedule && r.Targets[0].Function == sam.LogicalID(app.FnExpiryCheck) {
			schedules = append(schedules, r)
		}
	}
	if len(schedules) != 1 {
		t.Fatalf("%s has %d Schedule events, want 1", sam.LogicalID(app.FnExpiryCheck), len(schedules))
	}
	param, ok := tmpl.ParameterRef(schedules[0].Schedule)
	if !ok {
		t.Fatalf("the expiry check's Schedule = %q, want !Ref of a parameter", schedules[0].Schedule)
	}
	p := tmpl.CF.Parameters[param]
	def, _ := p.Default.(string)
	if _, err := eventbus.ParseSchedule(def); err != nil || def != "rate(1 hour)" {
		t.Errorf("parameter %s default %q: want rate(1 hour) (%v)", param, def, err)
	}
	if p.AllowedPattern == nil || !regexp.MustCompile(*p.AllowedPattern).MatchString(def) || regexp.MustCompile(*p.AllowedPattern).MatchString("every hour") {
		t.Errorf("parameter %s AllowedPattern must admit rate(...) and cron(...) only", param)
	}
	for _, f := range fns {
		if f.Folder == app.FnExpiryCheck && f.Timeout < 60 {
			t.Errorf("%s Timeout = %d s; give it minutes", f.LogicalID, f.Timeout)
		}
	}
	in, err := tmpl.CreateTableInput("t")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range in.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) != store.IndexDue {
			continue
		}
		found = true
		if len(g.KeySchema) != 2 || aws.ToString(g.KeySchema[0].AttributeName) != "gsi3pk" || aws.ToString(g.KeySchema[1].AttributeName) != "gsi3sk" {
			t.Errorf("%s keys: %+v, want gsi3pk HASH, gsi3sk RANGE", store.IndexDue, g.KeySchema)
		}
		if g.Projection == nil || g.Projection.ProjectionType != "INCLUDE" || !slices.Equal(g.Projection.NonKeyAttributes, store.DueProjection) {
			t.Errorf("%s projection: %+v, want INCLUDE %v", store.IndexDue, g.Projection, store.DueProjection)
		}
	}
	if !found {
		t.Errorf("the table has no index %s", store.IndexDue)
	}
}

// (j) Each main hands Main its own function's builder: the Handler of its
// own package under shared/app, the one functions.Builder names for the
// folder, so a main can neither serve another function nor link more than
// its function uses (TestContractLinks checks what it links).
func TestContractMains(t *testing.T) {
	tmpl, fns := load(t)
	call := regexp.MustCompile(`app\.Main\(app\.(Fn\w+), (\w+)\.Handler\)`)
	for _, f := range fns {
		src, err := os.ReadFile(filepath.Join(tmpl.Root, "functions", f.Folder, "main.go"))
		if err != nil {
			t.Errorf("%s: %v", f.LogicalID, err)
			continue
		}
		m := call.FindSubmatch(src)
		if m == nil {
			t.Errorf("functions/%s/main.go does not call app.Main(app.Fn..., <package>.Handler)", f.Folder)
			continue
		}
		pkg := "github.com/connmgr/connmgr/shared/app/" + string(m[2])
		if !strings.Contains(string(src), strconv.Quote(pkg)) {
			t.Errorf("functions/%s/main.go passes %s.Handler but does not import %s", f.Folder, m[2], pkg)
		}
		b, ok := functions.Builder(f.Folder)
		if !ok {
			t.Errorf("functions.Builder(%q) is missing", f.Folder)
			continue
		}
		if got := goruntime.FuncForPC(reflect.ValueOf(b).Pointer()).Name(); got != pkg+".Handler" {
			t.Errorf("functions/%s/main.go passes %s.Handler; functions.Builder(%q) is %s", f.Folder, pkg, f.Folder, got)
		}
		if fnConst := appFunctionConstant(string(m[1])); fnConst != f.Folder {
			t.Errorf("functions/%s/main.go configures app.%s (%q)", f.Folder, m[1], fnConst)
		}
	}
}

// appFunctionConstant is the value of the app.Fn* constant named name.
func appFunctionConstant(name string) string {
	for _, fn := range app.Functions() {
		if "Fn"+strings.ReplaceAll(cases(fn), "-", "") == name {
			return fn
		}
	}
	return ""
}

// cases turns "run-step" into "Run-Step".
func cases(s string) string {
	parts := strings.Split(s, "-")
	for i, p := range parts {
		if p == "oauth" {
			parts[i] = "OAuth"
			continue
		}
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(parts, "-")
}
