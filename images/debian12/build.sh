#!/usr/bin/env bash
# Build the local-cloud host image (Debian 12 system container) without an image server.
#
#   DML_IMAGE_MIRROR=file:///.../lock-<hash> DML_IMAGE_KEYRING=/.../dml-store.gpg \
#   DML_IMAGE_EXPECTED=/.../image-set.txt images/debian12/build.sh OUTPUT_DIR
#
# Produces OUTPUT_DIR/meta.tar.gz and OUTPUT_DIR/rootfs.tar.gz, ready for
# `lxc image import meta.tar.gz rootfs.tar.gz --alias NAME`.
# The packages come from the package store's repository for the apt lock (never from
# Debian directly), and the finished root file system must hold exactly the lock's
# image set (DML_IMAGE_EXPECTED: "name version" lines) or the build fails.
# The image is cached by the sha256 of this directory (the recipe) and of the lock's
# image set: change either and the next bootstrap builds a new image under a new alias.
# Decisions (see docs/local-cloud.md): minbase + the few packages a systemd host with
# SSH needs; udev is required or systemd-networkd never configures eth0; machine-id and
# SSH host keys are removed so every container gets its own on first boot.
set -euo pipefail

out=${1:?usage: build.sh OUTPUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=${DML_IMAGE_MIRROR:?DML_IMAGE_MIRROR: the package store repository of the apt lock (file:///...)}
keyring=${DML_IMAGE_KEYRING:?DML_IMAGE_KEYRING: the package store public keyring}
expected=${DML_IMAGE_EXPECTED:?DML_IMAGE_EXPECTED: the lock image set, one name version line per package}
login_user=deploy
packages=$(grep -v '^#' "$here/packages.txt" | xargs | tr ' ' ',')

work=$(mktemp -d /var/tmp/dml-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

echo "[image] debootstrap $suite from $mirror (this takes about 2 minutes)"
debootstrap --variant=minbase --keyring="$keyring" --include="$packages" "$suite" "$rootfs" "$mirror" \
  > "$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

echo "[image] checking the installed packages against the apt lock's image set"
chroot "$rootfs" dpkg-query -W -f='${Package} ${Version}\n' | sort > "$work/installed.txt"
if ! sort "$expected" | diff -u - "$work/installed.txt" > "$work/set.diff"; then
  echo "[image] ERROR: the image differs from the apt lock's image set (- lock, + image):" >&2
  grep '^[-+][^-+]' "$work/set.diff" >&2
  exit 1
fi

echo "[image] customising"
# No APT source: the base role points apt at the package store (hosts install the lock).
rm -f "$rootfs/etc/apt/sources.list"
install -m 0644 "$here/files/eth0.network" "$rootfs/etc/systemd/network/eth0.network"
install -m 0644 "$here/files/ssh-hostkeys.service" "$rootfs/etc/systemd/system/ssh-hostkeys.service"
install -m 0644 "$here/files/10-no-recommends" "$rootfs/etc/apt/apt.conf.d/10-no-recommends"
chroot "$rootfs" systemctl enable systemd-networkd systemd-resolved ssh-hostkeys.service >/dev/null 2>&1
# A container cannot register binary formats: masking the unit keeps the host "running", not "degraded".
ln -sf /dev/null "$rootfs/etc/systemd/system/systemd-binfmt.service"
echo 'LANG=C.UTF-8' > "$rootfs/etc/default/locale"
ln -sf /run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
rm -f "$rootfs"/etc/ssh/ssh_host_*
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# No /etc/hostname: the container keeps the name LXD gives it (its Terraform name).
rm -f "$rootfs/etc/hostname"
# The login user Terraform gives an SSH key to (file{} block into authorized_keys).
chroot "$rootfs" useradd --create-home --uid 1000 --user-group --shell /bin/bash "$login_user"
install -d -m 0700 -o 1000 -g 1000 "$rootfs/home/$login_user/.ssh"
echo "$login_user ALL=(ALL) NOPASSWD:ALL" > "$rootfs/etc/sudoers.d/90-$login_user"
chmod 0440 "$rootfs/etc/sudoers.d/90-$login_user"

echo "[image] packing"
mkdir -p "$out"
tar --numeric-owner --xattrs -C "$rootfs" -cf - . | gzip -1 > "$out/rootfs.tar.gz.part"
mv "$out/rootfs.tar.gz.part" "$out/rootfs.tar.gz"
mkdir -p "$work/meta"
cat > "$work/meta/metadata.yaml" <<META
architecture: x86_64
creation_date: $(date +%s)
properties:
  os: debian
  release: $suite
  description: disposable-ml Debian 12 host ($suite, minbase + systemd + ssh)
META
tar -C "$work/meta" -czf "$out/meta.tar.gz" metadata.yaml
echo "[image] done: $out"
