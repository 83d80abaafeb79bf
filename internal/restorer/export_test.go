package restorer

import "github.com/cairnbackup/cairn/internal/fsmeta"

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

// SetWriteback sets how many bytes a restore writes between background
// flushes (writebackEvery) and what flushes (flush gets the real one to
// call), for a test; the returned function restores both.
func SetWriteback(every uint64, flush func(real func() error) error) (undo func()) {
	oldEvery, oldSync := writebackEvery, syncFS
	writebackEvery = every
	syncFS = func(r *fsmeta.Restorer) error { return flush(r.SyncFS) }
	return func() { writebackEvery, syncFS = oldEvery, oldSync }
}
