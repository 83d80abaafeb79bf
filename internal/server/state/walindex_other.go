//go:build !linux

package state

import "errors"

// mapShared: elsewhere every data version check asks SQLite.
func mapShared(string, int) ([]byte, error) { return nil, errors.New("not mapped on this platform") }

func unmapShared([]byte) {}
