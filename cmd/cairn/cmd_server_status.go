package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/state"
)

func newServerStatusCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status [CLIENT]",
		Short: "Is everyone backed up? Backup age, level, size, quota and open alerts per client",
		Long: `Show, per client, when the server last received a snapshot and how long ago,
its level (OK, WARNING after --warn-after, ALERT after --alert-after; a client
that never backed up is aged from its enrolment), what it stores against its
quota, when its repositories were last proven restorable by ` + "`cairn drill`" + `
(the oldest; ALERT after --drill-after, default 35d, and a repository never
drilled is aged from the enrolment), and the alerts the running server has open; then the notifiers and
whether they deliver. On a terminal the level is green, yellow or red.
Thresholds are set per client with ` + "`cairn server client set NAME --warn-after D --alert-after D`" + `.`,
		Example: `  cairn server status
  cairn server status laptop
  cairn server status --json | jq '.clients[] | select(.level != "OK") | .name'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			only := ""
			if len(a) == 1 {
				only = a[0]
			}
			return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerStatus(c.Context(), g, d, only) })
		},
	}
}

func runServerStatus(ctx context.Context, g *GlobalOptions, d *datadir.Data, only string) error {
	r, err := monitor.Evaluate(ctx, d.State, d.StoredBytes, monitor.Clock()(), only)
	if errors.Is(err, state.ErrNoClient) {
		return withHint(err, "see `cairn server client list`")
	}
	if err != nil {
		return err
	}
	pace, err := fleetPacing(ctx, d.State, r.At)
	if err != nil {
		return err
	}
	if g.JSON {
		m := serverStatusMessage(r)
		m.Backups = pace
		return writeJSON(g.stdout, m)
	}
	if err := printStatus(g.stdout, r, isColourTerminal(g.stdout)); err != nil {
		return err
	}
	printPacing(g.stdout, pace)
	return nil
}

// fleetPacing is the server's backup queue (docs/server.md "Fleet
// pacing"): nil unless the server last ran with --max-backups. Running
// sessions are counted now; the queue is as the server last recorded it.
func fleetPacing(ctx context.Context, st *state.State, now time.Time) (*backupsJSON, error) {
	p, ok, err := st.Pacing(ctx)
	if err != nil || !ok || p.Limit <= 0 {
		return nil, err
	}
	live, err := st.LiveSessions(ctx, now)
	if err != nil {
		return nil, err
	}
	b := &backupsJSON{Limit: p.Limit, Queued: p.Queued, QueuedAt: p.Updated, Peak: p.Peak, PeakAt: timeOrNil(p.PeakAt), Since: p.Started}
	if b.Queued == nil {
		b.Queued = []string{}
	}
	for _, n := range live {
		b.Running += n
	}
	return b, nil
}

func printPacing(w io.Writer, b *backupsJSON) {
	if b == nil {
		return
	}
	queued := "none queued"
	if len(b.Queued) > 0 {
		names := make([]string, len(b.Queued))
		for i, n := range b.Queued {
			names[i] = displayText(n)
		}
		queued = fmt.Sprintf("%d queued at %s: %s", len(b.Queued), b.QueuedAt.Local().Format("15:04:05"), strings.Join(names, ", "))
	}
	fmt.Fprintf(w, "\nBackups: %d running of at most %d (peak %d since %s); %s\n", b.Running, b.Limit, b.Peak, b.Since.Local().Format("2006-01-02 15:04"), queued)
}

// isColourTerminal reports whether w is a terminal that may get colours
// (not when NO_COLOR is set).
func isColourTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == ""
}

// levelColour is green, yellow or red for OK, WARNING, ALERT.
func levelColour(l alert.Level) string {
	switch l {
	case alert.Alert:
		return "\x1b[31m"
	case alert.Warning:
		return "\x1b[33m"
	}
	return "\x1b[32m"
}

// shortAge renders a duration as a person reads it at a glance.
func shortAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// colourTable writes rows (the first is the header) aligned in columns,
// and, if colours is not nil, wraps row i's cell in column col in
// colours[i] (none if ""). Colour codes are added after alignment, so they
// take no width; cells before col must be ASCII (client names are).
func colourTable(w io.Writer, rows [][]string, col int, colours []string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	if colours != nil {
		off := strings.Index(lines[0], rows[0][col])
		for i := 1; i < len(rows) && i < len(lines); i++ {
			c, cell := colours[i-1], rows[i][col]
			if c == "" || off < 0 || !strings.HasPrefix(lines[i][off:], cell) {
				continue
			}
			lines[i] = lines[i][:off] + c + cell + "\x1b[0m" + lines[i][off+len(cell):]
		}
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

func printStatus(w io.Writer, r monitor.Report, colour bool) error {
	rows := [][]string{{"CLIENT", "STATE", "LAST BACKUP", "AGE", "STORED", "QUOTA", "LAST DRILL", "AUDIT", "AGENT", "ALERTS"}}
	var colours []string
	if colour {
		colours = []string{}
	}
	for _, c := range r.Clients {
		last, age := "never", shortAge(c.Age)
		switch {
		case !c.Never:
			last = c.LastBackup.Local().Format("2006-01-02 15:04 MST")
		case age == "just now":
			age = "enrolled just now"
		default:
			age = "enrolled " + age + " ago"
		}
		quota := "unlimited"
		if c.Quota > 0 {
			quota = fmt.Sprintf("%s (%.0f%% used)", formatBytes(uint64(c.Quota)), c.QuotaUsed*100)
		}
		alerts := "-"
		if len(c.Alerts) > 0 {
			var parts []string
			for _, ev := range c.Alerts {
				parts = append(parts, fmt.Sprintf("%s since %s", ev.Level, ev.Since.Local().Format("01-02 15:04")))
			}
			alerts = strings.Join(parts, "; ")
		}
		rows = append(rows, []string{c.Name, c.State, last, age, formatBytes(uint64(c.Stored)), quota, drillCell(c, r.At), auditCell(c.Audit), agentCell(c.AgentRun), alerts})
		if colour {
			code := levelColour(c.Level)
			if c.Disabled {
				code = ""
			}
			colours = append(colours, code)
		}
	}
	if err := colourTable(w, rows, 1, colours); err != nil {
		return err
	}
	for _, c := range r.Clients {
		if a := c.AgentRun; a != nil && a.Result != restapi.AgentOK {
			fmt.Fprintf(w, "%s: last agent run %s at %s: %s\n", c.Name, a.Result, a.End.Local().Format("2006-01-02 15:04 MST"), displayText(a.Error))
		}
	}
	if len(r.Notifiers) == 0 {
		fmt.Fprintln(w, "\nNo notifiers: alerts go only to the log and /metrics; add one with `cairn server notify add`.")
		return nil
	}
	fmt.Fprintln(w)
	return printNotifiers(w, r.Notifiers, colour)
}

// agentCell is a client's last reported agent run in a few words: its
// result and when it ended.
func agentCell(a *monitor.AgentRunSummary) string {
	if a == nil {
		return "-"
	}
	res := a.Result
	if res != restapi.AgentOK {
		res = strings.ToUpper(res)
	}
	return res + " " + a.End.Local().Format("01-02 15:04")
}

// auditCell is a client's last audit in a few words: when, coverage and
// damage.
func auditCell(a *monitor.AuditSummary) string {
	if a == nil {
		return "never"
	}
	s := fmt.Sprintf("%s, %.0f%% covered", a.At.Local().Format("01-02 15:04"), a.Coverage*100)
	switch {
	case a.Unhealed > 0:
		s += fmt.Sprintf(", %d BAD", a.Unhealed)
	case a.Healed > 0:
		s += fmt.Sprintf(", %d healed", a.Healed)
	}
	return s
}

// drillCell is a client's restore-drill state in a few words: when its
// oldest repository was last proven restorable, or never.
func drillCell(c monitor.ClientStatus, now time.Time) string {
	s := "never"
	if !c.LastDrill.IsZero() {
		s = shortAge(now.Sub(c.LastDrill)) + " ago"
		if s == "just now ago" {
			s = "just now"
		}
	}
	if c.DrillLevel == alert.Alert {
		s += " (ALERT)"
	}
	return s
}

// printNotifiers is the table of `notify list` and `status`.
func printNotifiers(w io.Writer, ns []monitor.NotifierStatus, colour bool) error {
	rows := [][]string{{"NOTIFIER", "KIND", "TARGET", "REPEAT", "HEALTH"}}
	var colours []string
	if colour {
		colours = []string{}
	}
	for _, n := range ns {
		rows = append(rows, []string{n.Name, n.Kind, displayText(n.Target), n.Repeat.String(), notifierHealth(n.NotifierStatus)})
		if colour {
			code := ""
			if n.Failing {
				code = "\x1b[31m"
			}
			colours = append(colours, code)
		}
	}
	return colourTable(w, rows, 4, colours)
}

// notifierHealth is one notifier's health in words.
func notifierHealth(n alert.NotifierStatus) string {
	switch {
	case n.Failing:
		return fmt.Sprintf("FAILING since %s: %s", n.ErrorAt.Local().Format("01-02 15:04"), displayText(n.LastError))
	case n.Sent > 0:
		return fmt.Sprintf("ok, %d sent, last %s", n.Sent, n.LastOK.Local().Format("01-02 15:04"))
	}
	return "nothing sent yet"
}
