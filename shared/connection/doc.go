// Package connection is the domain of the connection manager: what a
// connection is, the catalogue of connection types with their JSON Schemas,
// availability, and every permission rule (who may create, see, manage,
// change availability of, and use a connection).
//
// Each rule is one function here; handlers call them and nothing else
// re-implements them. This package holds no secret values: credentials are
// represented only by the names of the fields that are set.
package connection
