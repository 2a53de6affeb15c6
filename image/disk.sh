#!/bin/bash
# Turn a finished image tree (image/build.sh) into a bootable disk (see image/README.md).
#
#   image/disk.sh TREE [--cache DIR] [--out DIR]
#
# Prints the path of the raw disk on stdout (the qcow2 lies beside it: same name, .qcow2).
# The disk is cached by content: under --cache (default /var/cache/edge-agent-image) as
# disk-<variant>-<key>.{raw,qcow2}, the key being the tree's TREE_KEY and this script, so a
# second call for the same tree returns at once. With --out DIR the disk is built in DIR.
#
# Layout (GPT, UEFI only):
#   1  EFI system partition, FAT32, 256 MiB: systemd-boot (the tree's own systemd-bootx64.efi as
#      \EFI\BOOT\BOOTX64.EFI), one loader entry, the Debian kernel and initramfs from the tree's
#      /boot. The booted box mounts it at /boot, so /boot/edge-agent.toml is a file on it.
#   2  root (type root-x86-64), ext4 made from the tree with mkfs.ext4 -d; /boot left empty as the
#      ESP's mount point. Grows to the end of the disk at first boot: systemd-repart (the tree's
#      usr/lib/repart.d) grows the partition, x-systemd.growfs in /etc/fstab the filesystem.
# Built with sfdisk, mkfs.vfat + mtools, mkfs.ext4 -d + debugfs, dd and qemu-img: no loop device,
# no mount, no root needed beyond reading the tree (docs/vm.md says why not mkosi).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${EDGE_AGENT_IMAGE_CACHE:-/var/cache/edge-agent-image}
out=""
tree=""
esp_mib=256
# Fixed, so every box of the fleet boots the same loader entry and fstab (one image for all);
# what makes a box unique is made on the box (machine id, keys), never these.
disk_guid=8d1a4a8e-6c43-4b5e-9a57-ed9e00000000
esp_partuuid=8d1a4a8e-6c43-4b5e-9a57-ed9e00000001
root_partuuid=8d1a4a8e-6c43-4b5e-9a57-ed9e00000002
root_fs_uuid=8d1a4a8e-6c43-4b5e-9a57-ed9e00000003
esp_volid=ED6E0001
ESP_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
ROOT_TYPE=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709   # root-x86-64, Discoverable Partitions Specification

PROG=image/disk.sh
# shellcheck source=image/script.sh
source "$repo/image/script.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        -h|--help) usage 19 ;;
        -*) die "unknown argument '$1' (see --help)" ;;
        *) [[ -z "$tree" ]] || die "one TREE only (got '$tree' and '$1')"; tree=$1; shift ;;
    esac
done
[[ -n "$tree" ]] || die "usage: image/disk.sh TREE [--cache DIR] [--out DIR]"
[[ -f "$tree/usr/lib/edge-agent/image-release" ]] || die "$tree is not an image tree (no usr/lib/edge-agent/image-release)"
for tool in sfdisk mkfs.vfat mcopy mmd mdir mkfs.ext4 debugfs qemu-img sha256sum; do
    command -v "$tool" >/dev/null \
        || die "'$tool' not found (apt-get install fdisk dosfstools mtools e2fsprogs qemu-utils)"
done
release() { sed -n "s/^$1=//p" "$tree/usr/lib/edge-agent/image-release"; }
variant=$(release IMAGE_VARIANT)
tree_key=$(release TREE_KEY)
[[ -n "$variant" && -n "$tree_key" ]] || die "$tree/usr/lib/edge-agent/image-release lacks IMAGE_VARIANT or TREE_KEY"

kver=$(cd "$tree/boot" && ls vmlinuz-* 2>/dev/null | sed 's/^vmlinuz-//' | sort -V | tail -1)
[[ -n "$kver" ]] || die "$tree/boot has no vmlinuz-* (the tree needs linux-image-amd64: image/packages.txt)"
[[ -f "$tree/boot/initrd.img-$kver" ]] || die "$tree/boot has no initrd.img-$kver (initramfs-tools did not run)"
sdboot="$tree/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
[[ -f "$sdboot" ]] || die "$sdboot missing (the tree needs systemd-boot-efi: image/packages.txt)"

# The tree's own refusals apply to the disk: a tree check_tree.py rejects never becomes a disk.
python3 "$here/check_tree.py" --variant "$variant" --standins "$repo/tests/standins" "$tree" >&2 \
    || die "the tree failed image/check_tree.py (above); not making a disk of it"

key=$( { echo "$tree_key $kver disk-v1"; sha256sum < "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
name="disk-$variant-$key"
dir=${out:-$cache}
mkdir -p "$dir"
raw="$dir/$name.raw"
exec 9>"$dir/.disk.lock"
flock 9 || die "cannot lock $dir/.disk.lock"   # one disk build per directory at a time
if [[ -f "$raw" && -f "$dir/$name.qcow2" ]]; then
    log "cached: $raw"
    echo "$raw"
    exit 0
fi
work=$(mktemp -d "$dir/.disk.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- ESP: systemd-boot, one entry, kernel + initramfs ------------------------------------------
log "ESP ($esp_mib MiB): systemd-boot, kernel $kver"
cmdline="root=PARTUUID=$root_partuuid rw console=tty0 console=ttyS0,115200"
cat > "$work/loader.conf" <<EOF
default edge-agent.conf
timeout 0
editor no
EOF
cat > "$work/edge-agent.conf" <<EOF
title   edge-agent (Debian 12, $kver)
linux   /vmlinuz-$kver
initrd  /initrd.img-$kver
options $cmdline
EOF
esp="$work/esp.img"
mkfs.vfat -F 32 -n EDGE-BOOT -i "$esp_volid" -C "$esp" $((esp_mib * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$esp" "$sdboot" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/edge-agent.conf" ::/loader/entries/edge-agent.conf
for f in "$tree/boot"/*; do
    [[ -f "$f" && ! -L "$f" ]] && mcopy -i "$esp" "$f" "::/$(basename "$f")"
done
if mdir -i "$esp" -b ::/ | grep -qi 'edge-agent.toml'; then
    die "the ESP would carry a seed (edge-agent.toml): identity baked into the image"
fi

# --- root: ext4 of the tree, /boot emptied, the disk's fstab -----------------------------------
used_mib=$(( $(du -sxm "$tree" | cut -f1) ))
root_mib=$(( used_mib + used_mib / 4 + 256 ))
log "root filesystem: ${used_mib} MiB of tree in ${root_mib} MiB ext4"
rootimg="$work/root.img"
mkfs.ext4 -q -F -L edge-root -U "$root_fs_uuid" -E root_owner=0:0 -d "$tree" "$rootimg" "${root_mib}M" >&2 \
    || die "mkfs.ext4 -d $tree failed"   # stdout is the disk's path only
cat > "$work/fstab" <<EOF
# image/disk.sh: the disk's layout, the same on every box of the fleet
PARTUUID=$root_partuuid  /      ext4  defaults,x-systemd.growfs  0 1
PARTUUID=$esp_partuuid  /boot  vfat  umask=0077,shortname=winnt  0 0
EOF
{
    for f in "$tree/boot"/*; do [[ -e "$f" || -L "$f" ]] && echo "rm /boot/$(basename "$f")"; done
    echo "rm /etc/fstab"
    echo "write $work/fstab /etc/fstab"
    echo "sif /etc/fstab mode 0100644"
    echo "sif /etc/fstab uid 0"
    echo "sif /etc/fstab gid 0"
} > "$work/debugfs.cmds"
debugfs -w -f "$work/debugfs.cmds" "$rootimg" >/dev/null 2>"$work/debugfs.err" || { cat "$work/debugfs.err" >&2; die "debugfs failed"; }
if grep -v '^debugfs ' "$work/debugfs.err" | grep -q .; then cat "$work/debugfs.err" >&2; die "debugfs reported errors"; fi
[[ -z "$(debugfs -R 'ls -p /boot' "$rootimg" 2>/dev/null | awk -F/ '$6 != "." && $6 != ".." && $6 != ""')" ]] \
    || die "the root filesystem's /boot is not empty after moving the kernel to the ESP"

# --- GPT disk ------------------------------------------------------------------------------
total_mib=$(( 1 + esp_mib + root_mib + 1 ))
log "GPT disk: ${total_mib} MiB"
disk="$work/disk.raw"
truncate -s "${total_mib}M" "$disk"
sfdisk --quiet "$disk" <<EOF
label: gpt
label-id: $disk_guid
first-lba: 2048
start=1MiB, size=${esp_mib}MiB, type=$ESP_TYPE, uuid=$esp_partuuid, name="esp"
start=$((1 + esp_mib))MiB, size=${root_mib}MiB, type=$ROOT_TYPE, uuid=$root_partuuid, name="root-x86-64"
EOF
dd if="$esp" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$rootimg" of="$disk" bs=1M seek=$((1 + esp_mib)) conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$disk" "$work/disk.qcow2"
mv "$work/disk.qcow2" "$dir/$name.qcow2"
mv "$disk" "$raw"
if [[ -z "$out" ]]; then   # the newest disk per variant only
    find "$cache" -maxdepth 1 -name "disk-$variant-*" ! -name "$name.raw" ! -name "$name.qcow2" -delete
fi
log "done: $raw (+ $name.qcow2)"
echo "$raw"
