package runtime

import (
	"fmt"
	"io"
	"strings"

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
	fmt.Fprintf(&b, "  Events     GET %s%s   what the functions put on the bus\n", rt.URL, EventsPath)
	fmt.Fprintf(&b, "  Clock      POST %s%s {\"advance\": \"240h\"}   moves time for the whole runtime\n", rt.URL, ClockPath)
	fmt.Fprintf(&b, "  Tokens     POST %s%s with a JSON object of claims, e.g. {\"sub\":\"erin@contoso\",\"tid\":\"contoso\",\"sites\":[\"/sites/hr\"]}\n", rt.URL, devauth.TokenPath)
	fmt.Fprintf(&b, "             issuer %s, audience %s, RS256, valid %gh unless exp is set\n\n", devauth.Issuer, devauth.Audience, devauth.DefaultTTL.Hours())
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
	fmt.Fprintf(&b, "\nPersonas (tenant contoso); tokens expire %gh from now:\n", devauth.DefaultTTL.Hours())
	for _, p := range devauth.Personas() {
		tok, err := rt.Token(p.Claims)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "\n  %s: %s\n", p.Name, p.Description)
		fmt.Fprintf(&b, "    curl -s -H 'Authorization: Bearer %s' %s/connections\n", tok, rt.URL)
	}
	fmt.Fprintf(&b, "\nLogs go to stderr. Ctrl-C stops everything (the emulators keep nothing).\n")
	_, err := io.WriteString(w, b.String())
	return err
}
