package repository

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/chunker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/trust"
)

// Errors callers map to exit codes.
var (
	ErrNoRepository = errors.New("no repository")
	ErrNoKey        = errors.New("no key matched the password")
)

// DefaultPackSize is the target size of a pack.
const DefaultPackSize = 16 << 20

// Repository is an unlocked repository.
type Repository struct {
	be     backend.Backend
	keys   *crypto.Keys
	cfg    *trust.Config
	roster *trust.Roster
	keyID  string // name of the key file that unlocked it, if any
	cache  *Cache
	now    func() time.Time
	log    *slog.Logger
	// fragmentBytes bounds each index fragment's headers: maxFragmentBytes
	// unless a test lowers it.
	fragmentBytes int

	mu       sync.Mutex
	idx      *index.Concurrent
	slots    []pack.Slot         // slot table: index.Entry.Slot indexes it
	slotNum  map[[32]byte]uint32 // slot ID → number
	sealers  map[uint32]*crypto.Sealer
	loaded   bool
	packSize int
	// frags: the index fragments LoadIndex loaded and this Repository
	// wrote since, less those it removed, each with the packs it lists
	// (32 bytes a pack, some 0.1 byte a blob); badFrags: the fragments
	// LoadIndex skipped as invalid. See IndexFragments.
	frags    map[string][]blob.ID
	badFrags map[string]error
}

// Options configure Open and Init.
type Options struct {
	// CacheDir is where the local cache lives; empty disables it.
	CacheDir string
	// KDF overrides the argon2id parameters of new key files (tests).
	KDF *crypto.KDFParams
	// Now overrides the clock.
	Now func() time.Time
	// Logger receives warnings that do not fail an operation (a backup
	// session's lease, lease.go); default discards.
	Logger *slog.Logger
	// KeyLabel describes the key file's creator (host, user).
	KeyLabel string
}

func (o *Options) kdf() crypto.KDFParams {
	if o.KDF != nil {
		return *o.KDF
	}
	return crypto.DefaultKDF
}

func (o *Options) now() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// Backend returns the storage backend.
func (r *Repository) Backend() backend.Backend { return r.be }

// Keys returns the unlocked keys.
func (r *Repository) Keys() *crypto.Keys { return r.keys }

// Config returns the verified config.
func (r *Repository) Config() *trust.Config { return r.cfg }

// Roster returns the newest verified roster.
func (r *Repository) Roster() *trust.Roster { return r.roster }

// Cache returns the local cache (may be nil).
func (r *Repository) Cache() *Cache { return r.cache }

// KeyID is the name of the key file that unlocked the repository.
func (r *Repository) KeyID() string { return r.keyID }

// Now is the repository's clock.
func (r *Repository) Now() time.Time { return r.now() }

// ChunkerParams returns the configured chunker parameters.
func (r *Repository) ChunkerParams() chunker.Params {
	return chunker.Params{Min: r.cfg.ChunkMin, Avg: r.cfg.ChunkAvg, Max: r.cfg.ChunkMax}
}

// DedupKeys returns the current dedup generation's keys.
func (r *Repository) DedupKeys() crypto.DedupKeys { return r.keys.Dedup[r.keys.CurrentDedup] }

// CanReadMetadata reports whether the key opens metadata (owner with the
// metadata identity, or server).
func (r *Repository) CanReadMetadata() bool { return r.keys.MetaIdentity != nil }

// CanReadContent reports whether the key opens content (owner).
func (r *Repository) CanReadContent() bool { return r.keys.OwnerIdentity != nil }

// Init creates a repository in be, which must be empty, with an owner key
// protected by password, and returns it unlocked.
func Init(ctx context.Context, be backend.Backend, password []byte, opts Options) (*Repository, error) {
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"}); err == nil {
		return nil, fmt.Errorf("a repository already exists at %s", be.Properties().Location)
	}
	m, err := crypto.NewOwner("")
	if err != nil {
		return nil, err
	}
	keys, err := m.Parse()
	if err != nil {
		return nil, err
	}
	now := opts.now()()
	cp := chunker.DefaultParams
	cfg := &trust.Config{
		Format: trust.FormatVersion, Seq: 1, RepoID: m.RepoID, Created: now.UTC(),
		Chunker: chunker.ID, ChunkMin: cp.Min, ChunkAvg: cp.Avg, ChunkMax: cp.Max,
		Compression: "zstd", PackSize: DefaultPackSize, Wrap: trust.WrapHybrid,
		OwnerRecipient: m.OwnerRecipient, OwnerSignPub: m.OwnerSignPub, MetaRecipient: m.MetaRecipient,
		DedupGen: 1,
	}
	cfgBytes, err := trust.MarshalConfig(cfg, keys.OwnerSign)
	if err != nil {
		return nil, err
	}
	roster := &trust.Roster{RepoID: m.RepoID, Seq: 1, Created: now.UTC()}
	rosterBytes, err := trust.MarshalRoster(roster, keys.OwnerSign)
	if err != nil {
		return nil, err
	}
	keyID, err := saveKeyFile(ctx, be, m, password, opts.kdf(), now, opts.KeyLabel)
	if err != nil {
		return nil, err
	}
	if err := saveNamed(ctx, be, backend.Rosters, rosterBytes); err != nil {
		return nil, err
	}
	if err := saveNamed(ctx, be, backend.Configs, cfgBytes); err != nil {
		return nil, err
	}
	// The fixed-name config last: its presence is what makes a repository.
	if err := be.Save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, backend.NewByteReader(cfgBytes)); err != nil {
		return nil, fmt.Errorf("save config: %w", err)
	}
	r := newRepo(be, keys, cfg, roster, keyID, opts)
	if err := r.openCache(); err != nil {
		return nil, err
	}
	return r, nil
}

func newRepo(be backend.Backend, keys *crypto.Keys, cfg *trust.Config, roster *trust.Roster, keyID string, opts Options) *Repository {
	ps := cfg.PackSize
	if ps <= 0 || ps > 128<<20 {
		ps = DefaultPackSize
	}
	return &Repository{
		be: be, keys: keys, cfg: cfg, roster: roster, keyID: keyID, now: opts.now(),
		idx: index.NewConcurrent(), slotNum: map[[32]byte]uint32{}, sealers: map[uint32]*crypto.Sealer{},
		frags: map[string][]blob.ID{}, badFrags: map[string]error{},
		packSize: ps, cache: &Cache{dir: opts.CacheDir}, log: opts.logger(),
	}
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func saveNamed(ctx context.Context, be backend.Backend, t backend.FileType, buf []byte) error {
	h := backend.Handle{Type: t, Name: backend.NameOf(buf)}
	err := be.Save(ctx, h, backend.NewByteReader(buf))
	if errors.Is(err, backend.ErrExists) {
		return nil // content-named: the same bytes are already there
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	return nil
}

// Open unlocks the repository in be with password, trying the key files
// in keys/ (storedKeys says which: a planted file is skipped, not tried).
// Callers that keep a key file outside the repository try it first
// (OpenKeyFile): it costs one unlock, a scan up to MaxStoredKeyTries.
func Open(ctx context.Context, be backend.Backend, password []byte, opts Options) (*Repository, error) {
	cfgRaw, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("%w at %s", ErrNoRepository, be.Properties().Location)
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	log := opts.logger()
	keys, err := storedKeys(ctx, be, log)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		log.Debug("trying key file", "file", "keys/"+k.name)
		_, payload, err := crypto.OpenKeyFile(k.buf, password)
		if err != nil {
			continue
		}
		parsed, err := parseKeyPayload(payload)
		if err != nil {
			log.Warn("skipping a key file that opens but holds no valid key", "file", "keys/"+k.name, "err", err)
			continue
		}
		return OpenWithKeys(ctx, be, parsed, k.name, cfgRaw, opts)
	}
	return nil, fmt.Errorf("%w (%d key files tried)", ErrNoKey, len(keys))
}

// OpenKeyFile unlocks the repository with a key file kept outside it.
func OpenKeyFile(ctx context.Context, be backend.Backend, path string, password []byte, opts Options) (*Repository, error) {
	buf, err := crypto.ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	_, payload, err := crypto.OpenKeyFile(buf, password)
	if err != nil {
		if errors.Is(err, crypto.ErrWrongPassword) {
			return nil, fmt.Errorf("%w: key file %s", ErrNoKey, path)
		}
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	defer clear(payload)
	return openPayload(ctx, be, path, payload, "", opts)
}

// OpenHanded unlocks the repository with the key file buf (name for
// messages; keyID its name in keys/, "" for one kept outside) and k, the
// key that opens it, derived earlier by the process that handed it over
// (backup --key-fd, docs/threat-model.md "R19 and the agent"): no
// argon2id. A key that does not open buf is crypto.ErrWrongFileKey.
func OpenHanded(ctx context.Context, be backend.Backend, name string, buf []byte, keyID string, k crypto.FileKey, opts Options) (*Repository, error) {
	_, payload, err := crypto.OpenKeyFileWith(buf, k)
	if errors.Is(err, crypto.ErrWrongFileKey) {
		return nil, fmt.Errorf("%w %s", err, name)
	}
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	defer clear(payload)
	return openPayload(ctx, be, name, payload, keyID, opts)
}

// openPayload opens the repository with the decrypted payload of the key
// file name: its keys, then the config verified against them.
func openPayload(ctx context.Context, be backend.Backend, name string, payload []byte, keyID string, opts Options) (*Repository, error) {
	keys, err := parseKeyPayload(payload)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	cfgRaw, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("%w at %s", ErrNoRepository, be.Properties().Location)
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return OpenWithKeys(ctx, be, keys, keyID, cfgRaw, opts)
}

func parseKeyPayload(payload []byte) (*crypto.Keys, error) {
	m, err := crypto.UnmarshalKeyMaterial(payload)
	if err != nil {
		return nil, err
	}
	return m.Parse()
}

// OpenWithKeys opens the repository with already unlocked keys, verifying
// the config and roster against the key's pinned owner key (R2, R3).
func OpenWithKeys(ctx context.Context, be backend.Backend, keys *crypto.Keys, keyID string, cfgRaw []byte, opts Options) (*Repository, error) {
	cfg, err := loadConfig(ctx, be, keys, cfgRaw, opts.logger())
	if err != nil {
		return nil, err
	}
	r := newRepo(be, keys, cfg, nil, keyID, opts)
	if err := r.openCache(); err != nil {
		return nil, err
	}
	if err := r.cache.checkVersion("config", cfg.Seq); err != nil {
		return nil, err
	}
	if r.roster, err = r.loadRoster(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// MayCommit reports whether pub may sign snapshot seq: the owner, or a
// writer in the roster (R1).
func (r *Repository) MayCommit(pub ed25519.PublicKey, seq uint64) bool {
	if pub.Equal(r.keys.OwnerSignPub) {
		return true
	}
	return r.roster.Has(pub, seq)
}

// IndexEntry is one blob's location as the repository's index holds it
// (Index().Each hands them out), named here so that callers outside
// the format packages need not import internal/index.
type IndexEntry = index.Entry
