"""`agentctl support-bundle`: one tar.gz a technician hands over on a USB stick when the box is offline.

Holds the status, inventory, conditions and upgrade history (from the agent
when it answers), the agent's and k3s/k0s's recent journal (journalctl through
the subprocess seam; no journal -> a note, not a failure), the config layers,
seeds and k3s/k0s config with every secret redacted, unit files, the public
identity files, and versions. Never the private key or a token file. Written
atomically (temp + rename) with mode 0600.
"""

from __future__ import annotations

import asyncio
import io
import json
import platform
import re
import socket
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from agent import __version__
from agent.cli.doctor.box import installed_units, shell_runner
from agent.cli.doctor.secrets import K3S_CONFIGS, REDACTED, SECRET_KEY, known_secrets, yaml_files
from agent.cli.transport import request
from agent.config import credential_seed, layer_files
from agent.errors import ExecError, Unreachable
from agent.fleet.identity import IdentityFiles
from agent.fsio import atomic_write
from agent.paths import Paths
from agent.runtime.diagnose import mask
from agent.runtime.layout import K0S, K3S
from agent.sysexec import Runner

JOURNAL_LINES = 2000
AGENT_UNITS = ("edge-agent", "edge-agent-console")
RUNTIME_CONFIGS = (*K3S_CONFIGS, K0S.config)
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
# `key = "value"` (TOML), `key: value` (YAML), `KEY=value` (env) where the key names a secret
_SECRET_LINE = re.compile(r"^(\s*[\"']?([A-Za-z0-9_.-]+)[\"']?\s*(?:=|:)\s*)(\S.*)$")


class Bundle:
    """The files of the bundle, every one passed through the redaction on the way in."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.files: dict[str, bytes] = {}
        self.notes: list[str] = []

    def add(self, name: str, text: str) -> None:
        """A text file: known secrets masked, secret-named keys' values masked (JSON stays valid JSON)."""
        clean = _redact_json(text) if name.endswith(".json") else None
        self.files[name] = (mask(clean, self.secrets) if clean is not None else redact(text, self.secrets)).encode()

    def note(self, line: str) -> None:
        self.notes.append(redact(line, self.secrets))

    def tar_gz(self, manifest: str) -> bytes:
        buf = io.BytesIO()
        now = time.time()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in [("MANIFEST.txt", redact(manifest, self.secrets).encode()), *sorted(self.files.items())]:
                info = tarfile.TarInfo(f"support/{name}")
                info.size, info.mtime, info.mode = len(data), int(now), 0o600
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()


def redact(text: str, secrets: list[str]) -> str:
    """Known secret values masked, secret-named keys' values masked, private key blocks dropped."""
    text = _PRIVATE_KEY.sub(f"{REDACTED} (private key)", mask(text, secrets))
    out = []
    for line in text.splitlines(keepends=True):
        m = _SECRET_LINE.match(line)
        if m and SECRET_KEY.search(m.group(2)) and REDACTED not in m.group(3):
            value = m.group(3).strip().strip("\"'")
            if value:  # an empty value is no secret; keeping it shows the key is unset
                line = f'{m.group(1)}"{REDACTED}"\n'
        out.append(line)
    return "".join(out)


def _inside(path: Path, paths: Paths) -> str:
    """Where ``path`` goes in the bundle: its path on the box (a credential may live outside the root)."""
    try:
        return str(path.relative_to(paths.root))
    except ValueError:
        return str(path).lstrip("/")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def add_agent(bundle: Bundle, sock: str, timeout: float) -> None:
    for url, name in (("/v1/status", "status.json"), ("/v1/inventory", "inventory.json"),
                      ("/v1/upgrades", "upgrades.json")):  # fmt: skip
        try:
            reply = request(sock, "GET", url, timeout)
        except Unreachable as exc:
            bundle.note(f"agent: {url} not collected: {exc}")
            continue
        doc = reply.body
        bundle.add(f"agent/{name}", json.dumps(doc, indent=2, sort_keys=True) + "\n")
        if name == "status.json" and isinstance(doc, dict):
            bundle.add("agent/conditions.json", json.dumps(doc.get("conditions", []), indent=2) + "\n")


def add_files(bundle: Bundle, paths: Paths) -> None:
    tomls = [*layer_files(paths), credential_seed(paths)]
    for path in dict.fromkeys(tomls):
        text = _read(path) if path.is_file() else None
        if text is not None:
            bundle.add(f"files/{_inside(path, paths)}", text)
    for f in yaml_files(paths, RUNTIME_CONFIGS):
        text = _read(f) if f.is_file() else None
        if text is not None:
            bundle.add(f"files/{_inside(f, paths)}", text)
    for d in UNIT_DIRS:
        base = paths.under(d)
        if not base.is_dir():
            continue
        for f in sorted(base.glob("*")):
            wanted = f.name.startswith(("edge-agent", "k3s", "k0s")) and f.is_file()
            if wanted and (text := _read(f)) is not None:
                bundle.add(f"units/{_inside(f, paths)}", text)
        for dropin in sorted(base.glob("edge-agent*.service.d/*.conf")):
            if (text := _read(dropin)) is not None:
                bundle.add(f"units/{_inside(dropin, paths)}", text)
    ident = IdentityFiles(paths.identity_dir)
    for f in (ident.cert, ident.ca, ident.crl, ident.meta, paths.state_file):  # public parts only: never key.pem
        if f.is_file() and (text := _read(f)) is not None:
            bundle.add(f"state/{f.relative_to(paths.state_dir)}", text)


def _redact_json(text: str) -> str | None:
    """JSON with every value under a secret-named key replaced (the fleet join token in state.json);
    None when ``text`` is not JSON (it is then redacted as text)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (REDACTED if SECRET_KEY.search(k) and isinstance(x, str) and x else walk(x))
                    for k, x in v.items()}  # fmt: skip
        return [walk(x) for x in v] if isinstance(v, list) else v

    return json.dumps(walk(doc), indent=2, sort_keys=True) + "\n"


async def add_commands(bundle: Bundle, paths: Paths, runner: Runner) -> None:
    for unit in [*AGENT_UNITS, *installed_units(paths)]:
        argv = ["journalctl", "-u", f"{unit}.service", "-n", str(JOURNAL_LINES), "--no-pager", "-o", "short-iso"]
        try:
            result = await runner.run(argv, timeout=30, check=False)
        except ExecError as exc:
            bundle.note(f"journal of {unit}: not collected: {exc}")
            continue
        if result.returncode != 0:
            bundle.note(f"journal of {unit}: journalctl exited {result.returncode}: {result.stderr.strip()[:200]}")
            continue
        bundle.add(f"journal/{unit}.log", result.stdout)
    versions = [f"agentctl {__version__}", f"python {sys.version.split()[0]}", f"kernel {platform.release()}"]
    os_release = _read(paths.under("/etc/os-release")) or _read(paths.under("/usr/lib/os-release")) or ""
    versions += [line for line in os_release.splitlines() if line.startswith(("PRETTY_NAME=", "VERSION_ID="))]
    for binary, args in ((K3S.binary, ["--version"]), (K0S.binary, ["version"])):
        exe = paths.under(binary)
        if not exe.is_file():
            continue
        try:
            out = await runner.run([str(exe), *args], timeout=15, check=False)
            versions.append(f"{binary}: {out.stdout.strip() or out.stderr.strip()}")
        except ExecError as exc:
            versions.append(f"{binary}: {exc}")
    bundle.add("versions.txt", "\n".join(versions) + "\n")


def default_name() -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"edge-agent-support-{socket.gethostname()}-{stamp}.tar.gz"


def build(paths: Paths, sock: str, timeout: float, runner: Runner) -> bytes:
    bundle = Bundle(known_secrets(paths))
    add_agent(bundle, sock, timeout)
    add_files(bundle, paths)
    asyncio.run(add_commands(bundle, paths, runner))
    manifest = [
        "edge-agent support bundle",
        f"created  {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
        f"host     {socket.gethostname()}",
        f"root     {paths.root}",
        f"secrets  {len(bundle.secrets)} known secret values redacted as {REDACTED}; no private key, no token file",
        "notes:",
        *([f"  {n}" for n in bundle.notes] or ["  none"]),
        "files:",
        *(f"  {name}" for name in sorted(bundle.files)),
    ]
    return bundle.tar_gz("\n".join(manifest) + "\n")


def run(root: str | None, sock: str, out: str | None, timeout: float) -> int:
    paths = Paths(Path(root or "/"))
    target = Path(out or default_name()).absolute()
    data = build(paths, sock, timeout, shell_runner())
    try:
        atomic_write(target, data, mode=0o600)
    except OSError as exc:
        print(f"agentctl: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {target} ({len(data) // 1024 + 1} KiB, mode 0600); secrets redacted")
    return 0
