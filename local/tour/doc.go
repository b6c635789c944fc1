// Package tour holds the test that runs README.md's tour as a newcomer
// would (`make tour`, and `make test` through `go test ./...`): the script
// between the tour markers, verbatim, under `bash -e`, against a fresh
// `make dev` build on a free port, so the README cannot drift from the
// product. It has no code of its own.
package tour
