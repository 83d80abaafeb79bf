package main

import (
	"fmt"

	"github.com/cairnbackup/cairn/internal/backend"
)

// backupQueuedJSON is backup --json's line while the server keeps the
// backup waiting in its queue (docs/server.md "Fleet pacing").
type backupQueuedJSON struct {
	MessageType   string `json:"message_type"` // "queued"
	Position      int    `json:"position"`
	Running       int    `json:"running"`
	Limit         int    `json:"limit"`
	SecondsWaited int64  `json:"seconds_waited"`
}

// queued shows where the backup waits in the server's queue: a status
// line on a terminal, a JSON line with --json, otherwise one line when it
// starts waiting (and each new place with -v), so a log says why the
// backup started late.
func (p *backupProgress) queued(w backend.QueueWait) {
	text := fmt.Sprintf("waiting for the server: %s in queue (%d of %d backups running)", ordinal(w.Position), w.Running, w.Limit)
	p.mu.Lock()
	first, moved := !p.waited, w.Position != p.position
	p.waited, p.position = true, w.Position
	p.mu.Unlock()
	switch {
	case p.g.JSON:
		writeJSON(p.g.stdout, backupQueuedJSON{MessageType: "queued", Position: w.Position, Running: w.Running, Limit: w.Limit, SecondsWaited: int64(w.Waited.Seconds())})
	case p.terminal:
		p.line.draw(fmt.Sprintf("[%s] %s", formatDuration(w.Waited), text))
	case p.g.Quiet:
	case first || moved && p.g.Verbose > 0:
		fmt.Fprintf(p.g.stderr, "cairn: %s\n", text)
	}
}

// ordinal is 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st.
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
