#!/bin/bash
# Build edge-agent_<version>_amd64.deb from this checkout (see docs/packaging.md).
#
#   packaging/deb/build.sh [--out DIR] [--wheels DIR]
#
#   --out DIR     where the .deb goes (default: dist/ in the checkout)
#   --wheels DIR  take the dependency wheels from DIR only (no package index; e.g. the
#                 image cache's deps-* directory); default: pip wheel from the index
#
# Prints the path of the .deb on stdout (everything else goes to stderr). The package holds
# the same layout image/build.sh installs: a venv at /opt/edge-agent/venv on Debian's
# python3, the units, sysusers, tmpfiles, /usr/bin/agentctl and the vendor config.
# Needs Debian's /usr/bin/python3 (the interpreter the venv is bound to), dpkg-deb and the
# project's .venv (make deps) for pip. No root needed (dpkg-deb --root-owner-group).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=image/layout.sh
source "$repo/image/layout.sh"
out="$repo/dist"
wheels=""
venv_path=/opt/edge-agent/venv

PROG=packaging/deb/build.sh
# shellcheck source=image/script.sh
source "$repo/image/script.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --wheels) wheels=${2:?--wheels needs a directory}; shift 2 ;;
        -h|--help) usage 14 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ -z "$wheels" || -d "$wheels" ]] || die "--wheels '$wheels' is not a directory"
for tool in dpkg-deb sha256sum gzip git; do
    command -v "$tool" >/dev/null || die "'$tool' not found"
done
# The caller's Python environment must not leak in: with a checkout on PYTHONPATH (the system tier sets
# one) pip sees its edge_agent.egg-info, calls edge-agent "already satisfied" and installs nothing.
unset PYTHONPATH PYTHONHOME PYTHONUSERBASE PIP_TARGET PIP_PREFIX VIRTUAL_ENV
# The venv's interpreter is the box's /usr/bin/python3, so it must be built with that one.
target_python=/usr/bin/python3
[[ -x "$target_python" ]] || die "$target_python not found (Debian's python3 is what the venv runs on)"
pyver=$("$target_python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
"$target_python" -c 'import ensurepip' 2>/dev/null || die "$target_python cannot make venvs: apt-get install python3-venv"
host_python=${EDGE_AGENT_BUILD_PYTHON:-"$repo/.venv/bin/python"}
"$host_python" -m pip --version >/dev/null 2>&1 || die "$host_python has no pip: run 'make deps' (creates .venv)"

version=$("$target_python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$repo/pyproject.toml") || die "cannot read project.version from $repo/pyproject.toml"
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "pyproject.toml project.version '$version' is not a Debian version"
arch=$(dpkg --print-architecture)
[[ "$arch" == amd64 ]] || log "warning: building for $arch (the wheels are this machine's)"

work=$(mktemp -d "${TMPDIR:-/tmp}/edge-agent-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$work/src" "$work/wheels" "$root/DEBIAN"

# --- wheels: the agent from exactly the files git would ship, its dependencies as wheels ----
git -C "$repo" ls-files -co --exclude-standard -z -- agent pyproject.toml README.md LICENSE \
    | (cd "$repo" && xargs -0 cp --parents -t "$work/src")
[[ -f "$work/src/README.md" ]] || echo "# edge-agent" > "$work/src/README.md"
# Boxes carry the agent only: the registrar (agent/registrar, the edge-registrar command) runs where
# the fleet runs and is installed there from the full wheel (docs/packaging.md). Nothing box-side
# imports it (tests/package/test_no_registrar.py), so the box's wheel is built without it.
rm -rf "$work/src/agent/registrar"
sed -i '/^edge-registrar *= *"agent\.registrar\./d' "$work/src/pyproject.toml"
! grep -q 'agent\.registrar' "$work/src/pyproject.toml" || die "pyproject.toml still names agent.registrar after removing the edge-registrar script"
log "building the agent wheel (without the registrar)"
"$host_python" -m pip wheel --quiet --no-deps --disable-pip-version-check --wheel-dir "$work/wheels" "$work/src" >&2
index_args=()
[[ -z "$wheels" ]] || index_args=(--no-index --find-links "$wheels")
log "collecting dependency wheels${wheels:+ from $wheels}"
"$host_python" -m pip wheel --quiet --disable-pip-version-check --only-binary=:all: "${index_args[@]}" \
    --find-links "$work/wheels" --wheel-dir "$work/wheels" "$work/wheels"/edge_agent-*.whl > "$work/pip.log" 2>&1 \
    || { grep -v 'is ignored: it is neither' "$work/pip.log" >&2; die "collecting dependency wheels failed"; }

# --- the venv, built at its final path under the staging root --------------------------------
# Everything the venv writes that names its own location (script shebangs, activate scripts,
# pyvenv.cfg) is rewritten from the staging path to $venv_path afterwards; bytecode is compiled
# after that with the final path, so tracebacks name the installed files.
stage_venv="$root$venv_path"
log "installing into $venv_path (staged)"
"$target_python" -m venv "$stage_venv"
"$stage_venv/bin/python" -m pip install --quiet --no-index --no-cache-dir --disable-pip-version-check \
    --no-compile --find-links "$work/wheels" edge-agent >&2 || die "installing the agent into the venv failed"
"$stage_venv/bin/python" -m pip check >&2 || die "dependency check of the venv failed"
for script in agentd agentctl agentd-launch; do
    [[ -x "$stage_venv/bin/$script" ]] || die "the venv lacks the '$script' console script"
done
[[ ! -e "$stage_venv/bin/edge-registrar" ]] || die "the venv has an edge-registrar command (the registrar is not for boxes)"
if found=$(find "$stage_venv" -path '*/site-packages/agent/registrar' | head -1) && [[ -n "$found" ]]; then
    die "the venv holds the registrar package ($found)"
fi
find "$stage_venv" -name direct_url.json -delete   # names the build machine's paths
find "$stage_venv" -name __pycache__ -type d -prune -exec rm -rf {} +
grep -rlZ --binary-files=without-match -F "$stage_venv" "$stage_venv" \
    | xargs -0 -r sed -i "s|$stage_venv|$venv_path|g"
if leftover=$(grep -rl -F "$work" "$root"); then
    die "files in the venv still name the staging directory: $leftover"
fi
"$stage_venv/bin/python" -m compileall -q -j0 -s "$root" -p / "$stage_venv/lib" >/dev/null \
    || die "compiling the venv's bytecode failed"

# --- units, sysusers, tmpfiles, vendor config, docs -----------------------------------------
install_agent_files "$repo" "$root"   # image/layout.sh: the layout the image tree has too
install -D -m 0644 "$repo/image/rootfs/usr/lib/edge-agent/agent.toml" "$root/usr/lib/edge-agent/agent.toml"
mkdir -p "$root/usr/lib/edge-agent/airgap" "$root/usr/bin"
ln -s "$venv_path/bin/agentctl" "$root/usr/bin/agentctl"
doc="$root/usr/share/doc/edge-agent"
install -m 0644 "$here/copyright" "$doc/copyright"
gzip -9n < "$here/changelog" > "$doc/changelog.gz"
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/edge-agent"

# --- control, maintainer scripts, md5sums ---------------------------------------------------
find "$root" -path "$root/DEBIAN" -prune -o -type d -exec chmod 0755 {} +
find "$root" -path "$root/DEBIAN" -prune -o -type f -exec chmod u+rw,go+r,go-w {} +
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@PYVER@/$pyver/g" \
    -e "s/@PYNEXT@/${pyver%.*}.$(( ${pyver#*.} + 1 ))/g" "$here/control.in" > "$root/DEBIAN/control"
for script in postinst prerm postrm; do
    install -m 0755 "$here/$script" "$root/DEBIAN/$script"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

mkdir -p "$out"
deb="$(cd "$out" && pwd)/edge-agent_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2 || die "dpkg-deb --build failed"
log "built $deb"
echo "$deb"
