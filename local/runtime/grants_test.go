package runtime_test

import (
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/runtime"
)

// iamAction is the IAM action that authorizes an SDK operation; "" for
// operations authorized per item (a DynamoDB transaction needs the item
// actions it contains, which the functions' roles list).
func iamAction(op string) string {
	service, name, _ := strings.Cut(op, ":")
	switch service {
	case "DynamoDB":
		if strings.HasPrefix(name, "Transact") {
			return ""
		}
		return "dynamodb:" + name
	case "KMS":
		return "kms:" + name
	case "Lambda":
		if name == "Invoke" {
			return "lambda:InvokeFunction"
		}
		return "lambda:" + name
	case "SFN":
		return "states:" + name
	case "EventBridge":
		return "events:" + name
	}
	return strings.ToLower(service) + ":" + name
}

// checkCallsGranted holds every AWS call each function made during a test
// against the function's role in template.yaml: a call the deployed role
// would refuse fails here, not in production.
func checkCallsGranted(t *testing.T, rt *runtime.Runtime) {
	t.Helper()
	fns, err := rt.Template.Functions()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range fns {
		for _, op := range rt.Calls.Of(f.LogicalID) {
			action := iamAction(op)
			if action == "" {
				continue
			}
			checked++
			if !f.Policies.Grants(action) {
				t.Errorf("%s called %s, but its role in template.yaml does not allow %s", f.LogicalID, op, action)
			}
		}
	}
	if checked == 0 {
		t.Error("no AWS call was recorded")
	}
	t.Logf("%d distinct (function, operation) calls checked against the functions' roles", checked)
}
