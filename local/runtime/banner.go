package runtime

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/connmgr/connmgr/local/demotarget"
	"github.com/connmgr/connmgr/local/devauth"
	"github.com/connmgr/connmgr/local/emulator"
)

// Banner prints where the runtime listens, the emulators' endpoints, the
// routes, and a token with a ready-to-paste curl line per persona.
func (rt *Runtime) Banner(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "connmgr local runtime (routes from %s)\n\n", "template.yaml")
	fmt.Fprintf(&b, "  API        %s\n", rt.URL)
	fmt.Fprintf(&b, "  DynamoDB   %s   table %s\n", rt.Stack.DynamoDB.URL, rt.Stack.TableName)
	fmt.Fprintf(&b, "  KMS        %s   key %s\n", rt.Stack.KMS.URL, emulator.KeyAlias)
	fmt.Fprintf(&b, "  Lambda     %s   functions %s\n", rt.LambdaURL, strings.Join(rt.Lambda.Names(), ", "))
	fmt.Fprintf(&b, "  OAuth 2    %s   local provider, every tenant's oauth2-generic, sharepoint-online and sharepoint-online-app client (approves at once)\n", rt.OAuth.Base())
	fmt.Fprintf(&b, "  Demo API   %s/api   a target for connections: HTTP Basic %s:%s or %s: %s; PUT %s/admin/credentials changes them\n",
		rt.DemoURL, demotarget.DefaultUsername, demotarget.DefaultPassword, demotarget.APIKeyHeader, demotarget.DefaultAPIKey, rt.DemoURL)
	fmt.Fprintf(&b, "  Services   GET %s%s   these URLs as JSON, for scripts\n", rt.URL, ServicesPath)
	fmt.Fprintf(&b, "  Events     GET %s%s   what the functions put on the bus, and the schedule's own events\n", rt.URL, EventsPath)
	fmt.Fprintf(&b, "  Clock      POST %s%s {\"advance\": \"240h\"}   moves time for the whole runtime; answers once what it fired has settled, listing it\n", rt.URL, ClockPath)
	fmt.Fprintf(&b, "  Tokens     POST %s%s with a JSON object of claims, e.g. {\"sub\":\"erin@contoso\",\"tid\":\"contoso\",\"sites\":[\"/sites/hr\"]}\n", rt.URL, devauth.TokenPath)
	fmt.Fprintf(&b, "             issuer %s, audience %s, RS256, valid %gh of real time unless exp is set: moving the clock does not age them\n\n", devauth.Issuer, devauth.Audience, devauth.DefaultTTL.Hours())
	fmt.Fprintf(&b, "Routes:\n")
	for _, f := range rt.Functions {
		for _, r := range f.Routes {
			auth := "JWT"
			if r.Public {
				auth = "public"
			}
			fmt.Fprintf(&b, "  %-40s %-8s → %s\n", r.Key(), auth, f.Folder)
		}
	}
	fmt.Fprintf(&b, "\nPersonas (tenant contoso); tokens expire %gh from now (real time), each with the line that mints a fresh one:\n", devauth.DefaultTTL.Hours())
	for _, p := range devauth.Personas() {
		tok, err := rt.Token(p.Claims)
		if err != nil {
			return err
		}
		claims, err := json.Marshal(p.Claims)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "\n  %s: %s\n", p.Name, p.Description)
		fmt.Fprintf(&b, "    curl -s -H 'Authorization: Bearer %s' %s/connections\n", tok, rt.URL)
		fmt.Fprintf(&b, "    curl -s -X POST %s%s -d '%s'\n", rt.URL, devauth.TokenPath, claims)
	}
	fmt.Fprintf(&b, "\nLogs go to stderr. Ctrl-C stops everything (the emulators keep nothing).\n")
	_, err := io.WriteString(w, b.String())
	return err
}
