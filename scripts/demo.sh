#!/usr/bin/env bash
# The quickstart: back up a sample directory into a new local repository,
# restore it with verification, and compare. Everything lives in a temp dir.
set -euo pipefail
cairn=$(realpath "${1:-bin/cairn}")
work=$(mktemp -d -t cairn-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
export CAIRN_REPOSITORY="$work/repo" CAIRN_PASSWORD="demo password" XDG_CACHE_HOME="$work/cache"

# A sample tree: this project's own sources, a symlink, an empty directory.
mkdir -p "$work/sample"
git ls-files -z | head -z -n 200 | xargs -0 cp --parents -t "$work/sample" 2>/dev/null || cp -r internal "$work/sample/"
ln -s README.md "$work/sample/readme-link"
mkdir "$work/sample/empty-dir"

echo "== cairn init";     "$cairn" init
echo "== cairn backup";   "$cairn" backup "$work/sample"
echo "== cairn backup (no changes)"; "$cairn" backup "$work/sample"
echo "== cairn snapshots"; "$cairn" snapshots
echo "== cairn restore --verify"; "$cairn" restore latest --target "$work/restore" --verify
diff -r --no-dereference "$work/sample" "$work/restore$work/sample"
echo "== cairn check --read-data"; "$cairn" check --read-data
echo
echo "demo ok: restored tree is identical to the original"
