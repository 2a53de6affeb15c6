#!/bin/bash
# TEST images only: put the stand-in k3s and k0s (tests/standins/dist) into the image's
# air-gap bundle slot, in the layout agent/runtime/installer.py reads:
#   /usr/lib/edge-agent/airgap/<distribution>/<distribution>   the binary
#   /usr/lib/edge-agent/airgap/<distribution>/sha256sum.txt    its sha256 (sha256sum format)
# The agent then installs them exactly as it would install real k3s/k0s from an air-gapped image.
# The stand-in systemctl/journalctl are NOT baked in: the booted image has the real ones.
#
#   image/add-standins.sh STANDINS_DIR TREE
set -euo pipefail
standins=${1:?usage: add-standins.sh STANDINS_DIR TREE}
tree=${2:?usage: add-standins.sh STANDINS_DIR TREE}
[[ -d "$tree/usr/lib/edge-agent" ]] || { echo "add-standins.sh: $tree is not an image tree" >&2; exit 1; }
for dist in k3s k0s; do
    src="$standins/dist/$dist"
    [[ -f "$src" ]] || { echo "add-standins.sh: missing stand-in $src" >&2; exit 1; }
    dir="$tree/usr/lib/edge-agent/airgap/$dist"
    install -D -m 0755 "$src" "$dir/$dist"
    (cd "$dir" && sha256sum "$dist" > sha256sum.txt)
    echo "add-standins.sh: stand-in $dist -> /usr/lib/edge-agent/airgap/$dist" >&2
done
# The stand-ins log every call to /var/log/standin-calls.log, also when the agent probes them
# from inside its sandbox (ProtectSystem=strict: /var/log is read-only there, /var/lib is not).
mkdir -p "$tree/var/lib/edge-standin"
ln -sfn /var/lib/edge-standin/calls.log "$tree/var/log/standin-calls.log"
