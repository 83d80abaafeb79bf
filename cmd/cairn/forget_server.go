package main

// forget and prune on a repository of a cairn server: its tombstones,
// plans and deletions are the server's to write, so the owner signs a
// request (trust.OwnerRequest) and the server carries it out as its own
// maintenance does (docs/retention.md, "On a cairn server").

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/trust"
)

// ownerRequester is storage that carries owner requests to a cairn server
// (rest.(*Backend).OwnerRequest).
type ownerRequester interface {
	OwnerRequest(ctx context.Context, sealed []byte) (*restapi.OwnerAnswer, error)
}

// serverDeletes returns how to reach the server that makes repo's
// deletions, nil unless repo is a server-mode repository on a cairn
// server.
func serverDeletes(repo *repository.Repository) ownerRequester {
	if len(repo.Config().MetaRecipientsExtra) == 0 {
		return nil
	}
	for be := repo.Backend(); be != nil; {
		if or, ok := be.(ownerRequester); ok {
			return or
		}
		u, ok := be.(interface{ Unwrap() backend.Backend })
		if !ok {
			return nil
		}
		be = u.Unwrap()
	}
	return nil
}

// ownerRequestAttempts: a backup that lands between signing and the
// server's check makes the request stale; it is signed again this often.
const ownerRequestAttempts = 3

// askServer signs req with the owner key, for the snapshots stored now,
// and sends it; verb names the work in errors ("forgetting snapshots").
func askServer(ctx context.Context, repo *repository.Repository, or ownerRequester, req trust.OwnerRequest, verb string) (*restapi.OwnerAnswer, error) {
	k := repo.Keys()
	if k.OwnerSign == nil {
		return nil, roleError{Verb: verb + " on a cairn server", Need: "the owner key", Have: k.Role, Base: crypto.ErrNeedsOwner}
	}
	req.RepoID = hex.EncodeToString(k.RepoID[:])
	for attempt := 1; ; attempt++ {
		var names []string
		if err := repo.Backend().List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
			names = append(names, fi.Name)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		nonce := make([]byte, 16)
		rand.Read(nonce)
		req.Head, req.Nonce, req.Time = trust.SnapshotHead(names), hex.EncodeToString(nonce), time.Now().UTC()
		sealed, err := trust.SealOwnerRequest(&req, k.OwnerSign)
		if err != nil {
			return nil, err
		}
		ans, err := or.OwnerRequest(ctx, sealed)
		var se *restapi.StatusError
		if errors.As(err, &se) && se.Code == restapi.CodeStale && attempt < ownerRequestAttempts {
			continue // a backup arrived meanwhile
		}
		if errors.As(err, &se) && se.Status == http.StatusBadRequest && strings.Contains(se.Msg, "create=true") {
			// A cairn server from before owner requests.
			return nil, withHint(fmt.Errorf("%s on the server: it does not take owner requests: %w", verb, err),
				"upgrade the server, or ask its operator (`cairn server client policy`)")
		}
		if err != nil {
			return nil, fmt.Errorf("%s on the server: %w", verb, err)
		}
		return ans, nil
	}
}

// printServerForget prints the server's answer as a local forget's.
func printServerForget(g *GlobalOptions, ans *restapi.OwnerAnswer, dryRun bool) error {
	items := make([]forgetItem, 0, len(ans.Snapshots))
	for _, s := range ans.Snapshots {
		items = append(items, forgetItem{ID: s.ID, ShortID: s.ID[:min(8, len(s.ID))], Time: s.Time.Format(time.RFC3339),
			Host: s.Host, Tags: s.Tags, Group: s.Group, Action: s.Action, Reasons: s.Reasons})
	}
	removed := 0
	for _, it := range items {
		if it.Action == "remove" {
			removed++
		}
	}
	if err := printForget(g, items, removed, dryRun); err != nil {
		return err
	}
	if len(ans.Prune) == 0 {
		return nil
	}
	var rep prune.Report
	if err := json.Unmarshal(ans.Prune, &rep); err != nil {
		return fmt.Errorf("the server's prune report: %w", err)
	}
	return printPrune(g, &rep, dryRun)
}

// forgetPolicyOnServer asks the server to apply a policy; the filter
// flags become the snapshots it sees, chosen here (the owner reads what
// the server cannot, such as paths).
func forgetPolicyOnServer(ctx context.Context, g *GlobalOptions, repo *repository.Repository, or ownerRequester, opts ForgetOptions, pol trust.RequestPolicy, minFree uint64) error {
	if minFree > 0 {
		return usageError{errors.New("--min-free is about the disk the repository is on: a server repository is kept within a size with --max-size (or the operator's `cairn server client policy`)")}
	}
	keep := pol.Keep
	pol.Within, pol.Keep.Within = keep.Within, 0
	req := trust.OwnerRequest{Action: trust.ActionForget, Policy: &pol, DryRun: opts.DryRun}
	if !opts.Filter.Empty() {
		snaps, err := loadSnapshots(ctx, g, repo)
		if err != nil {
			return err
		}
		for _, s := range snaps {
			if opts.Filter.Match(s) {
				req.Snapshots = append(req.Snapshots, s.ID.String())
			}
		}
		if len(req.Snapshots) == 0 {
			return printForget(g, nil, 0, opts.DryRun) // the policy sees nothing
		}
	}
	setServerPrune(&req, opts)
	ans, err := askServer(ctx, repo, or, req, "forgetting snapshots")
	if err != nil {
		return overBudgetHint(err)
	}
	return printServerForget(g, ans, opts.DryRun)
}

// forgetIDsOnServer asks the server to forget exactly the snapshots
// picked.
func forgetIDsOnServer(ctx context.Context, g *GlobalOptions, repo *repository.Repository, or ownerRequester, opts ForgetOptions, picked []*repository.Snapshot) error {
	req := trust.OwnerRequest{Action: trust.ActionForget, DryRun: opts.DryRun}
	for _, s := range picked {
		req.Snapshots = append(req.Snapshots, s.ID.String())
	}
	setServerPrune(&req, opts)
	ans, err := askServer(ctx, repo, or, req, "forgetting snapshots")
	if err != nil {
		return err
	}
	return printServerForget(g, ans, opts.DryRun)
}

// setServerPrune adds forget's --prune to a request: the server prunes
// in the same run, as `cairn forget --prune` does (never on a dry run).
func setServerPrune(req *trust.OwnerRequest, opts ForgetOptions) {
	if opts.Prune && !opts.DryRun {
		req.Prune, req.Grace, req.RepackThreshold = true, opts.PruneOpts.Grace, opts.PruneOpts.RepackThreshold/100
	}
}

func overBudgetHint(err error) error {
	var se *restapi.StatusError
	if errors.As(err, &se) && se.Code == restapi.CodeOverBudget {
		return withHint(err, "raise --max-size; no snapshot was removed")
	}
	return err
}

// pruneOnServer asks the server to prune now.
func pruneOnServer(ctx context.Context, g *GlobalOptions, repo *repository.Repository, or ownerRequester, opts PruneOptions) error {
	req := trust.OwnerRequest{Action: trust.ActionPrune, DryRun: opts.DryRun, Prune: true, Grace: opts.Grace, RepackThreshold: opts.RepackThreshold / 100}
	ans, err := askServer(ctx, repo, or, req, "pruning")
	if err != nil {
		return err
	}
	var rep prune.Report
	if err := json.Unmarshal(ans.Prune, &rep); err != nil {
		return fmt.Errorf("the server's prune report: %w", err)
	}
	return printPrune(g, &rep, opts.DryRun)
}
