"""SIGKILL of the agent at each install step converges on the next start, with nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.planner import plan_kube
from agent.runtime.render import Facts, render

from .boxes import Box

DRIVE = Path(__file__).with_name("drive.py")


def drive(box: Box, config: dict[str, object], kill: str = "") -> int:
    env = {**os.environ, "PATH": box.path, **box.env}
    if kill:
        env["EDGE_STANDIN_KILL_CALLER"] = kill
    argv = [sys.executable, str(DRIVE), str(box.root), str(box.cluster), box.name, box.address, json.dumps(config)]
    return subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode


@pytest.mark.slow
@pytest.mark.parametrize(
    ("distribution", "kill", "upgrade"),
    [
        ("k3s", "k3s:--version", False),  # binary staged, not yet renamed into place
        ("k3s", "systemctl:daemon-reload", False),  # files written, units not reloaded
        ("k3s", "systemctl:enable", False),
        ("k3s", "systemctl:start", False),
        ("k3s", "k3s:--version", True),
        ("k3s", "systemctl:daemon-reload", True),
        ("k3s", "systemctl:restart", True),
        ("k0s", "k0s:version", False),
        ("k0s", "k0s:install", False),
        ("k0s", "k0s:start", False),
        ("k0s", "k0s:stop", True),
        ("k0s", "k0s:install", True),
        ("k0s", "k0s:start", True),
    ],
)
async def test_sigkill_at_each_step_converges(
    make_box: Callable[..., Box], distribution: str, kill: str, upgrade: bool
) -> None:
    box = make_box("n1")
    config: dict[str, object] = {"distribution": distribution, "node_labels": {"site": "a"}}
    if upgrade:  # an older release is installed and running; a new one arrives with new labels
        box.bundle(distribution, "v1.32.9+k3s1" if distribution == "k3s" else "v1.35.9+k0s.1")
        assert drive(box, config) == 0
        config["node_labels"] = {"site": "b"}
    box.bundle(distribution)

    assert drive(box, config, kill=kill) == -9, "the stand-in did not kill the agent at that step"
    assert drive(box, config) == 0  # the next start

    box.ctx.store.load()
    box.set_config(**config)  # type: ignore[arg-type]
    ctl = box.controller()
    await box.converge(ctl)
    assert not [p for p in box.root.rglob("*.tmp-*")], "a temp file survived"
    desired = plan_kube(box.ctx.config.value, None, {})
    assert desired is not None
    expected = render(desired, Facts("n1"))
    for f in expected.files:
        assert (box.root / f.path.lstrip("/")).read_bytes() == f.data, f.path
    want = "v1.33.1+k3s1" if distribution == "k3s" else "v1.36.3+k0s.1"
    assert box.section()["version"] == want
    n = len(box.calls())
    await ctl.reconcile()
    assert not [c for c in box.calls()[n:] if c["argv"][:1] in (["start"], ["restart"], ["install"])]
