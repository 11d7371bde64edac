#!/usr/bin/env python3
"""Crafts hostile backups for the tests: writes .meta blobs, trees and a
commit with stock git into a repository and points a slot at it.

Usage: craft-backup.py REPO MACHINE SLOT SPEC.json
SPEC is a folder: {"entries": [{"name": ..., "type": "file"|"dir"|"symlink",
"content": str, "target": str, "tree": SPEC (for a dir), "as_tree": SPEC
(a tree entry that contradicts the record)}]}; names are raw (escaping is
done here only for what git itself needs). A record list is written in
the given order, so a test can also break the sort order."""
import json, subprocess, sys

def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)

def field(b):
    return varint(len(b)) + b

def record(name, mode, size=0, link=b""):
    r = field(name) + varint(mode) + varint(0) + varint(0) + field(b"root") + field(b"root")
    r += varint(size) + varint(1) + varint(1) + varint(1) + varint(0)
    for _ in range(3):
        r += varint(2 * 1600000000) + varint(0)
    r += field(link) + varint(0) + varint(0)
    return varint(len(r)) + r

def git(repo, *args, data=None):
    return subprocess.run(["git", "--git-dir", repo] + list(args), input=data,
                          capture_output=True, check=True).stdout.strip()

def zstd(b):
    # From a file, so that the frame records the content size, as ours do.
    import tempfile
    with tempfile.NamedTemporaryFile() as f:
        f.write(b)
        f.flush()
        return subprocess.run(["zstd", "-q", "-c", "--check", f.name], capture_output=True, check=True).stdout

def blob(repo, b):
    return git(repo, "hash-object", "-w", "--stdin", data=b).decode()

def escape(name):
    n = name.encode() if isinstance(name, str) else name
    if n[:1] in (b".", b"%") or n[0] >= 0x80 or b"\\" in n or (n[:1] in (b"g", b"G") and b"~" in n):
        rest = n[1:].replace(b"%", b"%25").replace(b"\\", b"%5C")
        return b"%%%02X" % n[0] + rest
    return n

def folder(repo, spec):
    meta = b"BKM\x01" + record(b".", 0o40755)
    lines = []
    for e in spec["entries"]:
        name = e["name"].encode("utf-8", "surrogateescape")
        t = e["type"]
        if t == "file":
            c = e.get("content", "").encode()
            meta += record(name, 0o100644, len(c))
            lines.append(("100644 blob %s\t" % blob(repo, zstd(c)), escape(name)))
        elif t == "dir":
            meta += record(name, 0o40755)
            lines.append(("040000 tree %s\t" % folder(repo, e["tree"]), escape(name)))
        elif t == "symlink":
            meta += record(name, 0o120777, 0, e["target"].encode())
        if "as_tree" in e:
            lines.append(("040000 tree %s\t" % folder(repo, e["as_tree"]), escape(name)))
    lines.append(("100644 blob %s\t" % blob(repo, zstd(meta)), b".meta"))
    data = b"".join(l.encode() + n + b"\n" for l, n in lines)
    return git(repo, "mktree", "--missing", data=data).decode()

def main():
    repo, machine, slot, spec = sys.argv[1:5]
    root = folder(repo, json.load(open(spec)))
    top = git(repo, "mktree", data=("040000 tree %s\troot\n" % root).encode()).decode()
    msg = ("backup %s automatic\n\nbackup-format 1\nmachine %s\nkind automatic\nlabel -\n"
           "start 1700000000.000000000\nend 1700000001.000000000\n"
           "disk root 1073741824 ext4 /crafted\nplan 10737418240\n"
           "profile default root=sda sda=root\nfiles 1\nbytes 1\nfiles-read 1\nbytes-read 1\n"
           "bytes-stored 1\n") % (machine, machine)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    c = subprocess.run(["git", "--git-dir", repo, "commit-tree", top], input=msg.encode(),
                       capture_output=True, check=True, env=env).stdout.strip().decode()
    git(repo, "update-ref", "refs/backups/%s/%s" % (machine, slot), c)
    print(c)

main()
