"""Human rendering of upgrade documents (standard library only).

``render_upgrade`` takes what GET /v1/upgrades/{id} or GET /v1/upgrades returns.
On a TTY an upgrade in progress is one line with a progress bar (agentctl
redraws it with ``\\r``); otherwise plain lines a log or a script can read.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy still reads the block below
if TYPE_CHECKING:
    from typing import Any

BAR = 24
FINAL = ("committed", "rolled-back", "failed")


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def progress_text(progress: Any, bar: bool) -> str:
    done = int((progress or {}).get("bytes") or 0)
    total = (progress or {}).get("total")
    if not total:
        return size(done)
    frac = min(1.0, done / total)
    text = f"{size(done)}/{size(total)} {frac * 100:3.0f}%"
    if bar:
        filled = int(frac * BAR)
        text = "[" + "#" * filled + "-" * (BAR - filled) + "] " + text
    return text


def what(doc: dict[str, Any]) -> str:
    if doc.get("kind"):
        return f"{doc['kind']} {doc.get('version', '')}".strip()
    return str(doc.get("source", ""))


def render_one(doc: dict[str, Any], tty: bool) -> str:
    state = str(doc.get("state", "?"))
    if tty and state not in FINAL:
        # one line, redrawn in place by ``agentctl upgrade --wait`` (\033[K clears what is left)
        if state in ("downloading", "verifying"):
            detail = progress_text(doc.get("progress"), bar=True)
        else:
            detail = str(doc.get("deferred") or doc.get("reason") or "")
        return f"{state:<11} {what(doc)}  {detail}".rstrip() + "\033[K\n"
    lines = [f"upgrade {doc.get('id', '?')}: {state}"]
    lines.append(f"  bundle:   {what(doc)}" + (f" (from {doc['source']})" if doc.get("kind") else ""))
    if doc.get("previous_version"):
        lines.append(f"  replaces: {doc['previous_version']}")
    if state in ("downloading", "verifying"):
        lines.append(f"  progress: {progress_text(doc.get('progress'), bar=False)}")
    if doc.get("deferred"):
        again = float(doc.get("recheck_s") or 0)
        lines.append(f"  waiting:  {doc['deferred']}" + (f"; looks again every {again:g}s" if again > 0 else ""))
    if doc.get("reason"):
        label = "reason:  " if state in ("failed", "rolled-back") else "detail:  "
        lines.append(f"  {label} {doc['reason']}")
    return "\n".join(lines) + "\n"


def render_list(doc: dict[str, Any]) -> str:
    items = doc.get("items") or []
    if not items:
        return "no upgrades yet\n"
    rows = []
    for it in items:
        reason = it.get("deferred") or it.get("reason") or ""
        rows.append(f"{it.get('id', '?'):<13} {it.get('state', '?'):<12} {what(it):<28} {reason}".rstrip())
    return "\n".join(rows) + "\n"


def render_upgrade(doc: dict[str, Any], tty: bool) -> str:
    if "items" in doc:
        return render_list(doc)
    return render_one(doc, tty)
