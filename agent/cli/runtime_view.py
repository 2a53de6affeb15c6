"""Human rendering of the Kubernetes runtime part of /v1/status (standard library only)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy still reads the block below
if TYPE_CHECKING:
    from typing import Any

GREEN, RED, DIM, BOLD, RESET = "\033[32m", "\033[31m", "\033[2m", "\033[1m", "\033[0m"
CONDITIONS = ("Installed", "Configured", "Running", "NodeReady")


def render_runtime(doc: dict[str, Any], color: bool = False) -> str:
    """``doc`` is the /v1/status document; shows sections.kubernetes and its four conditions."""

    def c(code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if color else text

    k = doc.get("sections", {}).get("kubernetes") or {}
    if not k or k.get("distribution", "none") == "none":
        return "kubernetes: none configured or assigned\n"
    ready = c(GREEN, "Ready") if k.get("ready") else c(RED, "NotReady")
    out = [
        f"{c(BOLD, 'kubernetes')} {k.get('distribution')} {k.get('version') or '?'}  {k.get('role')}  "
        f"node {k.get('node_name') or '?'}  {ready}",
        f"  {'server':<10} {k.get('server_url') or '-'}",
        f"  {'unit':<10} {k.get('unit') or '-'} {k.get('active_state') or '-'} ({k.get('sub_state') or '-'})"
        f", {k.get('service_restarts', 0)} restart(s)",
    ]
    if k.get("cluster"):
        out.append(f"  {'cluster':<10} {k['cluster']} (from {k.get('origin')})")
    if k.get("gpu_runtime"):
        wired = "wired into containerd" if k.get("gpu_configured") else "not yet picked up"
        out.append(f"  {'gpu':<10} {k['gpu_runtime']} {wired}")
    elif k.get("gpu_reason"):
        out.append(f"  {'gpu':<10} no NVIDIA runtime: {k['gpu_reason']}")
    if k.get("install_source"):
        out.append(f"  {'binary':<10} {c(DIM, str(k.get('binary_sha256', ''))[:12])} from {k['install_source']}")
    by_type = {x.get("type"): x for x in doc.get("conditions", [])}
    for name in CONDITIONS:
        cond = by_type.get(name)
        if cond is None:
            continue
        ok = cond.get("status") == "True"
        mark = c(GREEN, "ok") if ok else c(RED, cond.get("status", "?"))
        line = f"  {name:<10} {mark:<5} {cond.get('reason', '')}"
        if not ok and cond.get("message"):
            line += f": {cond['message']}"
        out.append(line)
    return "\n".join(out) + "\n"
