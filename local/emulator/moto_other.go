//go:build !linux

package emulator

import "os/exec"

// killWithParent: only Linux can tie a child's life to its parent's; here
// a test binary that is killed (rather than ending) leaves its moto_server
// running.
func killWithParent(*exec.Cmd) {}
