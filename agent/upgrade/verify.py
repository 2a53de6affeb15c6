"""Check a bundle file completely before it may change anything on the box.

One pass over the tar, in fixed-size chunks (run it in a worker thread):
the first two members must be ``manifest.json`` and ``manifest.sig``; the
signature is checked against the release keys, then the manifest's
architecture, then every further member must be a regular file the manifest
lists, with the listed size and sha256. Payload is written only to a scratch
directory under ``bundles/``; the caller deletes it on refusal. Symlinks,
hard links, devices, unlisted files, missing files and short (truncated) tars
are all refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agent.errors import BundleError
from agent.upgrade.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    parse_manifest,
    safe_relative_path,
)
from agent.upgrade.progress import Progress
from agent.upgrade.signing import ReleaseKey, verify_signature

CHUNK = 1 << 20
_META_MAX = 1 << 20


@dataclass(frozen=True)
class VerifiedBundle:
    manifest: Manifest
    directory: Path  # payload, laid out by manifest path
    key_id: str


def _read_small(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if not member.isreg() or member.size > _META_MAX:
        raise BundleError(f"{member.name}: expected a small regular file")
    f = tf.extractfile(member)
    assert f is not None
    return f.read()


def _copy_hashed(src: IO[bytes], dest: Path, size: int, progress: Progress | None) -> str:
    h = hashlib.sha256()
    remaining = size
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        while remaining:
            chunk = src.read(min(CHUNK, remaining))
            if not chunk:
                raise BundleError(f"{dest.name}: truncated: bundle ended inside this file")
            h.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
            if progress is not None:
                progress.advance(len(chunk))
    return h.hexdigest()


def verify_bundle(
    bundle: Path,
    keys: Sequence[ReleaseKey],
    scratch: Path,
    *,
    architecture: str,
    progress: Progress | None = None,
) -> VerifiedBundle:
    """Verify ``bundle`` and unpack its payload into ``scratch`` (which must not exist)."""
    scratch.mkdir(parents=True, mode=0o700)
    try:
        return _verify(bundle, keys, scratch, architecture, progress)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _verify(
    bundle: Path, keys: Sequence[ReleaseKey], scratch: Path, architecture: str, progress: Progress | None
) -> VerifiedBundle:
    name = bundle.name
    try:
        with tarfile.open(bundle, mode="r|*") as tf:
            meta: dict[str, bytes] = {}
            manifest: Manifest | None = None
            key_id = ""
            seen: set[str] = set()
            for member in tf:
                # ``tar -C dir -cf bundle.tar .`` writes "./name" and a "./" entry: accept that form
                if member.name.startswith("./"):
                    member.name = member.name[2:]
                if member.name in ("", ".") and member.isdir():
                    continue
                if manifest is None:
                    if member.name not in (MANIFEST_NAME, SIGNATURE_NAME) or member.name in meta:
                        raise BundleError(
                            f"{name}: expected {MANIFEST_NAME} and {SIGNATURE_NAME} first, found {member.name!r}"
                        )
                    meta[member.name] = _read_small(tf, member)
                    if len(meta) == 2:
                        key_id = verify_signature(keys, meta[MANIFEST_NAME], meta[SIGNATURE_NAME]).key_id
                        manifest = parse_manifest(meta[MANIFEST_NAME], f"{name}: {MANIFEST_NAME}")
                        if manifest.architecture != architecture:
                            raise BundleError(
                                f"{name}: built for architecture {manifest.architecture!r}, "
                                f"this box is {architecture!r}"
                            )
                        if progress is not None:
                            progress.reset(manifest.total_size)
                    continue
                try:
                    rel = safe_relative_path(member.name.rstrip("/") if member.isdir() else member.name)
                except ValueError as exc:
                    raise BundleError(f"{name}: member {exc}") from exc
                if member.isdir():
                    continue
                if not member.isreg():
                    raise BundleError(f"{name}: {member.name!r} is not a regular file (links/devices refused)")
                entry = manifest.entry(member.name)
                if entry is None:
                    raise BundleError(f"{name}: {member.name!r} is not listed in the manifest")
                if member.name in seen:
                    raise BundleError(f"{name}: {member.name!r} appears twice")
                seen.add(member.name)
                if member.size != entry.size:
                    raise BundleError(
                        f"{name}: {member.name}: size {member.size} differs from the manifest's {entry.size}"
                    )
                dest = scratch.joinpath(*rel.parts)
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                src = tf.extractfile(member)
                assert src is not None
                digest = _copy_hashed(src, dest, member.size, progress)
                if digest != entry.sha256:
                    raise BundleError(f"{name}: {member.name}: sha256 {digest} differs from the manifest's")
                os.chmod(dest, entry.mode)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BundleError(f"{name}: truncated or corrupt bundle ({exc})") from exc
    except InterruptedError:
        raise
    except OSError as exc:
        raise BundleError(f"{name}: cannot read or unpack: {exc.strerror or exc}") from exc
    if manifest is None:
        raise BundleError(f"{name}: truncated or not a bundle: no signed manifest found")
    missing = [f.path for f in manifest.files if f.path not in seen]
    if missing:
        raise BundleError(f"{name}: truncated: {len(missing)} listed file(s) missing, first {missing[0]!r}")
    return VerifiedBundle(manifest, scratch, key_id)
