// Package walker reads a snapshot's trees: it loads and validates them
// (stored trees are hostile input, R18), walks them in order with loads
// running ahead (Walk, WalkLost), finds a path (FindNode), bounds a
// snapshot's expansion before anything walks it (Expander, CheckSize), and
// computes what ls, find, diff and stats show of trees (Diff, Stats).
// Restore (internal/restorer), check, repair, copy, mount and the
// commands all walk through it.
package walker
