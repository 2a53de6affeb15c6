"""The bundle manifest: what a bundle claims to contain, signed by a release key.

A manifest is JSON (``manifest.json`` inside the bundle)::

    {"schema": 1, "name": "edge-agent", "kind": "agent", "version": "0.2.0",
     "architecture": "amd64",
     "files": [{"path": "wheels/edge_agent-0.2.0-py3-none-any.whl", "size": 1234,
                "sha256": "<64 hex>"}]}

Every payload path is relative, normalised and stays inside the bundle; the
version doubles as a directory name, so it is restricted to a safe alphabet.
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.errors import BundleError

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
SCHEMA = 1

Kind = Literal["agent", "k3s", "k0s", "airgap-images"]
KINDS: tuple[str, ...] = ("agent", "k3s", "k0s", "airgap-images")

_VERSION = re.compile(r"^v?[0-9][A-Za-z0-9.+_-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# platform.machine() -> the Go/Debian architecture names k3s and k0s release under
_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "armv6l": "armhf",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def host_architecture() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def safe_relative_path(raw: str) -> PurePosixPath:
    """A payload path: relative, no ``..``, no empty or ``.`` parts, not the manifest itself."""
    if not raw or "\\" in raw or "\x00" in raw:
        raise ValueError(f"{raw!r} is not a plain relative path")
    p = PurePosixPath(raw)
    if p.is_absolute():
        raise ValueError(f"{raw!r} is absolute; paths must stay inside the bundle")
    parts = raw.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{raw!r} leaves the bundle or is not normalised (no '..', '.', '//')")
    if raw in (MANIFEST_NAME, SIGNATURE_NAME):
        raise ValueError(f"{raw!r} is reserved for the bundle's own metadata")
    return p


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    path: str
    size: int = Field(ge=0)
    sha256: str
    mode: int = Field(0o644, ge=0, le=0o777, description="permission bits once installed")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        safe_relative_path(v)
        return v

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not _SHA256.match(v):
            raise ValueError("expected 64 lowercase hex digits")
        return v


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    schema_: int = Field(SCHEMA, alias="schema")
    name: str = Field(min_length=1, max_length=100)
    kind: Kind
    version: str
    architecture: str = Field(min_length=1, max_length=32)
    files: tuple[FileEntry, ...] = Field(min_length=1)
    created: str = ""

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: int) -> int:
        if v != SCHEMA:
            raise ValueError(f"schema {v} is not understood by this agent (expected {SCHEMA})")
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not _VERSION.match(v):
            raise ValueError("expected a version like 0.2.0 or v1.33.1+k3s1 (letters, digits, . + _ -)")
        return v

    @field_validator("files")
    @classmethod
    def _unique(cls, v: tuple[FileEntry, ...]) -> tuple[FileEntry, ...]:
        seen: set[str] = set()
        for f in v:
            if f.path in seen:
                raise ValueError(f"{f.path!r} is listed twice")
            seen.add(f.path)
        prefixes = {str(p) for f in v for p in PurePosixPath(f.path).parents}
        clash = seen & prefixes
        if clash:
            raise ValueError(f"{sorted(clash)[0]!r} is both a file and a directory")
        return v

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def entry(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    def to_bytes(self) -> bytes:
        """The canonical serialisation the build tool signs."""
        doc = self.model_dump(mode="json", by_alias=True)
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def parse_manifest(raw: bytes, source: str = MANIFEST_NAME) -> Manifest:
    """Parse manifest bytes; every problem is a BundleError naming the field."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise BundleError(f"{source}: expected a JSON object")
    try:
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise BundleError(f"{source}: {problems}") from exc
