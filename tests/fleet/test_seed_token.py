"""The bootstrap token in the kept seed: there until the registrar issues a certificate, then gone
(the rest of the seed kept); a credential seen again on an enrolled box is kept without it."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from agent.config import load_config
from agent.fleet.seed import adopt_seed

from .harness import RegistrarHandle, box_config, cond, make_box, wait_for


def seed_text(registrar: RegistrarHandle, token: str) -> str:
    return (
        f'[fleet]\nurl = "{registrar.url}"\nca_pin = "{registrar.pin}"\nbootstrap_token = "{token}"\n'
        'site = "berlin"\n[fleet.labels]\nrack = "r7"\n'
    )


async def test_enrollment_removes_the_token_from_the_kept_seed_and_keeps_the_rest(
    registrar: RegistrarHandle, run_controller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    token = registrar.token()
    ctx = make_box(tmp_path / "b", box_config(registrar.url, registrar.pin, token), "d" * 32)
    ctx.paths.boot_seed.parent.mkdir(parents=True)
    ctx.paths.boot_seed.write_text(seed_text(registrar, token))
    adopt_seed(ctx.paths)
    assert token in ctx.paths.kept_seed.read_text()

    run_controller(ctx)
    await wait_for(lambda: cond(ctx, "Enrolled") == ("True", "Enrolled"), what="enrolled")
    kept = ctx.paths.kept_seed
    assert token not in kept.read_text()
    assert tomllib.loads(kept.read_text())["fleet"] == {
        "url": registrar.url,
        "ca_pin": registrar.pin,
        "site": "berlin",
        "labels": {"rack": "r7"},
    }
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    # the seed comes back as a systemd credential on the next boot: the kept copy stays without the token,
    # while the credential itself (systemd's, read-only) still gives it to the config for a re-enrollment
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "edge-agent.seed").write_text(seed_text(registrar, token))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    adopt_seed(ctx.paths)
    assert token not in kept.read_text() and "berlin" in kept.read_text()
    assert load_config(ctx.paths).config.fleet.bootstrap_token.get_secret_value() == token
    assert adopt_seed(ctx.paths) is None  # nothing changes on the boot after
