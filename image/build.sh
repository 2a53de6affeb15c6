#!/bin/bash
# Build the edge-agent Debian 12 root tree (see image/README.md).
#
#   image/build.sh [--variant production|test] [--cache DIR] [--airgap DIR] [--out DIR]
#
# Prints the path of the finished tree on stdout (everything else goes to stderr).
# Without --out the tree lands in the cache under a key of everything that goes into it,
# so a second call with unchanged sources returns at once.
#
# Steps, each cached on its own:
#   1. base:   debootstrap minbase of image/packages.txt (kernel, initramfs, udev: ~3 min, once per list)
#   2. deb:    dependency wheels for CPython 3.11 manylinux (once per pyproject.toml), then the .deb
#              from this checkout (packaging/deb/build.sh --wheels, offline)
#   3. tree:   copy of base + `dpkg -i` of that .deb + the image's own files, identity scrubbed;
#              the .deb is kept beside the tree as TREE.deb
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=image/layout.sh
source "$repo/image/layout.sh"
variant=production
cache=${EDGE_AGENT_IMAGE_CACHE:-/var/cache/edge-agent-image}
airgap=""
out=""
suite=bookworm

PROG=image/build.sh
# shellcheck source=image/script.sh
source "$repo/image/script.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --variant) variant=${2:?--variant needs production or test}; shift 2 ;;
        --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
        --airgap) airgap=${2:?--airgap needs a directory}; shift 2 ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        -h|--help) usage 14 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
case "$variant" in production|test) ;; *) die "--variant must be 'production' or 'test', got '$variant'" ;; esac
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot, file ownership)"
[[ -z "$airgap" || -d "$airgap" ]] || die "--airgap '$airgap' is not a directory"
# EDGE_AGENT_UNIT tries a unit change before it lands in systemd/ (it is part of the tree key).
unit=${EDGE_AGENT_UNIT:-"$repo/systemd/edge-agent.service"}
[[ -f "$unit" ]] || die "missing $unit (the agent unit)"
# pip for the host side (building the agent wheel, fetching dependency wheels) comes from the
# project's .venv (make deps): Debian's python3 has no pip unless python3-pip is installed.
host_python=${EDGE_AGENT_BUILD_PYTHON:-python3}
[[ -z "${EDGE_AGENT_BUILD_PYTHON:-}" && -x "$repo/.venv/bin/python" ]] && host_python="$repo/.venv/bin/python"
"$host_python" -m pip --version >/dev/null 2>&1 || die "$host_python has no pip: run 'make deps' (creates .venv)"
for tool in debootstrap chroot python3 sha256sum; do
    command -v "$tool" >/dev/null || die "'$tool' not found (apt-get install debootstrap)"
done
mkdir -p "$cache"
exec 8>"$cache/.lock"
flock 8 || die "cannot lock $cache/.lock"   # one build per cache at a time

# --- keys: a tree is rebuilt exactly when something that goes into it changed -------------
hash_files() { # sorted file list on stdin -> one digest of names + contents
    local f
    while IFS= read -r f; do
        [[ -f "$repo/$f" ]] || continue
        printf '%s\0' "$f"; sha256sum < "$repo/$f"
    done | sha256sum | cut -c1-16
}
packages=$(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$' | paste -sd, -)
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${EDGE_AGENT_IMAGE_MIRROR:-${mirror:-http://deb.debian.org/debian}}
base_key=$(printf '%s\n' "$suite" "$packages" "$mirror" "base-v1" | sha256sum | cut -c1-16)
deps_key=$(echo pyproject.toml | hash_files)
agent_key=$(git -C "$repo" ls-files -co --exclude-standard -- agent pyproject.toml README.md LICENSE | sort | hash_files)
tree_key=$( { echo "$base_key $deps_key $agent_key $variant tree-v1"
              git -C "$repo" ls-files -co --exclude-standard -- systemd image packaging README.md docs | sort | hash_files
              # stand-ins by what is on disk, tracked or not
              [[ "$variant" != test ]] || (cd "$repo" && find tests/standins tests/vm/guest -type f ! -path '*/__pycache__/*' | sort | hash_files)
              sha256sum < "$unit"
              [[ -z "$airgap" ]] || (cd "$airgap" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
            } | sha256sum | cut -c1-16)

final=${out:-"$cache/tree-$variant-$tree_key"}
if [[ -n "$out" && -e "$out" && ! -f "$out/usr/lib/edge-agent/image-release" ]] && [[ -n "$(ls -A "$out" 2>/dev/null)" ]]; then
    die "--out $out exists and is not an earlier edge-agent tree; refusing to replace it"
fi
if [[ -z "$out" && -d "$final" ]]; then
    log "cached: $final"
    echo "$final"
    exit 0
fi

# --- step 1: base -------------------------------------------------------------------------
base="$cache/base-$base_key"
if [[ ! -d "$base" ]]; then
    log "debootstrap $suite ($packages) from $mirror -> $base"
    rm -rf "$base.tmp"
    debootstrap --variant=minbase --include="$packages" "$suite" "$base.tmp" "$mirror" >&2 \
        || die "debootstrap failed (log: $base.tmp/debootstrap/debootstrap.log)"
    rm -rf "$base.tmp/var/cache/apt/archives/"*.deb "$base.tmp/var/lib/apt/lists/"*_* 2>/dev/null || true
    mv "$base.tmp" "$base"
    find "$cache" -maxdepth 1 \( \( -name 'base-*' ! -name "base-$base_key" \) -o \
        \( -name 'vm-debs-*' ! -name "vm-debs-$base_key" \) \) -exec rm -rf {} +
fi

# --- step 2: the .deb ----------------------------------------------------------------------
# The agent goes into the tree the way it goes into any Debian image: by installing the package
# (packaging/deb/build.sh), built offline from the dependency wheels cached per pyproject.toml
# (binary wheels for the tree's interpreter, Debian's CPython 3.11, glibc 2.36).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/wheels"
git -C "$repo" ls-files -co --exclude-standard -z -- agent pyproject.toml README.md LICENSE \
    | (cd "$repo" && xargs -0 cp --parents -t "$work/src")
[[ -f "$work/src/README.md" ]] || echo "# edge-agent" > "$work/src/README.md"
deps="$cache/deps-$deps_key"
if [[ ! -d "$deps" ]]; then
    log "building the agent wheel from $repo (to resolve its dependencies)"
    "$host_python" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheels" "$work/src" >&2
    log "fetching dependency wheels for cp311 manylinux -> $deps"
    rm -rf "$deps.tmp" && mkdir -p "$deps.tmp"
    "$host_python" -m pip download --quiet --only-binary=:all: --dest "$deps.tmp" \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        --platform manylinux_2_36_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 \
        --platform manylinux1_x86_64 --platform any \
        "$work/wheels"/edge_agent-*.whl > "$work/pip.log" 2>&1 \
        || { grep -v 'is ignored: it is neither' "$work/pip.log" >&2; die "pip download failed"; }
    rm -f "$deps.tmp"/edge_agent-*.whl
    mv "$deps.tmp" "$deps"
    find "$cache" -maxdepth 1 -name 'deps-*' ! -name "deps-$deps_key" -exec rm -rf {} +
fi
log "building the .deb (packaging/deb/build.sh --wheels $deps)"
deb=$(EDGE_AGENT_BUILD_PYTHON="$host_python" bash "$repo/packaging/deb/build.sh" --wheels "$deps" --out "$work/deb" \
    | tail -1) || die "packaging/deb/build.sh failed (above)"
[[ -f "$deb" ]] || die "packaging/deb/build.sh printed no .deb"

# --- step 3: tree -------------------------------------------------------------------------
tree="$final.tmp"
rm -rf "$tree"
log "assembling $variant tree -> $final"
cp -a "$base" "$tree"
in_tree() { chroot "$tree" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }

# dpkg -i in the tree: the package's maintainer scripts make the group and directories and enable
# edge-agent.service and edge-agent-console.service, as on any box that installs it.
cp "$deb" "$tree/tmp/edge-agent.deb"
in_tree dpkg -i /tmp/edge-agent.deb >&2 || die "dpkg -i $(basename "$deb") in the tree failed"
rm -f "$tree/tmp/edge-agent.deb"
for script in agentd agentctl agentd-launch; do
    [[ -x "$tree/opt/edge-agent/venv/bin/$script" ]] || die "the installed package lacks the '$script' console script"
done

# What is the image's own rather than the package's: networkd, the first-boot presets (locale,
# keymap: systemd-firstboot finds nothing to ask), the root partition growing on a flashed disk
# (usr/lib/repart.d; under nspawn systemd-repart is skipped: ConditionVirtualization=!container).
cp -rT "$here/rootfs" "$tree"
find "$tree/usr/lib/edge-agent" -name .keep -delete
if [[ -n "$airgap" ]]; then
    cp -a "$airgap"/. "$tree/usr/lib/edge-agent/airgap/"
fi
systemctl --root="$tree" enable systemd-networkd.service 2>&1 | sed 's/^/  /' >&2
# nvme-cli (for the health log) also ships NVMe-oF autoconnect units; an edge box never attaches fabric
# namespaces on its own (storage selects none by default), and on a box with no fabric config they fail.
systemctl --root="$tree" mask nvmf-autoconnect.service nvmefc-boot-connections.service 2>&1 | sed 's/^/  /' >&2
systemctl --root="$tree" is-enabled edge-agent.service >/dev/null || die "edge-agent.service did not get enabled"

# No identity, no build-machine leftovers: every box makes its own at first boot.
echo uninitialized > "$tree/etc/machine-id"
ln -sf /etc/machine-id "$tree/var/lib/dbus/machine-id"
rm -f "$tree/etc/hostname" "$tree/etc/resolv.conf" "$tree/var/lib/systemd/random-seed" \
      "$tree/var/lib/systemd/credential.secret"
rm -rf "$tree/var/lib/edge-agent" "$tree/run/edge-agent" "$tree/root/.cache" "$tree/root/.ssh" "$tree/tmp/"* "$tree/var/tmp/"* \
       "$tree/var/cache/apt/"*.bin "$tree/var/log/"*.log "$tree/var/log/apt/"* "$tree/var/cache/debconf/"*-old

# Test images only, after the scrub above so nothing of theirs is swept away.
if [[ "$variant" == test ]]; then
    bash "$here/add-standins.sh" "$repo/tests/standins" "$tree"
    bash "$here/add-vm-shell.sh" "$repo/tests/vm/guest" "$tree" "$cache/vm-debs-$base_key"
fi

commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain -- agent pyproject.toml systemd image 2>/dev/null | head -c1)
version=$(in_tree /opt/edge-agent/venv/bin/python -c 'import importlib.metadata as m; print(m.version("edge-agent"))')
cat > "$tree/usr/lib/edge-agent/image-release" <<EOF
IMAGE_VARIANT=$variant
AGENT_VERSION=$version
SOURCE_COMMIT=$commit${dirty:+-dirty}
TREE_KEY=$tree_key
EOF

python3 "$here/check_tree.py" --variant "$variant" --standins "$repo/tests/standins" "$tree" >&2 \
    || die "the $variant tree failed its checks (above); not publishing it"
rm -rf "$final"
mv "$tree" "$final"
cp "$deb" "$final.deb"   # the package this tree was made from, beside it (make image, docs/packaging.md)
if [[ -z "$out" ]]; then   # keep the newest tree per variant only
    find "$cache" -maxdepth 1 -name "tree-$variant-*" ! -name "tree-$variant-$tree_key" \
        ! -name "tree-$variant-$tree_key.*" -exec rm -rf {} +
fi
log "done: $final"
echo "$final"
