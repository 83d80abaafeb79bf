package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/ticker"
)

// statusLine is the one line of long work that rewrites itself on a
// terminal's standard error (UX.md "Long work"). A line printed to the
// terminal meanwhile calls clear first; the next draw brings it back.
type statusLine struct {
	g     *GlobalOptions
	mu    sync.Mutex
	drawn bool
}

// maxStatusWidth keeps the line on one row of a common terminal.
const maxStatusWidth = 120

func (s *statusLine) draw(line string) {
	if len(line) > maxStatusWidth {
		line = line[:maxStatusWidth-3] + "..."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.g.stderr, "\r\033[K%s", line)
	s.drawn = true
}

// clear erases the line, so that a line printed next stands alone.
func (s *statusLine) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drawn {
		fmt.Fprint(s.g.stderr, "\r\033[K")
		s.drawn = false
	}
}

// rateText is " 12.0 MiB/s" for bytes done in elapsed, or "".
func rateText(bytes uint64, elapsed time.Duration) string {
	if s := elapsed.Seconds(); s > 0 && bytes > 0 {
		return fmt.Sprintf(" %s/s", formatBytes(uint64(float64(bytes)/s)))
	}
	return ""
}

// progress renders the ticker.Counts of restore, check --read-data,
// prune and copy: a status line on a terminal ("[0:12] 34 of 120 files,
// 1.2 GiB of 4.0 GiB 98 MiB/s ETA 0:30"), status messages with --json (at
// most one a second), nothing otherwise (piped, or -q).
type progress struct {
	g              *GlobalOptions
	action, unit   string // "restore", "files"
	terminal, json bool
	line           statusLine
	mu             sync.Mutex
	last           time.Time
}

func newProgress(g *GlobalOptions, action, unit string) *progress {
	return &progress{g: g, action: action, unit: unit, json: g.JSON,
		terminal: !g.Quiet && !g.JSON && g.stderrIsTerminal(), line: statusLine{g: g}}
}

// counter starts a ticker.Counter that reports to p, or returns nil
// (count nothing) when p shows nothing.
func (p *progress) counter() *ticker.Counter {
	if !p.terminal && !p.json {
		return nil
	}
	return ticker.Start(p.update)
}

// estimate is the fraction done and the time left, from bytes where the
// total is known, else from items; 0 left when it cannot be told.
func estimate(c ticker.Counts) (float64, time.Duration) {
	done, total := c.Bytes, c.TotalBytes
	if total == 0 {
		done, total = c.Items, c.TotalItems
	}
	if total == 0 {
		return 0, 0
	}
	frac := min(float64(done)/float64(total), 1)
	if frac == 0 {
		return 0, 0
	}
	left := time.Duration(float64(c.Elapsed) * (1 - frac) / frac)
	return frac, left
}

func (p *progress) update(c ticker.Counts) {
	frac, left := estimate(c)
	switch {
	case p.json:
		p.mu.Lock()
		defer p.mu.Unlock()
		if !c.Final && time.Since(p.last) < time.Second {
			return
		}
		p.last = time.Now()
		writeJSON(p.g.stdout, progressStatusJSON{MessageType: "status", Action: p.action, Unit: p.unit,
			SecondsElapsed: int64(c.Elapsed.Seconds()), SecondsRemaining: int64(left.Seconds()), PercentDone: frac,
			ItemsDone: c.Items, TotalItems: c.TotalItems, BytesDone: c.Bytes, TotalBytes: c.TotalBytes})
	case p.terminal:
		p.line.draw(p.text(c, frac, left))
	}
}

// text is the status line for c.
func (p *progress) text(c ticker.Counts, frac float64, left time.Duration) string {
	line := fmt.Sprintf("[%s] %d of %d %s", formatDuration(c.Elapsed), c.Items, c.TotalItems, p.unit)
	if c.TotalBytes > 0 {
		line += fmt.Sprintf(", %s of %s", formatBytes(c.Bytes), formatBytes(c.TotalBytes))
	} else if c.Bytes > 0 {
		line += ", " + formatBytes(c.Bytes)
	}
	line += rateText(c.Bytes, c.Elapsed)
	if frac > 0 && frac < 1 {
		line += fmt.Sprintf(" %.0f%% ETA %s", 100*frac, formatDuration(left))
	}
	return line
}

// finish erases the status line; call it after the counter stopped.
func (p *progress) finish() { p.line.clear() }
