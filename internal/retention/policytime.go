package retention

import (
	"fmt"
	"time"
)

// TimeInput is what decides a snapshot's policy time (R14).
type TimeInput struct {
	Claimed     time.Time // the time the snapshot's statement claims
	Receipt     time.Time // coordinator-signed receipt, or in direct mode the storage's time for the file; zero if none
	OwnerSigned bool      // signed by the owner key, whose claims are trusted
	RepoCreated time.Time
	Now         time.Time
	// Tolerance is how far a claim may stray from its receipt; default 1h.
	Tolerance time.Duration
}

// PolicyTime returns the time retention ages a snapshot by, whether it is
// suspect, and what is odd about its claimed time. An owner-signed
// snapshot's own time is trusted; a writer's is aged by its receipt, never
// by its claim; a writer's snapshot without a receipt is suspect and aged
// as if it arrived now (so no policy deletes it for being old).
func PolicyTime(in TimeInput) (t time.Time, suspect bool, notes []string) {
	tol := in.Tolerance
	if tol == 0 {
		tol = time.Hour
	}
	if !in.Now.IsZero() && in.Claimed.After(in.Now.Add(tol)) {
		notes = append(notes, fmt.Sprintf("claims a time %s in the future", in.Claimed.Sub(in.Now).Round(time.Second)))
	}
	if !in.RepoCreated.IsZero() && in.Claimed.Before(in.RepoCreated.Add(-tol)) {
		notes = append(notes, fmt.Sprintf("claims a time %s before the repository was created", in.RepoCreated.Sub(in.Claimed).Round(time.Second)))
	}
	if !in.Receipt.IsZero() {
		if d := in.Claimed.Sub(in.Receipt); d > tol || d < -tol {
			notes = append(notes, fmt.Sprintf("claimed time is %s from its receipt", d.Round(time.Second)))
		}
	}
	switch {
	case in.OwnerSigned:
		return in.Claimed, false, notes
	case !in.Receipt.IsZero():
		return in.Receipt, len(notes) > 0, notes
	}
	notes = append(notes, "no receipt: aged as if it arrived now")
	return in.Now, true, notes
}
