package agentreport

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
)

// RunNows reads run-now requests (state.State).
type RunNows interface {
	RunNow(ctx context.Context, client string) (time.Time, error)
}

// ServePoll answers GET /{client}/?agent-poll from the authenticated
// client's daemon agent: whether an operator asked for a run now (`cairn
// server client run-now`). Nothing else is ever sent: the agent runs the
// job its own configuration names. The request stays pending until the
// agent's next run report (Serve clears it).
func ServePoll(q *repohttp.Request, st RunNows, client string) {
	if len(q.Path.Repo) != 1 || q.Path.Repo[0] != client {
		q.Refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s polls /%s/?%s only", client, client, restapi.AgentPollQuery)
		return
	}
	at, err := st.RunNow(q.R.Context(), client)
	if err != nil {
		q.Fail("agent poll", err)
		return
	}
	body, _ := json.Marshal(restapi.AgentPoll{RunNow: !at.IsZero(), RequestedAt: at.UTC()})
	q.W.Header().Set("Content-Type", "application/json")
	q.W.Header().Set("Cache-Control", "no-store")
	q.W.WriteHeader(http.StatusOK)
	q.W.Write(body)
}
