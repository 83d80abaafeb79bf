package minioserver

import "syscall"

// procAttr has the kernel kill MinIO when the test binary dies, so a test
// killed by a timeout leaves no server behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
