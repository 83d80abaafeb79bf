package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// SendReport POSTs rep to the server of repo, a rest:URL/CLIENT/REPOSITORY
// location with the client's credentials (Config.RepositoryURL), at
// /CLIENT/?agent-report (docs/agent.md). Plain http:// is refused unless
// insecure or the host is a loopback address: the credentials would cross
// the network unencrypted.
func SendReport(ctx context.Context, hc *http.Client, repo string, insecure bool, rep restapi.AgentReport) error {
	target, name, pw, err := clientEndpoint(repo, insecure, restapi.AgentReportQuery)
	if err != nil {
		return err
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(name, pw)
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", target.Host, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
