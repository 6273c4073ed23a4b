#!/usr/bin/env bash
# Build a bare Debian root filesystem for the sandbox's "-bare" base images: a real, minimal
# Debian made by debootstrap from Debian's archive, with what a cloud image has (cloud-init,
# openssh-server, sudo, iproute2, procps, ca-certificates) and, like a cloud image, NO Java.
# A sandbox server booted from such an image runs on this tree (its own /usr, /etc, /var):
# sandbox/nova_driver.py mounts copy-on-write layers over it, never changing it.
#   build_rootfs.sh DEST SUITE        (SUITE: bookworm or trixie; the tree DEST is made)
# Idempotent: a tree built by the same script for the same suite is kept (.built holds the
# script's hash). Prints one line: the tree, its size and how long the build took.
set -euo pipefail
DEST=$1; SUITE=$2
OUT=$(dirname "$DEST"); NAME=$(basename "$DEST")
ARCHIVE=${SANDBOX_DEBIAN_ARCHIVE:-http://deb.debian.org/debian}
# cloud-init's Python needs python3-cffi-backend spelled out: debootstrap's resolver does
# not follow the virtual package python3-cryptography depends on
INCLUDE=cloud-init,openssh-server,sudo,iproute2,procps,ca-certificates,netbase,python3,python3-cffi-backend
command -v debootstrap >/dev/null || { echo "build_rootfs: debootstrap is missing" >&2; exit 1; }
STAMP="$(sha256sum "$0" | cut -d' ' -f1) $SUITE $ARCHIVE"
if [ -f "$DEST/.built" ] && [ "$(cat "$DEST/.built")" = "$STAMP" ]; then
  echo "rootfs: $DEST already built ($(du -sh "$DEST" | cut -f1))"; exit 0
fi
T0=$(date +%s)
mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.$NAME.build.XXXXXX"); trap 'rm -rf "$WORK"' EXIT
LOG=$OUT/$NAME.debootstrap.log
if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$WORK" "$ARCHIVE" >"$LOG" 2>&1; then
  tail -n 20 "$LOG" >&2
  grep -m5 -i 'error\|fail' "$WORK/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  echo "build_rootfs: debootstrap $SUITE failed; see $LOG" >&2; exit 1
fi
# as a cloud image ships it: the archive, its updates and its security suite; no package
# cache, no host keys (cloud-init makes them at first boot), no machine id, no hostname
rm -f "$WORK/etc/apt/sources.list"
cat > "$WORK/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -rf "$WORK"/var/cache/apt/archives/*.deb "$WORK"/var/cache/apt/*.bin "$WORK"/var/lib/apt/lists/*_* \
       "$WORK"/etc/ssh/ssh_host_* "$WORK/debootstrap"
: > "$WORK/etc/machine-id"
echo localhost > "$WORK/etc/hostname"
[ -x "$WORK/usr/bin/cloud-init" ] && [ -x "$WORK/usr/sbin/sshd" ] && [ -x "$WORK/usr/bin/sudo" ] \
  || { echo "build_rootfs: $SUITE tree lacks cloud-init, sshd or sudo" >&2; exit 1; }
if [ -e "$WORK/usr/bin/java" ]; then echo "build_rootfs: $SUITE tree has Java" >&2; exit 1; fi
echo "$STAMP" > "$WORK/.built"
rm -rf "$DEST.old"; [ ! -d "$DEST" ] || mv "$DEST" "$DEST.old"
mv "$WORK" "$DEST"; rm -rf "$DEST.old"; trap - EXIT
chmod 0755 "$DEST"
VER=$(. "$DEST/etc/os-release"; echo "$PRETTY_NAME")
echo "rootfs: $DEST built in $(( $(date +%s) - T0 )) s ($(du -sh "$DEST" | cut -f1), $VER, $(chroot "$DEST" dpkg-query -W -f '.\n' | wc -l) packages)"
