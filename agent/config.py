"""Config layers -> one validated, frozen AgentConfig, or every problem with file and key.

Layers, later wins (tables merge key by key, lists and scalars replace):
built-in defaults < /usr/lib/edge-agent/agent.toml (vendor) < the first-boot seed
(the kept /var/lib/edge-agent/seed.toml < /boot/edge-agent.toml < the systemd
credential edge-agent.seed) < /etc/edge-agent/agent.toml (or --config FILE)
< /etc/edge-agent/agent.toml.d/*.toml (sorted). The box's own operator has the
last word: a drop-in that moves fleet.url wins over what the image was seeded with.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, SecretStr, ValidationError

from agent.errors import ConfigError, ConfigProblem
from agent.model.config import AgentConfig
from agent.paths import Paths
from agent.planner import config_problems
from agent.urls import redact_url

CREDENTIAL_NAME = "edge-agent.seed"
_SECRET_KEY = re.compile(r"token|secret|password|key", re.IGNORECASE)


@dataclass(frozen=True)
class LoadedConfig:
    config: AgentConfig
    sources: tuple[str, ...]
    merged: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return config_digest(self.config)


def config_digest(config: AgentConfig) -> str:
    """sha256 over the canonical config (secrets included, so a token change shows)."""
    raw = json.dumps(unredacted(config), sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


def unredacted(model: BaseModel) -> dict[str, Any]:
    def walk(v: Any) -> Any:
        if isinstance(v, SecretStr):
            return v.get_secret_value()
        if isinstance(v, BaseModel):
            return {k: walk(getattr(v, k)) for k in type(v).model_fields}
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    out = walk(model)
    assert isinstance(out, dict)
    return out


def without_bootstrap_token(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A merged config document fit to keep in state: no fleet.bootstrap_token (it lives only in the seed)."""
    out = dict(doc)
    fleet = out.get("fleet")
    if isinstance(fleet, Mapping) and "bootstrap_token" in fleet:
        out["fleet"] = {k: v for k, v in fleet.items() if k != "bootstrap_token"}
    return out


def credential_seed(paths: Paths) -> Path:
    """The seed passed as a systemd credential: the unit's own credentials when
    systemd handed it some, else the system credentials PID 1 received
    (nspawn --set-credential, SMBIOS type 11 under qemu). Read directly, so a
    box without the credential still starts (LoadCredential= would fail it)."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        return Path(directory) / CREDENTIAL_NAME
    return paths.under("/run/credentials/@system") / CREDENTIAL_NAME


def layer_files(paths: Paths, config_file: Path | None = None) -> Iterator[Path]:
    """Every config layer, lowest first (see the module docstring)."""
    yield paths.vendor_config
    yield paths.kept_seed
    yield paths.boot_seed
    yield credential_seed(paths)
    yield config_file or paths.etc_config
    if paths.config_dropins.is_dir():
        yield from sorted(p for p in paths.config_dropins.iterdir() if p.suffix == ".toml")


def merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def _expected(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str, list[str]]:
    """The annotation of the field at ``loc`` and the valid names beside it."""
    current: Any = model
    siblings: list[str] = list(model.model_fields)
    annotation = ""
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            break
        siblings = list(current.model_fields)
        field = current.model_fields.get(str(part))
        if field is None:
            break
        annotation = getattr(field.annotation, "__name__", None) or str(field.annotation)
        current = field.annotation
    return annotation.replace("typing.", ""), siblings


def _problems(source: str, exc: ValidationError) -> list[ConfigProblem]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            _, siblings = _expected(AgentConfig, (*loc[:-1], ""))
            close = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
            hint = f"; did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?" if close else ""
            out.append(ConfigProblem(source, key, f"unknown key{hint} (valid here: {', '.join(siblings)})"))
        else:
            expected, _ = _expected(AgentConfig, loc)
            want = f" (expected {expected})" if expected else ""
            got = "<redacted>" if _SECRET_KEY.search(key) else repr(err.get("input"))[:80]
            out.append(ConfigProblem(source, key, f"{err['msg']}{want}, got {got}"))
    return out


def read_layer(path: Path) -> dict[str, Any]:
    """Parse one TOML file; raises ConfigError naming file, line and column."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"not valid TOML: {exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"not UTF-8 text: {exc}")]) from exc
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"cannot read: {exc.strerror}")]) from exc


def load_config(paths: Paths, config_file: Path | None = None) -> LoadedConfig:
    """Read every layer; raise ConfigError listing every problem in every file."""
    problems: list[ConfigProblem] = []
    merged: dict[str, Any] = {}
    sources: list[str] = []
    layers: list[tuple[str, dict[str, Any]]] = []  # the accepted layers, highest first
    if config_file is not None and not config_file.is_file():
        problems.append(ConfigProblem(str(config_file), "", "no such file (given with --config)"))
    for path in layer_files(paths, config_file):
        if not path.is_file():
            continue
        try:
            layer = read_layer(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        try:
            AgentConfig.model_validate(layer)
        except ValidationError as exc:
            problems.extend(_problems(str(path), exc))
            continue
        merged = merge(merged, layer)
        sources.append(str(path))
        layers.insert(0, (str(path), layer))
    if problems:
        raise ConfigError(problems)
    try:
        config = AgentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_problems("merged config", exc)) from exc
    # values that parse but that k3s/k0s would refuse (labels under kubernetes.io, bad taints ...):
    # checked here, so agentd check-config and the daemon accept and refuse exactly the same configs
    planned = config_problems(config)
    if planned:
        raise ConfigError([_located(p, layers) for p in planned])
    return LoadedConfig(config, tuple(sources), merged)


def _defines(layer: Mapping[str, Any], key: str) -> bool:
    """Whether ``layer`` sets the dotted ``key`` (table names never hold dots; label names may)."""
    for name, value in layer.items():
        if key == name:
            return True
        if key.startswith(name + ".") and isinstance(value, Mapping) and _defines(value, key[len(name) + 1 :]):
            return True
    return False


def _located(problem: ConfigProblem, layers: list[tuple[str, dict[str, Any]]]) -> ConfigProblem:
    """The problem named after the file that set its key last (the one that won the merge)."""
    key = problem.key
    while key:
        for path, layer in layers:
            if _defines(layer, key):
                return ConfigProblem(path, problem.key, problem.message)
        key = key.rpartition(".")[0]  # e.g. kubernetes.node_taints when the problem names the list
    return problem


def render_redacted(config: AgentConfig) -> str:
    """The merged config as TOML, secrets shown as '**********' and URLs without their query (for check-config)."""
    doc = config.model_dump(mode="json")
    doc["kubernetes"]["binary_url"] = redact_url(config.kubernetes.binary_url) if config.kubernetes.binary_url else ""
    return tomli_w.dumps(doc)
