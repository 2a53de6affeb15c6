"""The systemd mount unit of one prepared namespace, and the k3s local-path key (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from agent.model.storage import Filesystem

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")
RUNTIME_UNITS = ("k3s.service", "k3s-agent.service", "k0scontroller.service", "k0sworker.service")


def unit_name(where: str) -> str:
    """``systemd-escape --path --suffix=mount WHERE``: the only name systemd accepts for that mount point."""
    path = "/".join(p for p in where.split("/") if p)
    if not path:
        return "-.mount"
    out = []
    for i, ch in enumerate(path):
        if ch == "/":
            out.append("-")
        elif ch in _SAFE and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode()))
    return "".join(out) + ".mount"


def unit_text(where: str, uuid: str, fs: Filesystem, name: str) -> str:
    """A mount unit for ``where``, ordered before the Kubernetes runtime so local-path finds it mounted."""
    return (
        "# Written by edge-agent (storage.mode = filesystem); the agent rewrites it.\n"
        "[Unit]\n"
        f"Description=edge-agent volume {name}\n"
        f"Before={' '.join(RUNTIME_UNITS)}\n"
        "\n[Mount]\n"
        f"What=/dev/disk/by-uuid/{uuid}\n"
        f"Where={where}\n"
        f"Type={fs}\n"
        "Options=defaults,noatime\n"
        "\n[Install]\n"
        "WantedBy=local-fs.target\n"
    )


def k3s_storage_keys(mountpoints: Sequence[str]) -> dict[str, str]:
    """``default-local-storage-path`` on the first prepared volume (by name); empty when none."""
    return {"default-local-storage-path": sorted(mountpoints)[0]} if mountpoints else {}
