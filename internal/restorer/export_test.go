package restorer

// SetHoldBudget sets the bytes assemblies may hold (holdBudget) for a
// test; the returned function restores it.
func SetHoldBudget(n int64) (undo func()) {
	old := holdBudget
	holdBudget = n
	return func() { holdBudget = old }
}
