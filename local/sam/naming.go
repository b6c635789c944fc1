package sam

import (
	"strings"
	"unicode"
)

// FunctionSuffix ends every function's logical id.
const FunctionSuffix = "Function"

// LogicalID is the logical id of the function built from functions/<folder>:
// the folder in CamelCase plus "Function" ("oauth-callback" →
// "OauthCallbackFunction"). SAM's makefile build calls build-<LogicalID>.
func LogicalID(folder string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(folder, func(r rune) bool { return r == '-' || r == '_' }) {
		rs := []rune(part)
		b.WriteRune(unicode.ToUpper(rs[0]))
		b.WriteString(string(rs[1:]))
	}
	return b.String() + FunctionSuffix
}

// Folder is LogicalID's inverse ("OauthCallbackFunction" →
// "oauth-callback"); ok is false when id does not follow the convention.
func Folder(logicalID string) (folder string, ok bool) {
	name, found := strings.CutSuffix(logicalID, FunctionSuffix)
	if !found || name == "" || !unicode.IsUpper([]rune(name)[0]) {
		return "", false
	}
	var b strings.Builder
	for i, r := range name {
		switch {
		case unicode.IsUpper(r):
			if i > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsLower(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	folder = b.String()
	return folder, LogicalID(folder) == logicalID
}
