from __future__ import annotations

import subprocess
import sys

from agent.cli.upgrade_view import render_upgrade

DOC = {
    "id": "abc",
    "state": "downloading",
    "kind": "",
    "source": "https://rel.example/agent-0.2.0.tar",
    "progress": {"bytes": 3 << 20, "total": 12 << 20},
    "reason": "",
    "deferred": "",
}


def test_tty_shows_a_progress_bar_on_one_line() -> None:
    out = render_upgrade(DOC, tty=True)
    assert out.count("\n") == 1
    assert "[######------------------] 3.0 MiB/12.0 MiB  25%" in out
    waiting = render_upgrade({**DOC, "state": "staged", "deferred": "update lock held"}, tty=True)
    assert waiting.count("\n") == 1 and "update lock held" in waiting


def test_plain_output_is_lines_with_progress_reason_and_deferral() -> None:
    out = render_upgrade(DOC, tty=False)
    assert out.splitlines()[0] == "upgrade abc: downloading"
    assert "progress: 3.0 MiB/12.0 MiB  25%" in out and "[" not in out
    failed = {**DOC, "state": "rolled-back", "kind": "agent", "version": "0.2.0", "reason": "crashed 3 times"}
    assert "reason:   crashed 3 times" in render_upgrade(failed, tty=True)
    waiting = {**DOC, "state": "staged", "deferred": "outside the maintenance window 02:00-04:00 UTC"}
    assert "waiting:  outside the maintenance window" in render_upgrade(waiting, tty=False)
    locked = {**waiting, "deferred": "update lock /run/edge-agent/update.lock is held by a workload", "recheck_s": 1.0}
    assert "waiting:  update lock /run/edge-agent/update.lock is held by a workload; looks again every 1s" in (
        render_upgrade(locked, tty=False)
    )


def test_list_view() -> None:
    listing = {"items": [{**DOC, "state": "failed", "reason": "bad signature"}], "active": None}
    assert render_upgrade(listing, tty=False).startswith("abc           failed")
    assert render_upgrade({"items": []}, tty=False) == "no upgrades yet\n"


def test_view_imports_only_the_standard_library() -> None:
    code = (
        "import sys; import agent.cli.upgrade_view; "
        "bad = [m for m in sys.modules if m.split('.')[0] in {'pydantic', 'aiohttp', 'cryptography'}]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
