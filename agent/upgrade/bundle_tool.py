"""Make release keys and bundles: what ``edge-registrar bundle keygen|build|sign`` runs.

A bundle is an (optionally gzip-compressed) tar whose first members are
``manifest.json`` and ``manifest.sig``, followed by the payload files named in
the manifest. ``build`` writes an unsigned bundle (or a signed one with a key);
``sign`` adds or replaces the signature of an existing bundle, so the build
machine never needs the release key.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import BundleError
from agent.fsio import atomic_write, sha256_file
from agent.upgrade.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    FileEntry,
    Kind,
    Manifest,
    host_architecture,
    parse_manifest,
    safe_relative_path,
)
from agent.upgrade.signing import load_private_key, private_key_pem, public_key_base64, sign

CHUNK = 1 << 20


def keygen(private_out: Path) -> str:
    """Write a new private key (PEM, 0600); return the public key for [upgrade].release_keys."""
    if private_out.exists():
        raise BundleError(f"{private_out}: exists; refusing to overwrite a release key")
    key = Ed25519PrivateKey.generate()
    atomic_write(private_out, private_key_pem(key), mode=0o600)
    return public_key_base64(key)


def read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        return load_private_key(path.read_bytes(), str(path))
    except OSError as exc:
        raise BundleError(f"{path}: cannot read key: {exc.strerror}") from exc


def parse_file_arg(arg: str) -> tuple[Path, str]:
    """``SRC`` (stored under its base name) or ``SRC=PATH/IN/BUNDLE``."""
    src, _, dest = arg.partition("=")
    source = Path(src)
    dest = dest or source.name
    try:
        safe_relative_path(dest)
    except ValueError as exc:
        raise BundleError(f"file {arg!r}: {exc}") from exc
    if not source.is_file():
        raise BundleError(f"file {arg!r}: {source} is not a readable file")
    return source, dest


def make_manifest(
    *, name: str, kind: Kind, version: str, architecture: str | None, files: Sequence[tuple[Path, str]]
) -> Manifest:
    entries = [
        FileEntry(
            path=dest,
            size=src.stat().st_size,
            sha256=sha256_file(src),
            mode=0o755 if os.access(src, os.X_OK) else 0o644,
        )
        for src, dest in files
    ]
    doc = {
        "schema": 1,
        "name": name,
        "kind": kind,
        "version": version,
        "architecture": architecture or host_architecture(),
        "files": [e.model_dump() for e in entries],
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return parse_manifest(json.dumps(doc).encode(), "manifest")


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tf.addfile(info, io.BytesIO(data))


def _write_bundle(
    out: Path, manifest_bytes: bytes, signature: bytes | None, payload: Sequence[tuple[str, Path | bytes]]
) -> None:
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    mode = "w:gz" if out.name.endswith((".tar.gz", ".tgz")) else "w"
    try:
        with tarfile.open(tmp, mode) as tf:  # type: ignore[call-overload]
            _add_bytes(tf, MANIFEST_NAME, manifest_bytes)
            if signature is not None:
                _add_bytes(tf, SIGNATURE_NAME, signature)
            for dest, src in payload:
                if isinstance(src, bytes):
                    _add_bytes(tf, dest, src)
                else:
                    info = tf.gettarinfo(str(src), arcname=dest)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    with src.open("rb") as f:
                        tf.addfile(info, f)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def build(
    out: Path,
    *,
    name: str,
    kind: Kind,
    version: str,
    files: Sequence[str],
    architecture: str | None = None,
    key: Ed25519PrivateKey | None = None,
) -> Manifest:
    pairs = [parse_file_arg(a) for a in files]
    manifest = make_manifest(name=name, kind=kind, version=version, architecture=architecture, files=pairs)
    raw = manifest.to_bytes()
    signature = sign(key, raw) if key is not None else None
    _write_bundle(out, raw, signature, [(dest, src) for src, dest in pairs])
    return manifest


def sign_bundle(bundle: Path, key: Ed25519PrivateKey, out: Path | None = None) -> Manifest:
    """Sign (or re-sign) ``bundle`` in place, or into ``out``."""
    target = out or bundle
    scratch = target.with_name(f".{target.name}.payload-{os.getpid()}")
    try:
        scratch.mkdir()
        payload: list[tuple[str, Path | bytes]] = []
        raw_manifest: bytes | None = None
        with tarfile.open(bundle, "r|*") as tf:
            for member in tf:
                f = tf.extractfile(member) if member.isreg() else None
                if f is None:
                    raise BundleError(f"{bundle}: {member.name!r} is not a regular file")
                if member.name == MANIFEST_NAME:
                    raw_manifest = f.read()
                elif member.name != SIGNATURE_NAME:
                    dest = scratch / f"{len(payload)}"
                    with dest.open("wb") as w:
                        while chunk := f.read(CHUNK):
                            w.write(chunk)
                    os.chmod(dest, member.mode & 0o777)
                    payload.append((member.name, dest))
        if raw_manifest is None:
            raise BundleError(f"{bundle}: no {MANIFEST_NAME}: not a bundle")
        manifest = parse_manifest(raw_manifest, f"{bundle}: {MANIFEST_NAME}")
        _write_bundle(target, raw_manifest, sign(key, raw_manifest), payload)
        return manifest
    except tarfile.TarError as exc:
        raise BundleError(f"{bundle}: not a readable tar ({exc})") from exc
    finally:
        for p in scratch.glob("*"):
            p.unlink()
        if scratch.exists():
            scratch.rmdir()
