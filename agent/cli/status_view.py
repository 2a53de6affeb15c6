"""Human rendering of the status document (standard library only)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy still reads the block below
if TYPE_CHECKING:
    from typing import Any

GREEN, RED, YELLOW, DIM, BOLD, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"


def duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] if d else []
    parts += [f"{h}h"] if h or d else []
    parts += [f"{m}m"] if m or h or d else []
    return "".join([*parts, f"{s}s"])


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(_scalar(x) for x in v) if v else "-"
    return "-" if v in (None, "") else str(v)


def section_line(name: str, data: Any) -> str:
    """One line per status section: its 'summary' if it has one, else its scalar fields."""
    if isinstance(data, dict):
        summary = data.get("summary")
        if isinstance(summary, str):
            return summary
        fields = [f"{k}={_scalar(v)}" for k, v in data.items() if not isinstance(v, dict)]
        return " ".join(fields[:8])
    return _scalar(data)


def health_lines(data: Any, c: Any) -> list[str]:
    """One line per hardware health problem (worn NVMe, ECC errors, flapping link...)."""
    problems = data.get("problems", []) if isinstance(data, dict) else []
    return [
        f"  {'':<10} {c(YELLOW, '?') if p.get('unknown') else c(RED, '!')} {p.get('reason')}: {p.get('message')}"
        for p in problems
        if isinstance(p, dict)
    ]


def kube_lines(data: Any) -> list[str]:
    """The planner's decisions for the node, with their reasons: GPU runtime, node name, labels."""
    if not isinstance(data, dict) or data.get("distribution", "none") == "none":
        return []
    out = []
    if data.get("gpu_runtime"):
        wired = "wired into containerd" if data.get("gpu_configured") else "not yet picked up"
        out.append(f"  {'':<10} gpu runtime {data['gpu_runtime']} {wired}")
    elif data.get("gpu_reason"):
        out.append(f"  {'':<10} gpu runtime none: {data['gpu_reason']}")
    if data.get("node_name_source"):
        out.append(f"  {'':<10} node name {data.get('node_name')} from {data['node_name_source']}")
    labels = data.get("node_labels") or {}
    if labels:
        ours = sorted(f"{k}={v}" for k, v in labels.items() if k.startswith("edge-agent.io/"))
        out.append(f"  {'':<10} {len(labels)} node labels planned: {', '.join(ours) or '-'}")
    return out


def storage_lines(data: Any, c: Any) -> list[str]:
    """One line per NVMe namespace: prepared / skipped (why) / failed (why), capacity and free space."""
    namespaces = data.get("namespaces", []) if isinstance(data, dict) else []
    out = []
    for ns in namespaces:
        if not isinstance(ns, dict):
            continue
        state = ns.get("state", "?")
        mark = c(GREEN, state) if state == "prepared" else c(RED, state) if state == "failed" else state
        size = f" {ns['capacity_bytes'] // 10**9} GB" if isinstance(ns.get("capacity_bytes"), int) else ""
        free = f", {ns['free_bytes'] // 10**9} GB free" if isinstance(ns.get("free_bytes"), int) else ""
        out.append(f"  {'':<10} {ns.get('device', '?')} {mark}{size}{free}: {ns.get('reason', '')}".rstrip(": "))
    return out


def render_status(doc: dict[str, Any], color: bool) -> str:
    def c(code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if color else text

    agent = doc.get("agent", {})
    health = doc.get("health", "unknown")
    mark = c(GREEN, "healthy") if health == "healthy" else c(RED, health)
    out = [
        f"{c(BOLD, 'edge-agent')} {agent.get('version', '?')}  {mark}  "
        f"up {duration(agent.get('uptime_seconds', 0))}  pid {agent.get('pid', '?')}",
        f"  {'config':<10} {agent.get('config_digest', '-')} from {len(agent.get('config_sources', []))} file(s)",
    ]
    for name, data in sorted(doc.get("sections", {}).items()):
        out.append(f"  {name:<10} {section_line(name, data)}")
        if name == "health":
            out += health_lines(data, c)
        if name == "storage":
            out += storage_lines(data, c)
        if name == "kubernetes":
            out += kube_lines(data)
    conds = doc.get("conditions", [])
    if conds:
        out.append("conditions:")
        width = max(len(x.get("type", "")) for x in conds)
        for cond in conds:
            ok = cond.get("status") == "True"
            info = cond.get("severity") == "info"
            sym = (
                c(GREEN, "ok ")
                if ok
                else c(DIM if info else (YELLOW if cond.get("status") == "Unknown" else RED), "-- " if info else "!! ")
            )
            msg = f" {c(DIM, cond.get('message', ''))}" if cond.get("message") else ""
            out.append(f"  {sym}{cond.get('type', ''):<{width}} {cond.get('status')}/{cond.get('reason')}{msg}")
    return "\n".join(out) + "\n"
