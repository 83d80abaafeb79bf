package server

// The state database is package state; these names keep the server's API
// (cmd/cairn, tests) what it was when the database lived here.

import "github.com/cairnbackup/cairn/internal/server/state"

// Records of the state database.
type (
	State         = state.State
	Client        = state.Client
	Policy        = state.Policy
	Budget        = state.Budget
	Job           = state.Job
	BackupSession = state.BackupSession
	ChainLink     = state.ChainLink
)

// Errors of the state database.
var (
	ErrNoClient        = state.ErrNoClient
	ErrClientExists    = state.ErrClientExists
	ErrNoSession       = state.ErrNoSession
	ErrSessionEnded    = state.ErrSessionEnded
	ErrSessionExpired  = state.ErrSessionExpired
	ErrTooManySessions = state.ErrTooManySessions
)

// Policy defaults.
const (
	DefaultEvery   = state.DefaultEvery
	DefaultGroupBy = state.DefaultGroupBy
)

// DefaultPolicy is a policy with no rules and the default schedule.
func DefaultPolicy() Policy { return state.DefaultPolicy() }
