package repository

import (
	"encoding/hex"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/pack"
)

// PackHeaderView is a pack header as `cairn cat pack` and `cat index`
// show it: what the metadata identity reads, with stored blob types
// (docs/format.md §10).
type PackHeaderView struct {
	ID      string          `json:"id"`
	Domain  string          `json:"domain"`
	Signer  string          `json:"signer"`
	Slots   []PackSlotView  `json:"slots"`
	Entries []PackEntryView `json:"entries"`
}

// PackSlotView is one key slot: its kind, wrap and wrapped length.
type PackSlotView struct {
	Kind   uint8 `json:"kind"`
	Wrap   uint8 `json:"wrap"`
	Length int   `json:"length"`
}

// PackEntryView is one blob entry.
type PackEntryView struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Offset uint32 `json:"offset"`
	Length uint32 `json:"length"`
	Slot   uint32 `json:"slot"`
}

// ViewPackHeader renders pack id's parsed header h.
func ViewPackHeader(id blob.ID, h *pack.Header) PackHeaderView {
	v := PackHeaderView{ID: id.String(), Domain: hex.EncodeToString(h.Domain[:]), Signer: hex.EncodeToString(h.Signer[:]),
		Slots: []PackSlotView{}, Entries: []PackEntryView{}}
	for _, s := range h.Slots {
		v.Slots = append(v.Slots, PackSlotView{Kind: s.Kind, Wrap: s.Wrap, Length: len(s.Data)})
	}
	for _, e := range h.Entries {
		v.Entries = append(v.Entries, PackEntryView{Type: e.Type.String(), ID: e.ID.String(), Offset: e.Offset, Length: e.Length, Slot: e.Slot})
	}
	return v
}
