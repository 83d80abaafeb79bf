// Package restorer reads snapshots back: walking their trees with
// internal/walker, it restores files, directories, links and special
// files below a target through fsmeta.Restorer (which never follows a
// symlink), and dumps single files.
//
// Restore order: directories are created as needed; file contents are
// written by parallel workers from pack reads: the blobs a batch of files
// needs are grouped by pack, each pack's stretches are read once and every
// blob goes to every file that needs it (assemble.go); hard links are made
// after every file exists; metadata is set after each object's content,
// and on directories last, deepest first, so restoring a child never
// disturbs a parent's times or modes.
//
// Each file is written under a temporary name in its directory and renamed
// into place when its content, verification and metadata are done, so an
// interrupted restore leaves nothing partial under a real name; the
// temporary files of a killed run are removed by the next one, directory by
// directory. Before a file is written, what is already at its path is
// weighed by the Overwrite policy (overwrite.go): with the default,
// if-changed, an identical file is kept and a rerun resumes where an
// interrupted run stopped. A blob that cannot be read costs only its part
// of its file (content.go).
package restorer
