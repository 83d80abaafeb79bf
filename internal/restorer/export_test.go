package restorer

// SetHoldBudget sets the bytes assemblies may hold (holdBudget) for a
// test; the returned function restores it.
func SetHoldBudget(n int64) (undo func()) {
	old := holdBudget
	holdBudget = n
	return func() { holdBudget = old }
}

// SetRestoreBatch sets how many files make a batch (restoreBatch) for a
// test; the returned function restores it.
func SetRestoreBatch(n int) (undo func()) {
	old := restoreBatch
	restoreBatch = n
	return func() { restoreBatch = old }
}
