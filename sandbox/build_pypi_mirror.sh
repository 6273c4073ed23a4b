#!/usr/bin/env bash
# Put wheels for the sandbox hosts' Pythons (Debian 12: CPython 3.11, Debian 13: 3.13;
# x86_64, glibc 2.36+) into MIRROR/pypi/: the packages of sandbox/pypi-requirements.txt and
# all they depend on, plus MIRROR/pypi/constraints.txt pinning every one of them (the
# versions resolved for 3.11; 3.13 gets the same versions, its own binary wheels). The hosts have no internet;
# `create-image --pip-find-links MIRROR_URL/pypi/ --python-constraints constraints.txt`
# installs from there (http.server's directory listing is the page pip reads links from).
# Usage: build_pypi_mirror.sh MIRROR_DIR [PYTHON]   (PYTHON: one with pip; default python3)
# Idempotent: nothing is downloaded when the folder was built from the same requirements.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MIRROR=$1; PY=${2:-python3}
REQS=$HERE/pypi-requirements.txt
OUT=$MIRROR/pypi
PYTHONS="3.11 3.13"
STAMP="$(sha256sum "$REQS" | cut -d' ' -f1) $PYTHONS"
if [ -f "$OUT/.requirements.sha256" ] && [ "$(cat "$OUT/.requirements.sha256")" = "$STAMP" ] \
   && [ -s "$OUT/constraints.txt" ]; then
  echo "mirror: $OUT already holds $(ls "$OUT"/*.whl | wc -l) wheels"; exit 0
fi
WORK=$(mktemp -d "${MIRROR%/}/pypi.build.XXXXXX"); trap 'rm -rf "$WORK"' EXIT
platforms=()
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_28_x86_64 \
         manylinux_2_31_x86_64 manylinux_2_34_x86_64 any; do platforms+=(--platform "$p"); done
pins() {  # name==version of every wheel (NAME-VERSION-...; NAME uses '_' for '-')
  for whl in "$WORK"/*.whl; do
    base=$(basename "$whl"); name=${base%%-*}; rest=${base#*-}; version=${rest%%-*}
    echo "${name//_/-}==$version"
  done | sort -f -u
}
"$PY" -m pip download --quiet --disable-pip-version-check --dest "$WORK" --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
  "${platforms[@]}" -r "$REQS"
pins > "$WORK/constraints.txt"
"$PY" -m pip download --quiet --disable-pip-version-check --dest "$WORK" --only-binary=:all: \
  --python-version 3.13 --implementation cp --abi cp313 --abi abi3 --abi none \
  "${platforms[@]}" -r "$REQS" -c "$WORK/constraints.txt"
pins > "$WORK/constraints.txt"
dups=$(sed 's/==.*//' "$WORK/constraints.txt" | sort -f | uniq -di)
[ -z "$dups" ] || { echo "build_pypi_mirror: 3.11 and 3.13 resolved different versions of: $dups" >&2; exit 1; }
echo "$STAMP" > "$WORK/.requirements.sha256"
chmod -R a+rX "$WORK"
rm -rf "$OUT.old"; [ ! -d "$OUT" ] || mv "$OUT" "$OUT.old"
mv "$WORK" "$OUT"; rm -rf "$OUT.old"; trap - EXIT
echo "mirror: $OUT holds $(ls "$OUT"/*.whl | wc -l) wheels (pins in $OUT/constraints.txt)"
