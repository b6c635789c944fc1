// Package iamproof proves the functions' least privilege by running them:
// its test translates template.yaml with aws-sam-translator (translate.py),
// gives each function's role policies, with the stack's real ARNs, to an IAM
// user of its own in a moto_server that enforces IAM (motoiam.py), builds
// the function from shared/app with that user's credentials and runs its
// scenarios. Every legitimate path must pass moto's IAM check; the calls a
// function must never make (kms:Decrypt outside the resolve function, the
// table from the OAuth callback, ...) must be denied.
//
// What moto cannot evaluate is said and checked in the test: condition keys
// (kms:EncryptionContextKeys) are held against the recorded calls instead.
// Only tests live here; nothing is linked into a Lambda binary.
package iamproof
