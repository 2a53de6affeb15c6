#!/bin/bash
# TEST images only: the command channel tests/vm runs commands in a booted VM through
# (tests/vm/guest: a small python3 server on the virtio-serial port "edge.test", started by
# udev when QEMU offers that port, never otherwise). image/check_tree.py refuses it in production.
#
#   image/add-vm-shell.sh GUEST_DIR TREE
set -euo pipefail
guest=${1:?usage: add-vm-shell.sh GUEST_DIR TREE}
tree=${2:?usage: add-vm-shell.sh GUEST_DIR TREE}
[[ -d "$tree/usr/lib/edge-agent" ]] || { echo "add-vm-shell.sh: $tree is not an image tree" >&2; exit 1; }
install -D -m 0755 "$guest/edge-test-shell.py" "$tree/usr/lib/edge-test/edge-test-shell.py"
install -D -m 0644 "$guest/edge-test-shell.service" "$tree/usr/lib/systemd/system/edge-test-shell.service"
install -D -m 0644 "$guest/90-edge-test-shell.rules" "$tree/usr/lib/udev/rules.d/90-edge-test-shell.rules"
echo "add-vm-shell.sh: test command channel -> /usr/lib/edge-test (virtio-serial edge.test)" >&2
