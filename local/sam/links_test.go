package sam_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/sam"
)

// sdkClients maps an IAM service prefix to the aws-sdk-go-v2 client package
// a function needs to call it.
var sdkClients = map[string]string{
	"dynamodb": "dynamodb",
	"kms":      "kms",
	"lambda":   "lambda",
	"events":   "eventbridge",
	"states":   "sfn",
}

const sdkService = "github.com/aws/aws-sdk-go-v2/service/"

// notInBootstraps are packages no function binary may link: the SDK's
// default configuration chain (app reads what Lambda sets), a general JSON
// Schema validator and the x/text tables of its messages (the catalogue
// checks its own keywords; event schemas are for tests), test-only
// libraries, reflection that keeps every method of every linked type, and
// the local stand-ins.
var notInBootstraps = []string{
	"github.com/aws/aws-sdk-go-v2/config",
	"github.com/aws/aws-sdk-go-v2/service/sts",
	"github.com/aws/aws-sdk-go-v2/service/sso",
	"github.com/santhosh-tekuri/jsonschema/",
	"golang.org/x/text/message",
	"golang.org/x/text/language",
	"github.com/awslabs/goformation/",
	"github.com/truora/minidyn",
	"github.com/nsmithuk/local-kms",
	"github.com/oauth2-proxy/mockoidc",
	"github.com/testcontainers/",
	"text/template",
	"html/template",
	"github.com/connmgr/connmgr/local/",
	"github.com/connmgr/connmgr/shared/app/functions",
}

// linkedPackages returns, for each function folder, every package its
// bootstrap links, as Lambda builds it (linux/arm64, lambda.norpc).
func linkedPackages(t *testing.T, root string) map[string][]string {
	t.Helper()
	out, err := goCmd(t, root, lambdaEnv, "list", "-tags", "lambda.norpc", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./functions/...")
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		folder, ok := strings.CutPrefix(f[0], "github.com/connmgr/connmgr/functions/")
		if !ok {
			t.Fatalf("go list: unexpected package %s", f[0])
		}
		deps[folder] = f[1:]
	}
	return deps
}

// (k) Each function's bootstrap links the SDK clients of exactly the AWS
// services its role may call (an unused client costs 0.3-0.8 MB of binary
// and says the function might call it), and nothing only the tests and the
// local runtime need.
func TestContractLinks(t *testing.T) {
	tmpl, fns := load(t)
	deps := linkedPackages(t, tmpl.Root)
	wiring := map[string]bool{}
	for _, f := range fns {
		wiring["github.com/connmgr/connmgr/shared/app/"+strings.ReplaceAll(f.Folder, "-", "")] = true
	}
	for _, f := range fns {
		t.Run(f.LogicalID, func(t *testing.T) {
			linked, ok := deps[f.Folder]
			if !ok {
				t.Fatalf("go list has no ./functions/%s", f.Folder)
			}
			granted := map[string]bool{}
			for _, a := range grantedActions(f.Policies) {
				prefix, _, _ := strings.Cut(strings.ToLower(a), ":")
				if c, ok := sdkClients[prefix]; ok {
					granted[c] = true
				}
			}
			clients := map[string]bool{}
			for _, p := range linked {
				if c, ok := strings.CutPrefix(p, sdkService); ok && !strings.Contains(c, "/") {
					clients[c] = true
				}
				for _, bad := range notInBootstraps {
					if p == strings.TrimSuffix(bad, "/") || strings.HasPrefix(p, bad) && strings.HasSuffix(bad, "/") {
						t.Errorf("functions/%s links %s", f.Folder, p)
					}
				}
				if wiring[p] && p != "github.com/connmgr/connmgr/shared/app/"+strings.ReplaceAll(f.Folder, "-", "") {
					t.Errorf("functions/%s links another function's wiring, %s", f.Folder, p)
				}
			}
			for c := range clients {
				if !granted[c] {
					t.Errorf("functions/%s links the %s client but %s grants %s no %s action", f.Folder, c, sam.TemplateFile, f.LogicalID, c)
				}
			}
			for c := range granted {
				if !clients[c] {
					t.Errorf("%s grants %s %s actions but functions/%s links no %s client: drop the grant", sam.TemplateFile, f.LogicalID, c, f.Folder, c)
				}
			}
			t.Logf("links %v", slices.Sorted(maps.Keys(clients)))
		})
	}
}

// grantedActions are the actions a function's inline statements and SAM
// policy templates allow.
func grantedActions(p sam.Policies) []string {
	var out []string
	for _, s := range p.Statements {
		if s.Effect == "Allow" {
			out = append(out, s.Action...)
		}
	}
	for _, name := range p.Templates {
		out = append(out, sam.TemplateActions[name]...)
	}
	return out
}
