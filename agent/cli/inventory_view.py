"""Human rendering of the /v1/inventory document (standard library only)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy still reads the block below
if TYPE_CHECKING:
    from typing import Any

BOLD, YELLOW, DIM, RESET = "\033[1m", "\033[33m", "\033[2m", "\033[0m"


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _speed(mbps: Any) -> str:
    if not isinstance(mbps, int):
        return "-"
    return f"{mbps // 1000} Gb/s" if mbps >= 1000 and mbps % 1000 == 0 else f"{mbps} Mb/s"


def _s(v: Any) -> str:
    if v is None or v == "" or v == []:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


def table(headers: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [indent + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return lines


def _system(s: dict[str, Any]) -> list[str]:
    who = " ".join(x for x in (s.get("vendor"), s.get("product")) if x) or "unknown machine"
    if s.get("serial"):
        who += f" (serial {s['serial']})"
    cpu = f"{_s(s.get('sockets'))} socket(s), {_s(s.get('cores'))} cores, {_s(s.get('threads'))} threads"
    mem = s.get("memory_bytes")
    if not isinstance(mem, int):
        mem_text = "memory -"
    elif mem >= 2**40:
        mem_text = f"{mem / 2**40:.1f} TiB memory"
    else:
        mem_text = f"{mem / 2**30:.1f} GiB memory"
    boot = {"uefi": "UEFI", "bios": "BIOS"}.get(s.get("boot_mode") or "", "boot -")
    return [
        f"  {who}",
        f"  {s.get('cpu_model') or 'CPU -'} · {cpu} · {mem_text}",
        f"  {s.get('os_release') or 'OS -'} · kernel {_s(s.get('kernel'))} · {_s(s.get('architecture'))} · {boot}",
        f"  machine-id {_s(s.get('machine_id'))}",
    ]


def _gpus(gpus: list[dict[str, Any]]) -> list[str]:
    rows = []
    for g in gpus:
        nv = g.get("nvidia") or {}
        mem = nv.get("memory_mib")
        where = (g.get("pci") or {}).get("address") or g.get("platform_path") or "-"
        nodes = ",".join(x for x in (g.get("drm_card"), g.get("drm_render")) if x) or "-"
        name = g["name"] + (" (display)" if g.get("display_only") else "")
        rows.append(
            [where, name, _s(g.get("driver")), f"{mem / 1024:.0f} GiB" if mem else "-", _s(g.get("numa_node")), nodes]
        )
    return table(["ADDRESS", "NAME", "DRIVER", "MEMORY", "NUMA", "DRM"], rows)


def _nvme(ctrls: list[dict[str, Any]]) -> list[str]:
    rows = []
    for c in ctrls:
        where = (c.get("pci") or {}).get("address") or c.get("fabric_address") or "-"
        rows.append([c["name"], _s(c.get("model")), _s(c.get("serial")), _s(c.get("transport")), where, "", ""])
        for ns in c.get("namespaces", []):
            flags = ",".join(f for f, on in (("root", ns.get("holds_root")), ("remote", ns.get("remote"))) if on)
            rows.append(["  " + ns["name"], "", "", "", "", _size(ns.get("size_bytes")), flags or "-"])
    return table(["NAME", "MODEL", "SERIAL", "TRANSPORT", "ADDRESS", "SIZE", "FLAGS"], rows)


def _disks(disks: list[dict[str, Any]]) -> list[str]:
    rows = [
        [
            d["name"],
            _s(d.get("bus")),
            _s(d.get("model")),
            _size(d.get("size_bytes")),
            {True: "hdd", False: "ssd"}.get(d.get("rotational"), "-"),  # type: ignore[arg-type]
            "root" if d.get("holds_root") else "-",
        ]
        for d in disks
    ]
    return table(["NAME", "BUS", "MODEL", "SIZE", "MEDIA", "FLAGS"], rows)


def _nics(nics: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(nics, key=lambda n: (not n.get("physical"), n["name"]))
    rows = []
    for n in ordered:
        kind = n["kind"] + (" vf" if n.get("is_vf") else "")
        if n.get("bond_master"):
            kind += f" ({n['bond_master']})"
        vfs = f"{n['sriov_num_vfs']}/{n['sriov_total_vfs']}" if n.get("sriov_total_vfs") else "-"
        rows.append(
            [
                n["name"],
                kind,
                _s(n.get("driver")),
                _speed(n.get("speed_mbps")),
                _s(n.get("mtu")),
                _s(n.get("operstate")),
                vfs,
                _s(n.get("rdma_devices")),
                _s(n.get("addresses")),
            ]
        )
    return table(["NAME", "KIND", "DRIVER", "SPEED", "MTU", "STATE", "VFS", "RDMA", "ADDRESSES"], rows)


def _problems(inv: dict[str, Any]) -> list[str]:
    out = [f"  system.{k}: {v}" for k, v in sorted(inv.get("system", {}).get("problems", {}).items())]
    out += [f"  {k}: {v}" for k, v in sorted(inv.get("problems", {}).items())]
    for section, key in (("gpus", "name"), ("nvme", "name"), ("disks", "name"), ("nics", "name")):
        for item in inv.get(section, []):
            ident = (item.get("pci") or {}).get("address") if section == "gpus" else item.get(key)
            for field, why in sorted(item.get("problems", {}).items()):
                out.append(f"  {section}[{ident}].{field}: {why}")
            for ns in item.get("namespaces", []):
                for field, why in sorted(ns.get("problems", {}).items()):
                    out.append(f"  nvme[{ns['name']}].{field}: {why}")
    return out


def render_inventory(doc: dict[str, Any], *, color: bool = False) -> str:
    inv = doc.get("inventory", {})

    def head(text: str) -> str:
        return f"{BOLD}{text}{RESET}" if color else text

    lines = [head("System"), *_system(inv.get("system", {}))]
    sections = (
        ("GPUs", inv.get("gpus", []), _gpus),
        ("NVMe", inv.get("nvme", []), _nvme),
        ("Disks", inv.get("disks", []), _disks),
        ("NICs", inv.get("nics", []), _nics),
    )
    for title, items, render in sections:
        lines.append("")
        lines.append(head(f"{title} ({len(items)})"))
        lines.extend(render(items) if items else ["  none"])
    labels = doc.get("labels", {})
    lines += ["", head(f"Node labels ({len(labels)})")]
    lines += [f"  {k}={v}" for k, v in sorted(labels.items())]
    problems = _problems(inv)
    if problems:
        lines += ["", head(f"Unreadable fields ({len(problems)})")]
        lines += [f"{YELLOW}{p}{RESET}" if color else p for p in problems]
    lines += ["", f"scanned at {inv.get('scanned_at', '-')}"]
    return "\n".join(lines) + "\n"
