package emulator

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill the child when the thread that
// started it ends; StartMoto keeps that thread for the child's lifetime, so
// the server dies with the test binary, however it ends.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
