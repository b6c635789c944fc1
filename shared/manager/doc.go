// Package manager is the connection management service behind the
// connections function: create, read, list, update, delete, availability,
// owners and audit, with every permission rule from package connection
// applied on every path.
//
// Secrets are write-only: credentials are sealed on arrival (this package can
// generate data keys but never decrypt), and responses, audit entries and
// errors carry only the names of the credential fields that are set.
package manager
