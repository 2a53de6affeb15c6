#!/bin/bash
# TEST images only: the command channel tests/vm runs commands in a booted VM through
# (tests/vm/guest: a small python3 server on the virtio-serial port "edge.test", started by
# udev when QEMU offers that port, never otherwise), and umockdev-record, with which the tier
# records the VM's devices for the umockdev tier (tests/fixtures/recorded-qemu-vm.umockdev).
# image/check_tree.py refuses the channel in production.
#
#   image/add-vm-shell.sh GUEST_DIR TREE DEBS_DIR
# DEBS_DIR caches the umockdev packages (apt-get download from the build host's Debian 12 sources).
set -euo pipefail
guest=${1:?usage: add-vm-shell.sh GUEST_DIR TREE}
tree=${2:?usage: add-vm-shell.sh GUEST_DIR TREE DEBS_DIR}
debs=${3:?usage: add-vm-shell.sh GUEST_DIR TREE DEBS_DIR}
[[ -d "$tree/usr/lib/edge-agent" ]] || { echo "add-vm-shell.sh: $tree is not an image tree" >&2; exit 1; }
install -D -m 0755 "$guest/edge-test-shell.py" "$tree/usr/lib/edge-test/edge-test-shell.py"
install -D -m 0644 "$guest/edge-test-shell.service" "$tree/usr/lib/systemd/system/edge-test-shell.service"
install -D -m 0644 "$guest/90-edge-test-shell.rules" "$tree/usr/lib/udev/rules.d/90-edge-test-shell.rules"
# umockdev and what the tree lacks of its dependencies (bookworm: these four)
packages=(umockdev libumockdev0 libglib2.0-0 libpcap0.8)
if [[ ! -f "$debs/.complete" ]]; then
    rm -rf "$debs" && mkdir -p "$debs"
    (cd "$debs" && apt-get download -q "${packages[@]}" >&2) \
        || { echo "add-vm-shell.sh: apt-get download ${packages[*]} failed" >&2; exit 1; }
    touch "$debs/.complete"
fi
mkdir -p "$tree/tmp/vm-debs"
cp "$debs"/*.deb "$tree/tmp/vm-debs/"
chroot "$tree" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c 'dpkg -i /tmp/vm-debs/*.deb' >&2 \
    || { echo "add-vm-shell.sh: installing umockdev into the test tree failed" >&2; exit 1; }
rm -rf "$tree/tmp/vm-debs"
echo "add-vm-shell.sh: test command channel -> /usr/lib/edge-test (virtio-serial edge.test)" >&2
