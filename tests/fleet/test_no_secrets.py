"""No secret — private keys, bootstrap or join tokens — in logs, API output, CLI output or error messages."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from agent.model.fleet import JoinTokens
from agent.registrar import views
from agent.registrar.ca import CertificateAuthority

from .harness import box_config, cond, make_box, wait_for

K10_SERVER = "K10" + "cd" * 32 + "::server:TopSecretServerJoinPassword"
K10_AGENT = "K10" + "cd" * 32 + "::node:TopSecretAgentJoinPassword"


def secret_fragments(token: str) -> list[str]:
    return [token, token.split(".", 1)[-1]]


def key_fragments(pem_path: Path) -> list[str]:
    """Lines of base64 in a PEM private key (any one of them leaking is a leak)."""
    return [ln for ln in pem_path.read_text().splitlines() if ln and not ln.startswith("-----")]


async def test_secrets_never_show(registrar, run_controller, tmp_path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    token = registrar.token(uses=2)
    pending_token = registrar.token(require_approval=True)

    first = make_box(tmp_path / "b1", box_config(registrar.url, registrar.pin, token), "1" * 32)
    second = make_box(tmp_path / "b2", box_config(registrar.url, registrar.pin, token), "2" * 32)
    waiting = make_box(tmp_path / "b3", box_config(registrar.url, registrar.pin, pending_token), "3" * 32)
    wrong_pin = CertificateAuthority.create("impostor").pin
    impostor = make_box(tmp_path / "b4", box_config(registrar.url, wrong_pin, registrar.token()), "4" * 32)
    bad_token = token.split(".")[0] + "." + "Z" * 43
    denied = make_box(tmp_path / "b5", box_config(registrar.url, registrar.pin, bad_token), "5" * 32)
    for ctx in (first, second, waiting, impostor, denied):
        run_controller(ctx)
    await wait_for(lambda: first.assignment.value is not None)
    first.join_tokens.set(JoinTokens(server=SecretStr(K10_SERVER), agent=SecretStr(K10_AGENT)))
    await wait_for(lambda: second.assignment.value is not None)
    assert second.assignment.value.join_token.get_secret_value() == K10_AGENT  # it did travel, to a member
    await wait_for(lambda: cond(waiting, "PendingApproval") == ("True", "AwaitingApproval"))
    await wait_for(lambda: cond(impostor, "Enrolled") == ("False", "PinMismatch"))
    await wait_for(lambda: cond(denied, "Enrolled") == ("False", "Denied"))
    await asyncio.sleep(0.3)  # a few heartbeats, with the tokens reported

    for ctx in (first, second, waiting, impostor, denied):
        outputs.append(json.dumps([c.model_dump(mode="json") for c in ctx.board.conditions()]))
        outputs.append(json.dumps(ctx.board.sections()))
        outputs.append(repr(ctx.assignment.value))

    # the registrar's error answers
    async with aiohttp.ClientSession() as s:
        basic = base64.b64encode(f"x:{bad_token}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/pkcs10"}
        url = f"{registrar.url}/.well-known/est/simpleenroll"
        async with s.post(url, ssl=False, data=b"AAAA", headers=headers) as r:
            outputs.append(await r.text())

    # registrar CLI renderings
    db = registrar.reg.registry
    for fmt in ("table", "json"):
        outputs.append(views.nodes(db.list_nodes(), fmt))
        outputs.append(views.tokens(db.list_tokens(), fmt))
        for n in db.list_nodes():
            outputs.append(views.node(n, fmt))

    # agentd check-config on a box seeded with a token
    seed_root = tmp_path / "seeded"
    (seed_root / "boot").mkdir(parents=True)
    (seed_root / "boot/edge-agent.toml").write_text(f'[fleet]\nurl = "{registrar.url}"\nbootstrap_token = "{token}"\n')
    check = subprocess.run([sys.executable, "-m", "agent.daemon", "check-config", "--root", str(seed_root)],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "bootstrap_token" in check.stdout, check.stdout + check.stderr  # it did show the config
    outputs.append(check.stdout + check.stderr)

    secrets = [*secret_fragments(token), *secret_fragments(pending_token), *secret_fragments(bad_token),
               K10_SERVER, K10_AGENT, "TopSecretServerJoinPassword", "TopSecretAgentJoinPassword",
               *key_fragments(registrar.state_dir / "ca.key")]  # fmt: skip
    for ctx in (first, second, waiting):
        secrets += key_fragments(ctx.paths.identity_dir / "key.pem")
    haystack = "\n".join([caplog.text, *outputs])
    assert caplog.text and "enrolled" in caplog.text  # the logs were captured
    leaked = [s[:12] + "…" for s in secrets if s in haystack]
    assert leaked == []
