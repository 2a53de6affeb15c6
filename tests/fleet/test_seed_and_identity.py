"""First-boot seed adoption and cloned-image detection."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import NoMachineId
from agent.fleet import identity as ident
from agent.fleet.seed import adopt_seed
from agent.paths import Paths

from .harness import box_config, cond, make_box, wait_for

SEED = b"""[fleet]
url = "https://registrar.example:8443"
ca_pin = "sha256:%s"
bootstrap_token = "0123456789ab.SeedSecretTokenValue-xyz"
site = "berlin"
""" % (b"ab" * 32)


def test_seed_moves_off_the_boot_partition_and_config_still_sees_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    paths = Paths(tmp_path)
    paths.boot_seed.parent.mkdir(parents=True)
    paths.boot_seed.write_bytes(SEED)
    note = adopt_seed(paths)
    assert note is not None and "moved" in note
    assert not paths.boot_seed.exists()
    assert paths.kept_seed.read_bytes() == SEED
    assert stat.S_IMODE(paths.kept_seed.stat().st_mode) == 0o600
    assert "SeedSecret" not in note
    cfg = load_config(paths).config
    assert cfg.fleet.site == "berlin"
    assert cfg.fleet.bootstrap_token.get_secret_value().endswith("SeedSecretTokenValue-xyz")
    assert adopt_seed(paths) is None  # second boot: nothing to do


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_undeletable_boot_seed_loses_its_token(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    paths = Paths(tmp_path)
    paths.boot_seed.parent.mkdir(parents=True)
    paths.boot_seed.write_bytes(SEED)
    paths.boot_seed.parent.chmod(0o555)
    try:
        note = adopt_seed(paths)
    finally:
        paths.boot_seed.parent.chmod(0o755)
    assert note is not None and "holds the token" in note
    assert paths.kept_seed.read_bytes() == SEED


def test_systemd_credential_is_copied_once(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "edge-agent.seed").write_bytes(SEED)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    paths = Paths(tmp_path / "root")
    note = adopt_seed(paths)
    assert note is not None and "credential" in note
    assert tomllib.loads(paths.kept_seed.read_text())["fleet"]["site"] == "berlin"
    assert (creds / "edge-agent.seed").exists()
    assert adopt_seed(paths) is None


def test_invalid_seed_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    paths = Paths(tmp_path)
    paths.boot_seed.parent.mkdir(parents=True)
    paths.boot_seed.write_text("[fleet\nurl=")
    assert "not valid TOML" in (adopt_seed(paths) or "")
    assert paths.boot_seed.exists() and not paths.kept_seed.exists()


def test_identity_is_stable_and_keyed_to_the_machine(tmp_path):
    paths = Paths(tmp_path)
    (tmp_path / "etc").mkdir()
    paths.machine_id.write_text("5" * 32 + "\n")
    dmi = paths.under(ident.DMI_SERIAL)
    dmi.parent.mkdir(parents=True)
    dmi.write_text("SN-4711\n")
    first = ident.load_or_create(paths)
    again = ident.load_or_create(paths)
    assert first.node_id == again.node_id and first.node_id != "5" * 32  # the machine id itself stays on the box
    assert again.key.private_numbers() == first.key.private_numbers()
    assert again.dmi_serial == "SN-4711" and not again.replaced


def test_no_machine_id_means_wait(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text("")
    with pytest.raises(NoMachineId):
        ident.load_or_create(Paths(tmp_path))


async def test_cloned_image_does_not_impersonate_the_original(registrar, run_controller, tmp_path: Path):
    token = registrar.token(uses=1)
    root = tmp_path / "box"
    ctx = make_box(root, box_config(registrar.url, registrar.pin, token), "7" * 32)
    task = run_controller(ctx)
    await wait_for(lambda: ctx.assignment.value is not None, what="original enrolled")
    original = registrar.reg.registry.list_nodes()[0].node_id
    task.cancel()

    # the disk is copied into another machine: same files, new machine-id
    clone = make_box(root, box_config(registrar.url, registrar.pin, token), "8" * 32)
    run_controller(clone)
    await wait_for(lambda: cond(clone, "Enrolled") == ("False", "Denied"), what="clone refused")
    reset = clone.board.condition("IdentityReset")
    assert reset is not None and reset.reason == "ClonedImage" and original in reset.message
    assert clone.assignment.value is None  # the original's assignment is not carried over
    fresh = ident.load_or_create(clone.paths)
    assert fresh.node_id != original
    assert list(root.glob("var/lib/edge-agent/identity.other-machine-*"))
    assert [n.node_id for n in registrar.reg.registry.list_nodes()] == [original]
