"""A box whose hostname is an FQDN: the runtime and the upgrader name its node the same way, so a k3s
upgrade passes its node-Ready health gate and the skew check does not take the box for another server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.model.config import AgentSection, UpgradeSection
from agent.upgrade.installers import default_installers
from agent.upgrade.kube import KubeInstaller
from agent.upgrade.manager import UpgradeManager
from agent.upgrade.signing import public_key_base64
from agent.watch import Watch
from tests.runtime.boxes import Box, standin_binary
from tests.upgrade.fixtures import installed_version, k3s_bundle, replan, upgrade

FQDN = "Edge-7.Berlin.example.com"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box("edge-7", tmp_path / "edge-7", "10.0.0.7", tmp_path / "cluster", {})
    (b.root / "etc").mkdir(parents=True)
    (b.root / "etc/hostname").write_text(f"# set by the image builder\n{FQDN}\n")
    yield b
    b.stop_all()


def kubectl_nodes(box: Box) -> list[str]:
    out = box.run(str(box.root / "usr/local/bin/k3s"), "kubectl", "get", "nodes", "-o", "json").stdout
    return [item["metadata"]["name"] for item in json.loads(out)["items"]]


@pytest.mark.slow
async def test_k3s_upgrade_on_a_box_with_an_fqdn_hostname_commits(
    box: Box, tmp_path: Path, release_key: Ed25519PrivateKey
) -> None:
    box.bundle("k3s")
    box.set_config(distribution="k3s")
    upgrade_cfg = UpgradeSection(release_keys=[public_key_base64(release_key)], health_deadline=15)
    # no agent.node_name: the hostname decides
    box.ctx.config = Watch(
        box.ctx.config.value.model_copy(update={"agent": AgentSection(node_name=""), "upgrade": upgrade_cfg})
    )
    replan(box.ctx)
    await box.converge(box.controller())
    assert kubectl_nodes(box) == [FQDN.lower()]  # the whole name, lower-cased, as k3s itself would take it
    assert box.section()["node_name"] == FQDN.lower()

    # the box itself is not "another server" in the skew check
    assert await KubeInstaller(box.ctx, "k3s").server_versions() == []

    bundle = k3s_bundle(tmp_path, release_key, "v1.34.0+k3s1", standin_binary("v1.34.0+k3s1"))
    rec = await upgrade(UpgradeManager(box.ctx, installers=default_installers(box.ctx)), bundle)
    assert rec.state == "committed", rec.reason
    assert installed_version(box) == "v1.34.0+k3s1"
