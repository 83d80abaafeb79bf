package agent

// Run now (docs/agent.md "Run now"): the daemon asks its server, every
// PollEvery on the machine's clock, whether an operator wants a run now
// (`cairn server client run-now`), and if so runs its configured job
// outside the schedule. The server can only ask for that run: the answer
// carries no command, path or option.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// DefaultPollEvery is how often a daemon agent asks for a run-now request.
const DefaultPollEvery = time.Minute

// clientEndpoint is the URL of repo's client directory (rest:URL/CLIENT/
// REPOSITORY → URL/CLIENT/) with query, and the credentials. Plain
// http:// is refused unless insecure or the host is a loopback address.
func clientEndpoint(repo string, insecure bool, query string) (target *url.URL, user, pw string, err error) {
	u, err := url.Parse(strings.TrimPrefix(repo, "rest:"))
	if err != nil {
		return nil, "", "", fmt.Errorf("repository: %w", err)
	}
	if u.Scheme != "https" && !insecure && !client.IsLoopbackHost(u.Hostname()) {
		return nil, "", "", fmt.Errorf("not sent over plain http:// to %s (pass --insecure if the network is trusted)", u.Host)
	}
	tenant, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	pw, _ = u.User.Password()
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/" + tenant + "/", RawQuery: query}, u.User.Username(), pw, nil
}

// Poll asks the server of repo (as SendReport) whether a run is asked of
// this client's agent: GET /CLIENT/?agent-poll.
func Poll(ctx context.Context, hc *http.Client, repo string, insecure bool) (restapi.AgentPoll, error) {
	var a restapi.AgentPoll
	target, user, pw, err := clientEndpoint(repo, insecure, restapi.AgentPollQuery)
	if err != nil {
		return a, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return a, err
	}
	req.SetBasicAuth(user, pw)
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("%s answered %s: %s", target.Host, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("%s's poll answer: %w", target.Host, err)
	}
	return a, nil
}

// poller asks Runner.Poll every PollEvery and hands a "yes" to the
// daemon's wait; not while a run is in progress (that run answers it).
type poller struct {
	r       *Runner
	asked   chan struct{} // holds one pending "run now"
	running atomic.Bool
	failing bool // the last poll failed (log only the first of a streak)
}

func (r *Runner) startPoller(ctx context.Context) (*poller, func()) {
	if r.Poll == nil || r.PollEvery <= 0 {
		return nil, func() {}
	}
	p := &poller{r: r, asked: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.PollEvery)
		defer t.Stop()
		for {
			p.poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p, func() { cancel(); wg.Wait() }
}

func (p *poller) poll(ctx context.Context) {
	if p.running.Load() {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, ReportTimeout)
	defer cancel()
	yes, err := p.r.Poll(pctx)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		if !p.failing {
			p.r.logf("warning: could not ask the server whether to run now: %v", err)
		}
		p.failing = true
	default:
		p.failing = false
		if yes && !p.running.Load() {
			select {
			case p.asked <- struct{}{}:
			default:
			}
		}
	}
}

// sleep waits d on r's clock, or until p hears that the server asks for
// a run now (asked). Without a poller it only sleeps.
func (r *Runner) sleep(ctx context.Context, p *poller, d time.Duration) (asked bool, err error) {
	if p == nil {
		return false, r.Clock.Sleep(ctx, d)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-p.asked:
			got.Store(true)
			cancel()
		case <-done:
		}
	}()
	err = r.Clock.Sleep(sctx, d)
	close(done)
	wg.Wait()
	if got.Load() && ctx.Err() == nil {
		return true, nil
	}
	return false, err
}

// run runs one slot with polling paused, then forgets a "yes" that came
// meanwhile: the run that just ended answered it.
func (p *poller) run(ctx context.Context, f func(context.Context) error) error {
	if p == nil {
		return f(ctx)
	}
	p.running.Store(true)
	defer func() {
		select {
		case <-p.asked:
		default:
		}
		p.running.Store(false)
	}()
	return f(ctx)
}
