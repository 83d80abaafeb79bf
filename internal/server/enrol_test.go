package server

import (
	"context"
	"net/url"

	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/repository"
)

// fetchPublic enrols the server behind u as cairn init does: its identity
// over ?identity, checked.
func fetchPublic(ctx context.Context, u *url.URL) (repository.ServerPublic, error) {
	id, err := rest.FetchIdentity(ctx, nil, u)
	if err != nil {
		return repository.ServerPublic{}, err
	}
	pub := repository.ServerPublic(id)
	return pub, pub.Validate()
}
