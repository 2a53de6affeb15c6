"""Every secret a box holds, gathered so doctor and support-bundle can mask them in anything they print.

Sources: token/secret/password/key values in every config layer and seed
(TOML), in k3s's config.yaml and unit env files, k3s's and k0s's token files, the agent's state
(the fleet-assigned join token), and the node's private key. A k3s token
``K10<ca hash>::<user>:<password>`` is also masked by its password part, which
k3s logs on its own.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from agent.config import credential_seed, layer_files
from agent.fleet.identity import IdentityFiles
from agent.paths import Paths
from agent.runtime.layout import K0S, K3S

SECRET_KEY = re.compile(r"token|secret|password|passwd|key", re.IGNORECASE)
REDACTED = "<redacted>"  # what agent.runtime.diagnose.mask writes
MIN_LEN = 6  # shorter values would mask ordinary words

TOKEN_FILES = (*K3S.token_files, *K0S.token_files)
K3S_CONFIGS = (K3S.config, K3S.config + ".d")
_URL = re.compile(r"https?://[^\s\"'<>]+")
_YAML_LINE = re.compile(r"^\s*[\"']?([A-Za-z0-9_.-]+)[\"']?\s*:\s*(.+?)\s*$")


def _walk(doc: Any, everything: bool = False) -> Iterator[str]:
    """String values under secret-sounding keys (``everything``: every string value)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, str) and (everything or SECRET_KEY.search(str(k))):
                yield v
            else:
                yield from _walk(v, everything)
    elif isinstance(doc, list):
        for v in doc:
            yield from (v,) if isinstance(v, str) and everything else _walk(v, everything)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _yaml_values(text: str) -> Iterator[str]:
    """Secret values of a k3s config file: the agent writes JSON (valid YAML) under comment lines; an
    operator's drop-in may be block YAML, read line by line (no YAML parser on the box)."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    try:
        yield from _walk(json.loads(body))
        return
    except ValueError:
        pass
    for line in text.splitlines():
        m = _YAML_LINE.match(line)
        if m and SECRET_KEY.search(m.group(1)):
            yield m.group(2).rstrip(",").strip("\"'")


def yaml_files(paths: Paths, names: Iterable[str]) -> list[Path]:
    """Each named file, or a named directory's ``*.yaml`` files in order (config.yaml.d)."""
    out: list[Path] = []
    for name in names:
        p = paths.under(name)
        out += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    return out


def _k3s_parts(token: str) -> Iterator[str]:
    yield token
    if "::" in token:
        cred = token.split("::", 1)[1]
        yield cred
        yield cred.rpartition(":")[2]


def _url_secrets(text: str) -> Iterator[str]:
    """The password and query values of every URL in ``text`` (presigned download URLs carry secrets there)."""
    for m in _URL.finditer(text):
        u = urlsplit(m.group(0))
        if u.password:
            yield u.password
        yield from (v for _, v in parse_qsl(u.query))


def known_secrets(paths: Paths) -> list[str]:
    """Every secret value found on the box, longest first (so a part never masks half a whole)."""
    found: list[str] = []
    tomls = [*layer_files(paths), credential_seed(paths)]
    for path in tomls:
        text = _read(path)
        found += _url_secrets(text)
        try:
            found += _walk(tomllib.loads(text))
        except tomllib.TOMLDecodeError:
            continue
    for f in yaml_files(paths, K3S_CONFIGS):
        found += _yaml_values(_read(f))
    units = paths.systemd_dir
    for env in sorted(units.glob("*.env")) if units.is_dir() else []:  # k3s.service.env may hold K3S_TOKEN
        for line in _read(env).splitlines():
            k, eq, v = line.partition("=")
            if eq and SECRET_KEY.search(k):
                found.append(v.strip().strip("\"'"))
    for name in TOKEN_FILES:
        found.append(_read(paths.under(name)).strip())
    for path, everything in ((paths.state_file, False), (paths.state_dir / "runtime" / "k0s-join-tokens.json", True)):
        try:
            found += _walk(json.loads(_read(path) or "null"), everything)
        except ValueError:
            continue
    key = _read(IdentityFiles(paths.identity_dir).key)
    found += [line for line in key.splitlines() if line and not line.startswith("-----")]
    out = {part for s in found for part in _k3s_parts(s.strip()) if len(part) >= MIN_LEN}
    return sorted(out, key=len, reverse=True)
