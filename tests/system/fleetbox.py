"""Fleet boxes: test-image containers wired to the host registrar and to a shared stand-in "network".

The stand-in k3s/k0s of the test image find each other through a directory
(EDGE_STANDIN_CLUSTER) that every box of a test bind-mounts; each box tells its
stand-ins its address through the system manager's environment, the way a real
k3s server is reached at its node address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostfleet import REGISTRAR_NET
from nspawn import Container
from probes import condition, status, status_text, wait_for

STANDIN_CLUSTER = "/var/lib/edge-standin/cluster"
READY_TIMEOUT = 120.0
TARGET_SECONDS = 15.0


def wire(box: Container, cluster_dir: Path) -> None:
    cluster_dir.mkdir(parents=True, exist_ok=True)
    box.nspawn_args.append(f"--bind={cluster_dir}:{STANDIN_CLUSTER}")
    conf = box.root / "etc/systemd/system.conf.d/50-standin.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "# test box only: where the stand-in k3s/k0s say their API server is, and their shared 'network'\n"
        f"[Manager]\nDefaultEnvironment=EDGE_STANDIN_ADDRESS={box.link.box} EDGE_STANDIN_CLUSTER={STANDIN_CLUSTER}\n"
    )


def seed_on_boot_partition(box: Container, seed: str) -> None:
    path = box.root / "boot/edge-agent.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(seed)
    path.chmod(0o600)


def seed_as_credential(box: Container, seed: str, workdir: Path) -> None:
    path = workdir / f"{box.name}.seed.toml"
    path.write_text(seed)
    path.chmod(0o600)
    box.nspawn_args.append(f"--load-credential=edge-agent.seed:{path}")


def fleet_routes() -> tuple[str, ...]:
    return (REGISTRAR_NET,)


def enrolled_and_ready(doc: dict[str, Any] | None) -> bool:
    enrolled, ready = condition(doc, "Enrolled"), condition(doc, "NodeReady")
    return bool(enrolled and enrolled["status"] == "True" and ready and ready["status"] == "True")


def wait_enrolled_and_ready(
    box: Container, timeout: float = READY_TIMEOUT, *, since: float | None = None, what: str = "container start"
) -> tuple[dict[str, Any], float]:
    """Poll agentctl until Enrolled and NodeReady are True; seconds since ``since`` (the container start)."""

    def probe() -> dict[str, Any] | None:
        doc = status(box)
        return doc if enrolled_and_ready(doc) else None

    box.wait_booted(timeout)
    doc = wait_for(f"{box.name} enrolled and ready", probe, timeout, interval=0.2, describe=lambda: status_text(box))
    took = time.monotonic() - (box.started_at if since is None else since)
    flag = "" if took <= TARGET_SECONDS or since is not None else f"  (over the {TARGET_SECONDS:.0f}s target)"
    print(f"\n[timing] {box.name}: {what} -> enrolled and ready in {took:.1f}s{flag}")
    return doc, took


def wait_condition(
    box: Container, type_: str, accept: Callable[[dict[str, Any]], bool], timeout: float = 45.0
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        c = condition(status(box), type_)
        return c if c is not None and accept(c) else None

    return wait_for(f"{box.name}: condition {type_}", probe, timeout)
