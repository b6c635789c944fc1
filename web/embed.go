// Package web holds the Connections page's files: index.html and, under
// assets/, plain ES modules, the stylesheet and the icon, served as they
// are by shared/webpage (no build step: `make dev` needs only Go). It
// holds nothing else; `make test` type-checks the modules with tsc
// (web/tsconfig.json) and drives the page in Chromium (local/browsertest).
package web

import "embed"

// Files are index.html and assets/.
//
//go:embed index.html assets
var Files embed.FS
