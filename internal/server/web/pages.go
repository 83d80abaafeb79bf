package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// historyPoints is how many samples the client page shows.
const historyPoints = 500

// row is one client on the overview.
type row struct {
	monitor.ClientStatus
	URL         string
	Class       string // ok, warning, alert, off
	DrillClass  string
	LastBackup  string
	Age         string
	Stored      string
	Quota       string
	LastDrill   string
	Replication []ReplicaLag
	ReplNote    string
}

func levelClass(l alert.Level, disabled bool) string {
	switch {
	case disabled:
		return "off"
	case l == alert.Alert:
		return "alert"
	case l == alert.Warning:
		return "warning"
	}
	return "ok"
}

func (h *Handler) rows(r *http.Request, rep monitor.Report) []row {
	out := make([]row, 0, len(rep.Clients))
	for _, c := range rep.Clients {
		x := row{ClientStatus: c, URL: clientURL(c.Name), Class: levelClass(c.Level, c.Disabled), DrillClass: levelClass(c.DrillLevel, c.Disabled),
			LastBackup: "never", Age: shortAge(c.Age), Stored: iec(c.Stored), Quota: "unlimited", LastDrill: "never"}
		if !c.Never {
			x.LastBackup = c.LastBackup.Format("2006-01-02 15:04 MST")
		} else {
			x.Age = "enrolled " + x.Age + " ago"
		}
		if c.Quota > 0 {
			x.Quota = fmt.Sprintf("%s (%.0f%%)", iec(c.Quota), c.QuotaUsed*100)
		}
		if !c.LastDrill.IsZero() {
			if x.LastDrill = shortAge(rep.At.Sub(c.LastDrill)); x.LastDrill != "just now" {
				x.LastDrill += " ago"
			}
		}
		if h.Replication == nil {
			x.ReplNote = "no replication status source"
		} else if lags, err := h.Replication(r.Context(), c.Name); err != nil {
			x.ReplNote = err.Error()
		} else if len(lags) == 0 {
			x.ReplNote = "not replicated"
		} else {
			x.Replication = lags
		}
		out = append(out, x)
	}
	return out
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s *session) {
	rep, err := monitor.Evaluate(r.Context(), h.State, h.Stored, h.now(), "")
	if err != nil {
		h.log().Error("web: overview", "err", err)
		http.Error(w, "state database unavailable", http.StatusServiceUnavailable)
		return
	}
	h.render(w, http.StatusOK, "overview", map[string]any{"Admin": s.admin, "CSRF": s.csrf, "At": rep.At.Format(time.RFC3339),
		"Rows": h.rows(r, rep), "Notifiers": rep.Notifiers, "Alerts": rep.Alerts, "Backups": h.backups(r, rep.At)})
}

// backups is the fleet pacing line (docs/server.md "Fleet pacing"): nil
// without a limit, or when the state database cannot say.
func (h *Handler) backups(r *http.Request, now time.Time) *state.Pacing {
	p, ok, err := h.State.Pacing(r.Context())
	if err != nil || !ok || p.Limit <= 0 {
		return nil
	}
	live, err := h.State.LiveSessions(r.Context(), now)
	if err != nil {
		return nil
	}
	p.Running = 0
	for _, n := range live {
		p.Running += n
	}
	return &p
}

// point is one sample of the client page's history.
type point struct {
	At        string
	Last      string
	Snapshots int64
	Stored    string
}

func (h *Handler) client(w http.ResponseWriter, r *http.Request, s *session, escaped string) {
	name, err := url.PathUnescape(escaped)
	if err != nil || name == "" || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	rep, err := monitor.Evaluate(r.Context(), h.State, h.Stored, h.now(), name)
	if errors.Is(err, state.ErrNoClient) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.log().Error("web: client page", "client", name, "err", err)
		http.Error(w, "state database unavailable", http.StatusServiceUnavailable)
		return
	}
	hist, err := h.State.History(r.Context(), name, historyPoints)
	if err != nil {
		h.log().Error("web: client history", "client", name, "err", err)
		http.Error(w, "state database unavailable", http.StatusServiceUnavailable)
		return
	}
	c := rep.Clients[0]
	// The figure now ends the history (the monitor samples it only at
	// its checks).
	if n := len(hist); n == 0 || hist[n-1].Stored != c.Stored || hist[n-1].Snapshots != c.Snapshots {
		hist = append(hist, reports.Sample{At: rep.At, Last: c.LastBackup, Snapshots: c.Snapshots, Stored: c.Stored})
	}
	pts := make([]point, 0, len(hist))
	for i := len(hist) - 1; i >= 0; i-- { // newest first in the table
		p := hist[i]
		last := "never"
		if !p.Last.IsZero() {
			last = p.Last.Format("2006-01-02 15:04 MST")
		}
		pts = append(pts, point{At: p.At.Format("2006-01-02 15:04 MST"), Last: last, Snapshots: p.Snapshots, Stored: iec(p.Stored)})
	}
	h.render(w, http.StatusOK, "client", map[string]any{"Admin": s.admin, "CSRF": s.csrf, "At": rep.At.Format(time.RFC3339),
		"Row": h.rows(r, rep)[0], "Chart": chart(hist), "History": pts})
}

// chart draws stored bytes over time as an inline SVG: a step line (the
// size holds until the next sample), axes labelled with the first and last
// time and the largest size.
func chart(hist []reports.Sample) template.HTML {
	const W, H, L, B, T, R = 720.0, 240.0, 80.0, 30.0, 10.0, 10.0
	if len(hist) == 0 {
		return ""
	}
	t0, t1 := hist[0].At, hist[len(hist)-1].At
	if !t1.After(t0) {
		t1 = t0.Add(time.Hour)
	}
	var top int64 = 1
	for _, p := range hist {
		top = max(top, p.Stored)
	}
	x := func(t time.Time) float64 { return L + (W-L-R)*float64(t.Sub(t0))/float64(t1.Sub(t0)) }
	y := func(v int64) float64 { return H - B - (H-B-T)*float64(v)/float64(top) }
	var path strings.Builder
	for i, p := range hist {
		if i == 0 {
			fmt.Fprintf(&path, "M%.1f,%.1f", x(p.At), y(p.Stored))
			continue
		}
		fmt.Fprintf(&path, " H%.1f V%.1f", x(p.At), y(p.Stored))
	}
	fmt.Fprintf(&path, " H%.1f", W-R)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`, W, H, W, H)
	fmt.Fprintf(&b, `<title>Stored size over time</title>`)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, L, H-B, W-R, H-B)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, L, T, L, H-B)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end" font-size="11">%s</text>`, L-4, T+10, template.HTMLEscapeString(iec(top)))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end" font-size="11">0 B</text>`, L-4, H-B)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11">%s</text>`, L, H-8, t0.Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end" font-size="11">%s</text>`, W-R, H-8, t1.Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#2a6" stroke-width="2"/>`, path.String())
	for _, p := range hist {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#2a6"><title>%s: %s, %d snapshots</title></circle>`,
			x(p.At), y(p.Stored), p.At.Format("2006-01-02 15:04"), template.HTMLEscapeString(iec(p.Stored)), p.Snapshots)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every value in it is a number, a time or escaped
}

// iec renders bytes in IEC units.
func iec(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n), []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.2f %s", v, units[i])
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
