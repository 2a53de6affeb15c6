"""The fleet overrides a site's network policy: `edge-registrar site-network set` stores it, every box of
the site gets it in its assignment, and the box's planner chooses by it (issue 12, per-site overrides).

Fleet tier: the real registrar on loopback and its real CLI, the real enrollment and runtime controllers,
the stand-in k3s. The box itself has no [network] policy at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.registrar.cli import main as registrar_main
from agent.watch import Watch

from .harness import RegistrarHandle, wait_for
from .test_agent_token import boxes, fleet_config, node_ready, runtimes
from .test_node_address import two_ports

__all__ = ["boxes", "runtimes"]  # fixtures, used by name

OVERRIDE = """\
[network]
selectors = [{ cidr = "10.9.3.0/24" }]
extra_sans = ["k3s.lab.example"]
"""


def cli(registrar: RegistrarHandle, *argv: str) -> int:
    return registrar_main(["--state-dir", str(registrar.state_dir), *argv])


def test_a_bad_override_file_is_refused_naming_the_key(registrar: RegistrarHandle, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[network]\nselectors = [{ cidr = "10.9.3.0/33" }]\n')
    assert cli(registrar, "site-network", "set", "lab", "--file", str(bad)) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "network.selectors.0.cidr" in err
    assert cli(registrar, "site-network", "list", "-o", "json") == 0
    assert '"sites": []' in capsys.readouterr().out


@pytest.mark.slow
async def test_boxes_of_the_site_choose_their_address_by_the_fleet_override(
    registrar: RegistrarHandle, run_controller, boxes, runtimes, tmp_path: Path
) -> None:
    override = tmp_path / "lab.toml"
    override.write_text(OVERRIDE)
    assert cli(registrar, "site-network", "set", "lab", "--file", str(override)) == 0
    token = registrar.token(uses=1, site="lab")
    server = boxes("srv", "10.9.3.5")
    server.ctx.inventory.set(two_ports("10.9.1.4", "10.9.3.5"))
    server.ctx.config = Watch(fleet_config(registrar, token, "srv", "10.9.3.5"))
    run_controller(server.ctx)
    runtimes(server)
    await wait_for(lambda: node_ready(server), timeout=30, what="server Ready",
                   explain=lambda: server.ctx.board.conditions())  # fmt: skip
    assignment = server.ctx.assignment.value
    assert assignment is not None and assignment.network is not None
    config = yaml.safe_load((server.root / "etc/rancher/k3s/config.yaml").read_text())
    assert config["node-ip"] == ["10.9.3.5"] and "k3s.lab.example" in config["tls-san"]
    section = server.ctx.board.sections()["network"]
    assert (
        section["chosen"]["rule"].startswith("assignment.network.selectors.0")
        and section["chosen"]["source"] == "fleet"
    )
