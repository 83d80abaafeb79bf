package checker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// The R17 detections need only public keys and plaintext statements, so
// they run with the owner key and the server key alike:
//
//   - forged: a snapshot whose signature does not verify, or whose signer
//     is neither the owner nor a roster writer allowed that seq;
//   - rollback: a writer's statements do not form one chain (each Prev the
//     hash of seq−1, seq 1 with a zero Prev, one statement per seq), or the
//     newest statement of a writer is older than one this machine committed
//     or a previous check saw;
//   - replayed deleted snapshot: a snapshot whose statement hash a valid
//     tombstone names;
//   - seq gap: a seq below a writer's newest that neither a snapshot nor a
//     tombstone accounts for.
//
// Tombstones count only when signed by the owner or a roster coordinator;
// others are reported.

// forgery classifies why a snapshot file failed to load, when the reason
// is its signature or signer; "" otherwise.
func (c *checker) forgery(ctx context.Context, fi backend.FileInfo) string {
	buf, err := backend.LoadAll(ctx, c.be, fi.Handle)
	if err != nil || backend.NameOf(buf) != fi.Name {
		return ""
	}
	f, err := snapshot.ParseFile(buf)
	if err != nil || f.Statement.RepoID != c.repo.Keys().RepoID {
		return ""
	}
	st := f.Statement
	if err := f.Verify(); err != nil {
		return fmt.Sprintf("forged snapshot: the signature of writer %s (seq %d) does not verify", writerName(c.repo, st.Writer[:]), st.Seq)
	}
	if !c.repo.MayCommit(ed25519.PublicKey(st.Writer[:]), st.Seq) {
		return fmt.Sprintf("forged snapshot: signed by %s, which is neither the owner nor a roster writer allowed seq %d", writerName(c.repo, st.Writer[:]), st.Seq)
	}
	return ""
}

func writerName(repo *repository.Repository, pub []byte) string {
	if bytes.Equal(pub, repo.Keys().OwnerSignPub) {
		return "owner " + hex.EncodeToString(pub[:4])
	}
	return "key " + hex.EncodeToString(pub[:4])
}

// known is one statement of a writer's chain: from a snapshot file or,
// for a deleted snapshot, from its tombstone.
type known struct {
	hash      [32]byte
	prev      [32]byte
	hasPrev   bool   // prev is known (snapshot, not tombstone)
	snap      string // short snapshot ID, "" for a tombstone
	tombstone string
}

func (c *checker) checkChains(ctx context.Context) error {
	ts, bad, err := c.repo.Tombstones(ctx)
	if err != nil {
		return fmt.Errorf("list tombstones: %w", err)
	}
	for _, e := range bad {
		c.problem(Problem{Message: fmt.Sprintf("bad tombstone (not counted): %v", e)})
	}
	byHash := map[[32]byte]repository.LoadedTombstone{}
	chains := map[string]map[uint64][]known{} // writer hex → seq → statements
	add := func(w []byte, seq uint64, k known) {
		key := hex.EncodeToString(w)
		if chains[key] == nil {
			chains[key] = map[uint64][]known{}
		}
		for i := range chains[key][seq] {
			o := &chains[key][seq][i]
			if o.hash == k.hash {
				if k.snap != "" && o.snap == "" {
					// The snapshot itself supersedes its tombstone's record.
					o.snap, o.prev, o.hasPrev = k.snap, k.prev, k.hasPrev
				}
				return
			}
		}
		chains[key][seq] = append(chains[key][seq], k)
	}
	for _, t := range ts {
		var h [32]byte
		if len(t.StatementHash) != 32 || len(t.Writer) != 32 || t.Seq == 0 {
			c.problem(Problem{File: "tombstones/" + t.Name, Message: "tombstone names no valid statement"})
			continue
		}
		copy(h[:], t.StatementHash)
		byHash[h] = t
		add(t.Writer, t.Seq, known{hash: h, tombstone: t.Name})
	}
	for _, s := range c.snaps {
		st := s.File.Statement
		h := st.Hash()
		if t, ok := byHash[h]; ok {
			c.problem(Problem{File: "snapshots/" + s.ID.String(), Snapshots: []string{s.ID.Short()},
				Message: fmt.Sprintf("replayed deleted snapshot: tombstone %s records its deletion at %s (rule %q)", t.Name[:12], t.Time.Format("2006-01-02 15:04:05Z07:00"), t.Rule)})
		}
		add(st.Writer[:], st.Seq, known{hash: h, prev: st.Prev, hasPrev: true, snap: s.ID.Short()})
	}
	c.chainFacts = map[string]repository.Committed{}
	writers := make([]string, 0, len(chains))
	for w := range chains {
		writers = append(writers, w)
	}
	sort.Strings(writers)
	for _, w := range writers {
		c.checkChain(w, chains[w])
	}
	c.checkBehind(chains)
	return nil
}

func (c *checker) checkChain(w string, chain map[uint64][]known) {
	pub, _ := hex.DecodeString(w)
	name := writerName(c.repo, pub)
	var top uint64
	for seq := range chain {
		top = max(top, seq)
	}
	var gaps []uint64
	for seq := uint64(1); seq <= top; seq++ {
		ks := chain[seq]
		if len(ks) == 0 {
			gaps = append(gaps, seq)
			continue
		}
		if len(ks) > 1 {
			var who []string
			for _, k := range ks {
				who = append(who, k.label())
			}
			c.problem(Problem{Snapshots: snapsOf(ks), Message: fmt.Sprintf("rollback or fork: %s has %d different statements with seq %d (%s)", name, len(ks), seq, strings.Join(who, ", "))})
		}
		for _, k := range ks {
			if !k.hasPrev {
				continue
			}
			switch {
			case seq == 1 && k.prev != [32]byte{}:
				c.problem(Problem{Snapshots: []string{k.snap}, Message: fmt.Sprintf("rollback: %s seq 1 names a previous statement", name)})
			case seq > 1 && len(chain[seq-1]) > 0 && !hasHash(chain[seq-1], k.prev):
				c.problem(Problem{Snapshots: []string{k.snap}, Message: fmt.Sprintf("rollback: %s seq %d does not chain to seq %d (its previous-statement hash %x matches none stored)", name, seq, seq-1, k.prev[:6])})
			}
		}
	}
	for _, r := range ranges(gaps) {
		c.problem(Problem{Message: fmt.Sprintf("sequence gap without a tombstone: %s seq %s missing (below seq %d); a snapshot was deleted without a record", name, r, top)})
	}
	if ks := chain[top]; len(ks) > 0 {
		c.chainFacts[w] = repository.Committed{Writer: w, Seq: top, Hash: hex.EncodeToString(ks[0].hash[:])}
	}
}

// checkBehind compares each writer's newest statement with what this
// machine committed and what earlier checks saw.
func (c *checker) checkBehind(chains map[string]map[uint64][]known) {
	committed, err := c.committed, c.committedErr
	if err != nil {
		c.rep.Notes = append(c.rep.Notes, fmt.Sprintf("this machine's last commits unreadable: %v", err))
	}
	for _, src := range []struct {
		what string
		m    map[string]repository.Committed
	}{{"this machine committed", committed}, {"an earlier check saw", c.state.Writers}} {
		for w, want := range src.m {
			pub, _ := hex.DecodeString(w)
			if len(pub) != 32 {
				continue
			}
			name := writerName(c.repo, pub)
			have := c.chainFacts[w]
			switch {
			case have.Seq < want.Seq:
				c.problem(Problem{Message: fmt.Sprintf("rollback: the newest statement of %s is seq %d, but %s seq %d", name, have.Seq, src.what, want.Seq)})
			default:
				h, _ := hex.DecodeString(want.Hash)
				if ks := chains[w][want.Seq]; len(ks) > 0 && len(h) == 32 && !hasHash(ks, [32]byte(h)) {
					c.problem(Problem{Snapshots: snapsOf(ks), Message: fmt.Sprintf("rollback or fork: %s seq %d is not the statement %s", name, want.Seq, src.what)})
				}
			}
		}
	}
}

func (k known) label() string {
	if k.snap != "" {
		return "snapshot " + k.snap
	}
	return "tombstone " + k.tombstone[:12]
}

func hasHash(ks []known, h [32]byte) bool {
	for _, k := range ks {
		if k.hash == h {
			return true
		}
	}
	return false
}

func snapsOf(ks []known) []string {
	var out []string
	for _, k := range ks {
		if k.snap != "" {
			out = append(out, k.snap)
		}
	}
	return out
}

// ranges renders sorted seqs as "3", "3–5, 9".
func ranges(seqs []uint64) []string {
	var out []string
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if i == j {
			out = append(out, fmt.Sprint(seqs[i]))
		} else {
			out = append(out, fmt.Sprintf("%d–%d", seqs[i], seqs[j]))
		}
		i = j + 1
	}
	return out
}
