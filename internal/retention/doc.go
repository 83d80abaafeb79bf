// Package retention decides which snapshots to keep. It is pure policy: no
// I/O, and the current time is always passed in, so every rule is tested
// against long synthetic histories with golden expectations.
//
// Three modes share one input (Snapshot) and one output (Decision, with the
// rules that kept each snapshot):
//
//   - Rules (Policy): restic's keep rules — last, hourly, daily, weekly,
//     monthly, yearly, within, tag — applied per group (host label, path
//     group, tags). A snapshot is kept if any rule keeps it.
//   - Importance (Importance): keep the N snapshots that best cover the
//     target ages 0, 1, 2, 3, 7, 14, 21, 28, 56 and 112 days, deleting the
//     least important first.
//   - Space (Space): delete least-important snapshots until the repository
//     fits a size budget or a disk has enough free space, never deleting a
//     floor snapshot (R13); when that cannot be met, refuse with
//     ErrBudget.
//
// Snapshot times are policy times (R14, PolicyTime): an owner-signed
// snapshot's own claimed time, a writer's snapshot's receipt time.
package retention
