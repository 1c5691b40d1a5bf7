package dendritetest

import "syscall"

// sysProcAttr makes the kernel SIGKILL Dendrite when the test binary dies, so
// no homeserver outlives a crashed or killed test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
