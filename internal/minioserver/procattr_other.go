//go:build !linux

package minioserver

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
