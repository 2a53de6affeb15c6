"""The membership wire stays what the previous release spoke: today's agent enrolls, reports join
tokens and joins through a registrar of commit 493f688, and an agentd of that commit enrolls with
today's registrar. The old code is the real tree of that commit (``git archive``), run as programs."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.model.fleet import JoinTokens
from tests.conftest import REPO, unix_get
from tests.fleet.harness import RegistrarHandle, box_config, cond, free_port, make_box, wait_for

PREVIOUS = "493f688"
K10 = "K10" + "cd" * 32 + "::server:oldwireserver"
K10_AGENT = "K10" + "cd" * 32 + "::node:oldwireagent"


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent package of the previous release, as its commit holds it."""
    if shutil.which("git") is None:
        pytest.fail("git is needed to check out the previous release's code")
    tar = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS, "agent"], capture_output=True, check=True)
    dest = tmp_path_factory.mktemp("previous")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(dest, filter="data")
    return dest


def old(module: str, *argv: str) -> list[str]:
    """argv running ``module`` of the previous release: run with ``cwd`` its tree, which ``-m`` puts
    first on sys.path (before this checkout's editable install)."""
    return [sys.executable, "-m", module, *argv]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture
async def old_registrar(previous: Path, tmp_path: Path) -> AsyncIterator[tuple[str, str, Path]]:
    state = tmp_path / "old-registrar"

    def cli(*args: str) -> str:
        r = subprocess.run(
            old("agent.registrar", "--state-dir", str(state), *args),
            capture_output=True, text=True, cwd=previous, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    pin = cli("init")
    port = free_port()
    log = (tmp_path / "old-registrar.log").open("wb")
    proc = subprocess.Popen(
        old("agent.registrar", "--state-dir", str(state), "serve", "--listen", f"127.0.0.1:{port}"),
        cwd=previous, stderr=log,
    )  # fmt: skip
    await wait_for(lambda: listening(port) or proc.poll() is not None, timeout=20, what="the old registrar")
    assert proc.poll() is None, (tmp_path / "old-registrar.log").read_text()
    state.joinpath("token").write_text(cli("token", "create", "--uses", "2", "--site", "lab"))
    try:
        yield f"https://127.0.0.1:{port}", pin, state
    finally:
        proc.terminate()
        proc.wait(10)


async def test_todays_agents_enroll_report_tokens_and_join_through_the_previous_registrar(
    old_registrar: tuple[str, str, Path], run_controller: Callable[..., asyncio.Task[None]], tmp_path: Path
) -> None:
    url, pin, state = old_registrar
    token = (state / "token").read_text().strip()
    first = make_box(tmp_path / "b1", box_config(url, pin, token), "1" * 32)
    run_controller(first)
    await wait_for(lambda: cond(first, "Assigned") == ("True", "Assigned"), timeout=20, what="first assignment")
    a = first.assignment.value
    assert a is not None and (a.role, a.cluster_init, a.cluster) == ("server", True, "lab")

    second = make_box(tmp_path / "b2", box_config(url, pin, token), "2" * 32)
    run_controller(second)
    await wait_for(lambda: cond(second, "Assigned") == ("False", "Waiting"), timeout=20, what="joiner waiting")
    first.join_tokens.set(JoinTokens(server=SecretStr(K10), agent=SecretStr(K10_AGENT)))  # a heartbeat carries them
    await wait_for(lambda: second.assignment.value is not None, timeout=20, what="joiner assignment")
    b = second.assignment.value
    assert b is not None and b.role == "agent" and b.join_token.get_secret_value() == K10_AGENT
    assert b.server_url.endswith(":6443")


async def test_an_agentd_of_the_previous_release_enrolls_with_todays_registrar(
    previous: Path, registrar: RegistrarHandle, tmp_path: Path
) -> None:
    root = tmp_path / "box"
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "etc/machine-id").write_text("9" * 32 + "\n")
    (root / "etc/edge-agent/agent.toml").write_text(
        f'[api]\nremote_listen = ""\n\n[fleet]\nurl = "{registrar.url}"\nca_pin = "{registrar.pin}"\n'
        f'bootstrap_token = "{registrar.token()}"\nsite = "lab"\nretry_max = 0.5\nheartbeat_interval = 0.2\n'
    )
    log = (tmp_path / "old-agentd.log").open("wb")
    proc = subprocess.Popen(
        old("agent.daemon", "run", "--root", str(root), "--log-format", "text"),
        cwd=previous, stderr=log,
    )  # fmt: skip
    sock = root / "run/edge-agent/agent.sock"

    def assigned() -> bool:
        try:
            status, _, body = unix_get(sock, "/v1/status", timeout=1)
        except OSError:
            return False
        conds = {c["type"]: c["status"] for c in json.loads(body)["conditions"]} if status == 200 else {}
        return conds.get("Assigned") == "True"

    try:
        await wait_for(lambda: asyncio.to_thread(assigned), timeout=30, what="the old agentd's assignment",
                       explain=lambda: (tmp_path / "old-agentd.log").read_text()[-2000:])  # fmt: skip
        node = registrar.reg.registry.list_nodes()[0]
        assert (node.role, node.cluster) == ("server", "lab")

        def heartbeat_status() -> object:
            seen = registrar.reg.registry.get_node(node.node_id)
            return seen is not None and seen.status.get("sections")

        await wait_for(heartbeat_status, timeout=10, what="a heartbeat with the old agent's status")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
