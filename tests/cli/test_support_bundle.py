"""agentctl support-bundle on a box holding every kind of secret: none of them is in the bundle."""

from __future__ import annotations

import json
import stat
import subprocess
import tarfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from agent.registrar.ca import write_key
from tests.conftest import AgentProcess

from .conftest import agentctl

BOOT_TOKEN = "edgetok_boot.Zq8vX2mN4pL7wR1s"
CONFIG_BOOT_TOKEN = "edgetok_conf.Hh3kT9bY6cV0dF5g"
KUBE_TOKEN = "K10" + "cd" * 32 + "::server:kubeTokenPw8812"
K3S_CONFIG_TOKEN = "K10" + "ef" * 32 + "::server:cfgYamlPw5530"
K3S_AGENT_TOKEN = "K10" + "ef" * 32 + "::node:agentTokPw2291"
SERVER_TOKEN_FILE = "K10" + "12" * 32 + "::server:srvFilePw7741"
K0S_JOIN = "H4sIAAAAAAAC_k0sJoinTokenBase64Payload_9f8e7d6c"
ASSIGNED_JOIN = "K10" + "34" * 32 + "::server:assignedPw6604"
ENV_TOKEN = "K10" + "56" * 32 + "::server:envFilePw3318"
URL_PASSWORD = "urlPassw0rd4417"
URL_SIGNATURE = "a9f3c2e1d0b8presig"
SECRETS = [URL_PASSWORD, URL_SIGNATURE, BOOT_TOKEN, CONFIG_BOOT_TOKEN, KUBE_TOKEN, K3S_CONFIG_TOKEN, K3S_AGENT_TOKEN,
           SERVER_TOKEN_FILE, K0S_JOIN, ASSIGNED_JOIN, ENV_TOKEN]  # fmt: skip
PASSWORDS = [s.rpartition(":")[2] for s in SECRETS if "::" in s]


def write(root: Path, path: str, text: str, mode: int = 0o600) -> Path:
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)
    return p


def secret_box(root: Path) -> list[str]:
    """Every kind of secret a box holds; returns the private key's body lines."""
    write(
        root,
        "/boot/edge-agent.toml",
        f'[fleet]\nurl = "https://127.0.0.1:9"\nca_pin = "sha256:{"a" * 64}"\nbootstrap_token = "{BOOT_TOKEN}"\n',
    )
    write(
        root,
        "/etc/edge-agent/agent.toml",
        f'[fleet]\nbootstrap_token = "{CONFIG_BOOT_TOKEN}"\n\n[kubernetes]\ntoken = "{KUBE_TOKEN}"\n'
        f'binary_url = "https://dl:{URL_PASSWORD}@127.0.0.1:9/k3s?X-Amz-Signature={URL_SIGNATURE}"\n',
    )
    write(
        root,
        "/etc/rancher/k3s/config.yaml",
        f'token: "{K3S_CONFIG_TOKEN}"\nagent-token: {K3S_AGENT_TOKEN}\nnode-label:\n  - "a=b"\n',
    )
    write(root, "/var/lib/rancher/k3s/server/token", SERVER_TOKEN_FILE + "\n")
    write(root, "/var/lib/rancher/k3s/server/agent-token", K3S_AGENT_TOKEN + "\n")
    write(root, "/var/lib/rancher/k3s/server/node-token", SERVER_TOKEN_FILE + "\n")
    write(root, "/etc/k0s/join-token", K0S_JOIN + "\n")
    write(root, "/etc/systemd/system/k3s.service", "[Service]\nEnvironmentFile=-/etc/systemd/system/k3s.service.env\n"
          "ExecStart=/usr/local/bin/k3s server\n", 0o644)  # fmt: skip
    write(root, "/etc/systemd/system/k3s.service.env", f"K3S_TOKEN={ENV_TOKEN}\nK3S_KUBECONFIG_MODE=0600\n")
    state = {"schema": 1, "sections": {"fleet": {"node_id": "n1", "assignment": {
        "cluster": "lab", "join_token": ASSIGNED_JOIN, "token_ttl_seconds": 3600, "zone": "b"}}}}  # fmt: skip
    write(root, "/var/lib/edge-agent/state.json", json.dumps(state))
    ident = root / "var/lib/edge-agent/identity"
    ident.mkdir(parents=True, exist_ok=True)
    write_key(ident / "key.pem", ec.generate_private_key(ec.SECP256R1()))
    write(
        root,
        "/var/log/standin-journal/k3s.log",
        f'level=info msg="joining with token {K3S_CONFIG_TOKEN}"\nlevel=info msg="password {PASSWORDS[1]}"\n',
    )
    write(root, "/var/log/standin-journal/edge-agent.log", f"fleet: enrolling with token {BOOT_TOKEN}\nready\n")
    return [line for line in (ident / "key.pem").read_text().splitlines() if not line.startswith("-----")]


def extract(bundle: Path, into: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        tar.extractall(into, filter="data")
    return {str(p.relative_to(into)): p.read_bytes() for p in into.rglob("*") if p.is_file()}


async def test_bundle_holds_no_secret_of_any_kind(agent_root: Path, tmp_path: Path) -> None:
    key_lines = secret_box(agent_root)
    agent = AgentProcess(agent_root).start()
    try:
        out = tmp_path / "usb/bundle.tar.gz"
        out.parent.mkdir()
        r = await agentctl(agent_root, "support-bundle", "-f", str(out))
    finally:
        agent.stop()
    assert r.rc == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["bundle.tar.gz"]  # temp + rename: nothing left beside it
    listing = subprocess.run(["tar", "-tzf", str(out)], capture_output=True, text=True, check=True).stdout
    files = extract(out, tmp_path / "x")
    assert set(listing.split()) >= {f for f in files}
    for wanted in ("support/agent/status.json", "support/agent/inventory.json", "support/agent/conditions.json",
                   "support/journal/edge-agent.log", "support/journal/k3s.log", "support/versions.txt",
                   "support/files/etc/edge-agent/agent.toml", "support/files/etc/rancher/k3s/config.yaml",
                   "support/units/etc/systemd/system/k3s.service", "support/state/state.json"):  # fmt: skip
        assert wanted in files, sorted(files)
    everything = b"\n".join(files.values())
    for secret in [*SECRETS, *PASSWORDS, *key_lines]:
        assert secret.encode() not in everything, f"{secret} leaked"
    assert b"PRIVATE KEY" not in everything
    # redacted, not dropped: the technician still sees which keys are set
    assert b'token = "<redacted>"' in files["support/files/etc/edge-agent/agent.toml"]
    assert b"K3S_KUBECONFIG_MODE=0600" in files["support/units/etc/systemd/system/k3s.service.env"]
    assert json.loads(files["support/agent/status.json"])["agent"]["version"]
    for name in (n for n in files if n.endswith(".json")):  # redacted JSON is still JSON
        json.loads(files[name])
    state = json.loads(files["support/state/state.json"])["sections"]["fleet"]["assignment"]
    assert state["join_token"] == "<redacted>" and state["token_ttl_seconds"] == 3600 and state["zone"] == "b"


async def test_absent_journal_is_a_note_not_a_failure(agent_root: Path, tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    out = tmp_path / "b.tar.gz"
    r = await agentctl(agent_root, "support-bundle", "-f", str(out), env={"PATH": str(empty_bin)})
    assert r.rc == 0, r.stderr
    files = extract(out, tmp_path / "x")
    manifest = files["support/MANIFEST.txt"].decode()
    assert "journal of edge-agent: not collected" in manifest and "not found" in manifest.lower()
    assert "agent: /v1/status not collected" in manifest  # the daemon is down: said so, files still collected
    assert "support/versions.txt" in files


async def test_unwritable_target_fails_cleanly(agent_root: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "b.tar.gz").mkdir()  # a directory where the file should go: the rename fails
    r = await agentctl(agent_root, "support-bundle", "-f", str(ro / "b.tar.gz"))
    assert r.rc == 2 and "cannot write" in r.stderr
    assert sorted(p.name for p in ro.iterdir()) == ["b.tar.gz"] and (ro / "b.tar.gz").is_dir()
