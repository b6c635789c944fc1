package connection

import (
	"strings"
	"testing"
)

// FuzzCredentialErrors: whatever fields and values credentials carry, a
// validation error names fields, never a value (nor its length).
func FuzzCredentialErrors(f *testing.F) {
	f.Add("username", "password", "", "p")
	f.Add("username", "secret", "u", "x")
	f.Add("apiKey", "apiKey2", strings.Repeat("k", 5000), "")
	f.Fuzz(func(t *testing.T, k1, k2, v1, v2 string) {
		if strings.Contains(k1+k2, "CANARY") {
			return
		}
		// Values carry a marker no field name holds, so any trace of
		// one in an error is a leak.
		creds := Credentials{k1: "CANARY" + v1, k2: "CANARY" + v2}
		for _, typ := range Types() {
			if err := typ.ValidateCredentials(creds); err != nil && strings.Contains(err.Error(), "CANARY") {
				t.Fatalf("%s: error %q repeats a credential value", typ.ID, err)
			}
		}
	})
}
