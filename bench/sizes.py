#!/usr/bin/env python3
"""Break a repository's bytes down by kind (bench/sizes.sh).

usage: sizes.py cairn|restic REPO BINARY PASSWORD

cairn: reads the index with `cairn cat index` (owner key). Tree blobs are
stored as content (docs/format.md §8), so a pack counts as a tree pack when
it holds more than one blob, all content, in ID order (a session writes its
trees that way, §10; a data pack follows the walk). Sealed header bytes come
from each pack's trailer. restic: `restic cat index` per index file; the
pack header is what follows the last blob.
"""
import json, os, struct, subprocess, sys

kind, repo, binary, password = sys.argv[1:5]


def files(d):
    for root, _, names in os.walk(d):
        for n in names:
            yield os.path.join(root, n)


bydir, packfile = {}, {}
for p in files(repo):
    top = os.path.relpath(p, repo).split(os.sep)[0]
    bydir[top] = bydir.get(top, 0) + os.path.getsize(p)
    if top == "data":
        packfile[os.path.basename(p)] = p

acc = {k: 0 for k in ("data", "n_data", "tree", "n_tree", "page", "n_page", "header", "entries", "padding", "packs")}


def add(typ, length):
    acc[typ] += length
    acc["n_" + typ] += 1


if kind == "cairn":
    env = dict(os.environ, CAIRN_REPOSITORY=repo, CAIRN_PASSWORD=password)
    idx = json.loads(subprocess.run([binary, "cat", "index"], env=env, capture_output=True, check=True).stdout)
    for fr in idx["fragments"]:
        for pk in fr["packs"]:
            es = pk["entries"]
            ids = [e["id"] for e in es]
            trees = len(es) > 1 and ids == sorted(ids) and all(e["type"] == "data" for e in es)
            end = 0
            for e in es:
                end = max(end, e["offset"] + e["length"])
                add("page" if e["type"] != "data" else "tree" if trees else "data", e["length"])
            size = os.path.getsize(packfile[pk["id"]])
            with open(packfile[pk["id"]], "rb") as f:
                f.seek(size - 8)
                hl = struct.unpack("<I", f.read(4))[0]
            acc["header"] += hl + 8
            acc["padding"] += size - 8 - hl - end
            acc["entries"] += len(es)
            acc["packs"] += 1
elif kind == "restic":
    env = dict(os.environ, RESTIC_PASSWORD=password)

    def restic(*a):
        return subprocess.run([binary, "-r", repo, "--no-cache", *a], env=env, capture_output=True, check=True).stdout

    for iid in restic("list", "index").decode().split():
        for pk in json.loads(restic("cat", "index", iid))["packs"]:
            end = 0
            for b in pk["blobs"]:
                end = max(end, b["offset"] + b["length"])
                add(b["type"], b["length"])
            acc["header"] += os.path.getsize(packfile[pk["id"]]) - end
            acc["entries"] += len(pk["blobs"])
            acc["packs"] += 1
else:
    sys.exit("kind must be cairn or restic")

n = max(acc["entries"], 1)
rows = [
    ("data blobs", acc["data"], acc["n_data"]),
    ("tree blobs", acc["tree"], acc["n_tree"]),
    ("manifest pages", acc["page"], acc["n_page"]),
    ("pack headers (sealed, + trailer)", acc["header"], acc["entries"]),
    ("pack padding", acc["padding"], acc["packs"]),
    ("index files", bydir.get("index", 0), acc["entries"]),
    ("snapshot files", bydir.get("snapshots", 0), 0),
    ("everything else", sum(bydir.values()) - sum(bydir.get(k, 0) for k in ("data", "index", "snapshots")), 0),
]
print(f"{'kind':34s} {'bytes':>12s} {'count':>8s} {'B each':>9s}")
for name, b, c in rows:
    print(f"{name:34s} {b:12d} {c:8d} {b / c if c else 0:9.1f}")
print(f"{'total (files)':34s} {sum(bydir.values()):12d}")
