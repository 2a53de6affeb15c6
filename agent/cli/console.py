"""The offline console screen: what a technician at the cabinet sees on tty1 or the serial line.

Plain ASCII, at most 80 columns and 25 lines, so it reads on a VGA text console
and a 9600-baud serial line alike. No login is needed to read it, so nothing on
it grants access: it is drawn from the status document (which carries no
secrets) and from NIC addresses read locally, and it still shows those when the
agent is unreachable. ``agentctl status --watch`` draws the same screen.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.cli.status_view import duration
from agent.cli.transport import get_status
from agent.paths import Paths

WIDTH, HEIGHT = 80, 25
CLEAR = "\033[H\033[2J"  # home + clear: VT100, understood by the Linux console and serial terminals


@dataclass(frozen=True)
class Nic:
    name: str
    up: bool
    speed_mbps: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class LocalFacts:
    """What the screen reads on the box itself, without the agent."""

    hostname: str
    node_id: str
    nics: tuple[Nic, ...] = field(default_factory=tuple)


def read_local(paths: Paths) -> LocalFacts:
    import psutil

    stats = psutil.net_if_stats()
    nics = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        if name == "lo":
            continue
        st = stats.get(name)
        ips = tuple(
            f"{a.address.split('%')[0]}/{_prefix(a.netmask)}" if a.netmask else a.address.split("%")[0]
            for a in addrs
            if a.family in (socket.AF_INET, socket.AF_INET6)
        )
        nics.append(Nic(name, bool(st and st.isup), int(st.speed) if st else 0, ips))
    node_id = ""
    try:
        meta = json.loads((paths.identity_dir / "identity.json").read_text())
        node_id = str(meta.get("node_id", "")) if isinstance(meta, dict) else ""
    except (OSError, ValueError):
        pass
    return LocalFacts(socket.gethostname(), node_id, tuple(nics))


def _prefix(netmask: str) -> int:
    import ipaddress

    try:
        return ipaddress.ip_network(f"0.0.0.0/{netmask}").prefixlen if "." in netmask else bin(
            int(ipaddress.IPv6Address(netmask))).count("1")  # fmt: skip
    except ValueError:
        return 0


def fleet_state(doc: dict[str, Any]) -> str:
    """enrolled / pending approval / no seed / registrar unreachable, and why."""
    conds = {c.get("type"): c for c in doc.get("conditions", [])}
    enrolled = conds.get("Enrolled", {})
    reason, msg = str(enrolled.get("reason", "")), str(enrolled.get("message", ""))
    fleet = doc.get("sections", {}).get("fleet", {})
    if enrolled.get("status") == "True":
        state = "enrolled"
        if isinstance(fleet, dict) and fleet.get("cluster"):
            state += f", cluster {fleet['cluster']} ({fleet.get('distribution', '?')}) as {fleet.get('role', '?')}"
        return state + (f"; registrar unreachable: {msg}" if reason == "RegistrarUnreachable" else "")
    if reason == "PendingApproval" or conds.get("PendingApproval", {}).get("status") == "True":
        return "pending approval on the registrar"
    if reason == "NotConfigured":
        return "no seed (no fleet.url in the config or seed)"
    if reason == "RegistrarUnreachable":
        return f"registrar unreachable: {msg}"
    if not enrolled:
        return "unknown (the agent has not reported yet)"
    return f"not enrolled: {reason}: {msg}"


def kube_state(doc: dict[str, Any]) -> str:
    k = doc.get("sections", {}).get("kubernetes")
    if not isinstance(k, dict) or k.get("distribution", "none") == "none":
        return "none configured or assigned"
    ready = "Ready" if k.get("ready") else f"not Ready ({k.get('ready_reason') or '?'})"
    unit = f"{k.get('unit') or '?'} {k.get('active_state') or '?'}"
    node = k.get("node_name") or "?"
    return f"{k['distribution']} {k.get('version', '')} {k.get('role', '')}, {unit}, node {node} {ready}"


def node_address(doc: dict[str, Any]) -> str:
    sections = doc.get("sections", {})
    for name in ("network", "kubernetes"):
        s = sections.get(name)
        if isinstance(s, dict):
            for key in ("node_ip", "node_address", "node_ips"):
                v = s.get(key)
                if v:
                    return ", ".join(v) if isinstance(v, list) else str(v)
    return "not chosen yet"


def labelled(label: str, text: str, most: int = 2) -> list[str]:
    """``label`` and ``text`` wrapped onto at most ``most`` lines (the why of a failure matters)."""
    import textwrap

    parts = textwrap.wrap(_ascii_text(text), WIDTH - 11, break_on_hyphens=False)[:most] or ["-"]
    return [f"{label if n == 0 else '':<10} {part}" for n, part in enumerate(parts)]


def _ascii_text(text: str) -> str:
    return text.encode("ascii", "replace").decode()


def _ascii(line: str) -> str:
    return _ascii_text(line).replace("\t", " ")[:WIDTH].rstrip()


def render_screen(doc: dict[str, Any] | None, why_down: str, local: LocalFacts, now: float, interval: float) -> str:
    """The whole screen as text: ASCII, no line over 80 columns, at most 25 lines."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now))
    head = f"EDGE BOX {local.hostname}"[: WIDTH - len(stamp) - 1]
    lines = [head + " " * (WIDTH - len(head) - len(stamp)) + stamp]
    fleet = (doc or {}).get("sections", {}).get("fleet", {})
    node_id = (fleet.get("node_id") if isinstance(fleet, dict) else "") or local.node_id or "-"
    lines.append(f"node id    {node_id}")
    if doc is None:
        lines += labelled("agent", f"UNREACHABLE: {why_down}")
        lines += ["fleet      unknown (agent unreachable)",
                  "kubernetes unknown (agent unreachable)", "upgrade    unknown (agent unreachable)",
                  "node ip    unknown (agent unreachable)"]  # fmt: skip
    else:
        agent = doc.get("agent", {})
        upgrade = doc.get("sections", {}).get("upgrade", {})
        up = duration(agent.get("uptime_seconds", 0))
        lines += [
            f"agent      {agent.get('version', '?')} {doc.get('health', '?')}, up {up}",
            *labelled("fleet", fleet_state(doc)),
            f"kubernetes {kube_state(doc)}",
            f"upgrade    {upgrade.get('summary', '-') if isinstance(upgrade, dict) else '-'}",
            f"node ip    {node_address(doc)}",
        ]
    lines.append("network")
    for nic in local.nics[:6]:
        link = f"up {nic.speed_mbps}Mb/s" if nic.up and nic.speed_mbps else ("up" if nic.up else "DOWN")
        lines.append(f"  {nic.name:<12} {link:<12} {' '.join(nic.addresses) or 'no address'}")
    if len(local.nics) > 6:
        lines.append(f"  ... and {len(local.nics) - 6} more interfaces")
    if not local.nics:
        lines.append("  no network interfaces found")
    footer = f"read-only screen: no login, no secrets. refresh {interval:g}s. agentctl doctor"
    degraded = [c for c in (doc or {}).get("conditions", []) if c.get("status") != "True"
                and c.get("severity") != "info"]  # fmt: skip
    if doc is not None:
        room = HEIGHT - len(lines) - 2
        lines.append("degraded" if degraded else "degraded   none: all conditions hold")
        shown = degraded if len(degraded) <= room else degraded[: max(room - 1, 0)]
        for c in shown:
            lines.append(f"  !! {c.get('type')} {c.get('status')}/{c.get('reason')}: {c.get('message', '')}")
        if len(shown) < len(degraded):
            lines.append(f"  ... and {len(degraded) - len(shown)} more (agentctl status)")
    lines = [_ascii(line) for line in lines][: HEIGHT - 1]
    return "\n".join([*lines, _ascii(footer)]) + "\n"


def watch(sock: str, root: str | None, tty: str | None, interval: float, timeout: float, *, once: bool) -> int:
    """Redraw the screen every ``interval`` seconds on ``tty`` (or stdout) until interrupted."""
    paths = Paths(Path(root or "/"))
    fd = os.open(tty, os.O_WRONLY | os.O_NOCTTY) if tty else sys.stdout.fileno()
    try:
        while True:
            doc, why = get_status(sock, timeout)
            screen = render_screen(doc, why, read_local(paths), time.time(), interval)
            os.write(fd, (CLEAR + screen.replace("\n", "\r\n")).encode("ascii"))
            if once:
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    finally:
        if tty:
            os.close(fd)
