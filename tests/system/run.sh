#!/bin/bash
# The system tier in one command (what `make system-test` and .ci/run call):
#
#   bash tests/system/run.sh [pytest args...]
#
# Installs its apt needs, builds the image trees once (cached, image/build.sh), boots them with
# systemd-nspawn and runs tests/system. Exits 0 with a "SKIP:" line only when this kernel cannot
# run nspawn containers at all; every other problem fails.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python=${PYTHON:-python3}
[[ -z "${PYTHON:-}" && -x "$repo/.venv/bin/python" ]] && python="$repo/.venv/bin/python"

fail() { echo "FAIL: tests/system/run.sh: $*" >&2; exit 1; }
skip() { echo "SKIP: tests/system/run.sh: $*"; exit 0; }

[[ $(id -u) -eq 0 ]] || fail "needs root (systemd-nspawn, veth links, cgroups); run it as root or under sudo"

# apt needs: program -> Debian package
declare -A needs=(
    [debootstrap]=debootstrap [systemd-nspawn]=systemd-container [ip]=iproute2 [nsenter]=util-linux
    [setsid]=util-linux [chroot]=coreutils [git]=git
)
missing=()
for prog in "${!needs[@]}"; do
    command -v "$prog" >/dev/null || missing+=("${needs[$prog]}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "tests/system/run.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
        || fail "apt-get install ${missing[*]} failed"
fi

# Can this kernel run nspawn at all? (namespaces, veth, a writable cgroup tree)
unshare --mount --pid --net --uts --ipc --fork true 2>/dev/null \
    || skip "the kernel refuses mount/pid/net/uts/ipc namespaces here, so systemd-nspawn cannot run"
probe=e2ep$$   # + "p" for the peer: stays within 15 characters
ip link add "$probe" type veth peer name "${probe}p" 2>/dev/null \
    || skip "the kernel cannot create veth links (CONFIG_VETH), which --network-veth needs"
ip link del "$probe"
if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then cgroot=/sys/fs/cgroup; else cgroot=/sys/fs/cgroup/systemd; fi
mkdir -p "$cgroot/e2e" 2>/dev/null || skip "cannot create a cgroup under $cgroot (read-only cgroup fs)"

"$python" -c 'import pytest, agent' 2>/dev/null \
    || fail "$python cannot import pytest and the agent; install the project first: pip install -e '.[test]'"

# One run at a time: container names, links and addresses are fixed.
mkdir -p /run/lock
exec 9>/run/lock/edge-agent-e2e.lock
flock -n 9 || fail "another system-test run holds /run/lock/edge-agent-e2e.lock"

cd "$repo"
export EDGE_AGENT_SYSTEM_TESTS=1 PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
[[ $# -gt 0 ]] || set -- tests/system
exec "$python" -m pytest -m system -p no:cacheprovider -s -q "$@"
