"""Put the k3s/k0s binary and its air-gap images in place, always sha256-checked first.

Sources, in order: the air-gap directory (``<airgap_dir>/<distribution>/``,
baked into the image or on local media), else ``binary_url`` (downloaded with
aiohttp). The air-gap directory holds the binary (``k3s`` / ``k0s``), a
checksum file in ``sha256sum`` format (``sha256sum.txt``, or k3s's
``sha256sum-<arch>.txt``) listing it and every image tarball, and the image
tarballs (in the directory itself or ``images/``).

Nothing is placed before its hash is checked: the new binary is written to a
temp file beside the old one, hashed while written, compared, made
executable, probed with ``--version`` / ``version``, and only then renamed over
the old one. A mismatch, a truncated download, a non-executable file or a
failed probe leaves the old binary untouched and raises RuntimeInstallError
saying why.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agent.download import Download
from agent.errors import CommandNotRunnable, DownloadError, ExecError, RuntimeInstallError, UpgradeRefused
from agent.fsio import StagedFile, sha256_file
from agent.model.desired import DesiredKube
from agent.paths import Paths
from agent.runtime.layout import LAYOUTS
from agent.runtime.version import parse_version, version_argv
from agent.sysexec import Runner
from agent.upgrade.kube import committed_binary
from agent.upgrade.skew import upgrade_problem
from agent.urls import redact_url

CHUNK = 1 << 20


IMAGE_SUFFIXES = (".tar", ".tar.lz4", ".tar.bz2", ".tbz", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".txt")
IMAGE_PREFIX = {"k3s": "k3s-airgap-images-", "k0s": "k0s-airgap-bundle-"}


@dataclass(frozen=True)
class Installed:
    binary: Path
    sha256: str
    version: str
    changed: bool
    source: str  # "air-gap <dir>", "<url>", or "preinstalled"
    images_changed: bool = False


def read_sums(directory: Path) -> dict[str, str]:
    """name -> sha256 from the sha256sum-format files in an air-gap directory."""
    sums: dict[str, str] = {}
    for f in sorted(directory.glob("sha256sum*.txt")) + sorted(directory.glob("SHA256SUMS")):
        for lineno, line in enumerate(f.read_text().splitlines(), 1):
            if not line.strip():
                continue
            m = re.match(r"^([0-9a-fA-F]{64})\s+\*?(\S+)$", line.strip())
            if not m:
                raise RuntimeInstallError(f"{f}:{lineno}: expected '<sha256>  <file>', got {line[:80]!r}")
            sums[Path(m.group(2)).name] = m.group(1).lower()
    return sums


def arch_suffix() -> str:
    machine = platform.machine()
    return {"x86_64": "", "aarch64": "-arm64", "armv7l": "-armhf", "s390x": "-s390x"}.get(machine, "")


class Installer:
    def __init__(self, paths: Paths, runner: Runner, *, probe_timeout: float = 30.0) -> None:
        self.paths = paths
        self.runner = runner
        self.probe_timeout = probe_timeout
        self._hashes: dict[Path, tuple[tuple[int, int, int], str]] = {}
        self._versions: dict[Path, tuple[tuple[int, int, int], str]] = {}

    async def _sha(self, path: Path) -> str:
        """sha256 of a file, remembered while its inode, size and mtime stay the same
        (the reconcile runs every few seconds; k3s and its image tarballs are hundreds of MB).
        Hashed in a thread so the API keeps answering meanwhile."""
        key = _stat_key(path)
        cached = self._hashes.get(path)
        if cached and cached[0] == key:
            return cached[1]
        digest = await asyncio.to_thread(sha256_file, path)
        self._hashes[path] = (key, digest)
        return digest

    def bundle_dir(self, d: DesiredKube) -> Path | None:
        if not d.source.airgap_dir:
            return None
        directory = self.paths.under(d.source.airgap_dir) / d.distribution
        return directory if directory.is_dir() else None

    async def ensure(self, d: DesiredKube) -> Installed:
        dist = d.distribution
        dest = self.paths.under(LAYOUTS[dist].binary)
        bundle = self.bundle_dir(d)
        sums = read_sums(bundle) if bundle else {}
        candidate = None
        if bundle:
            for name in (dist, f"{dist}{arch_suffix()}"):
                if (bundle / name).is_file():
                    candidate = bundle / name
                    break
        expected = d.source.binary_sha256
        committed = committed_binary(self.paths, dist)
        if committed is not None and (not d.version or await self._installed_version(dist, committed) == d.version):
            # A committed upgrade (signed bundle, health-gated) is newer than the image's air-gap binary
            # or the configured URL: installing from those again would silently undo it. Only a
            # different pinned version moves the box off it.
            candidate, expected = committed, ""
            sums = {**sums, committed.name: await self._sha(committed)}  # the bundle's image sums still apply
        if candidate is not None:
            listed = sums.get(candidate.name, "")
            if expected and listed and listed != expected:
                raise RuntimeInstallError(
                    f"{bundle}: sha256sum lists {candidate.name} as {listed}, "
                    f"but kubernetes.binary_sha256 says {expected}; not installing"
                )
            expected = expected or listed
            if not expected:
                raise RuntimeInstallError(
                    f"{candidate}: no sha256 for it in {bundle}/sha256sum.txt and no kubernetes.binary_sha256; "
                    "refusing an unchecked binary"
                )
        elif not d.source.binary_url:
            if dest.is_file() and os.access(dest, os.X_OK):
                version = await self._installed_version(dist, dest)
                self._check_version(d, version, dest)
                images = await self._place_images(d, bundle, sums)
                return Installed(dest, await self._sha(dest), version, False, "preinstalled", images)
            where = f"{self.paths.under(d.source.airgap_dir)}/{dist}" if d.source.airgap_dir else "no air-gap dir"
            raise RuntimeInstallError(
                f"no {dist} binary: not installed at {LAYOUTS[dist].binary}, none in {where}, "
                "and kubernetes.binary_url is not set"
            )
        changed = False
        if not (dest.is_file() and await self._sha(dest) == expected):
            installed = await self._current_version(dist, dest)
            source = str(candidate) if candidate is not None else redact_url(d.source.binary_url)
            chunks = _read_file(candidate) if candidate is not None else _download(d.source.binary_url)
            await self._place(d, dest, chunks, expected, source, installed)
            changed = True
        version = await self._installed_version(dist, dest)
        images = await self._place_images(d, bundle, sums)
        source = f"air-gap {bundle}" if candidate is not None else redact_url(d.source.binary_url)
        return Installed(dest, expected, version, changed, source, images)

    async def _place(
        self, d: DesiredKube, dest: Path, chunks: AsyncIterator[bytes], expected: str, source: str, installed: str
    ) -> None:
        with StagedFile(dest) as staged:
            async for chunk in chunks:
                await asyncio.to_thread(staged.write, chunk)  # disk I/O off the event loop
            got = await asyncio.to_thread(staged.finish)
            if got != expected:
                raise RuntimeInstallError(
                    f"checksum mismatch for {source}: expected sha256 {expected}, got {got}; "
                    f"the installed {d.distribution} binary was left in place"
                )
            staged.tmp.chmod(0o755)  # run it once before it goes in place
            version = await self._probe(d.distribution, staged.tmp, source)
            self._check_version(d, version, Path(source))
            skew = upgrade_problem(installed, version) if installed else None
            if skew:
                raise UpgradeRefused(f"not installing {source}: {skew}; the installed binary was left in place")
            await asyncio.to_thread(staged.commit, 0o755)  # an executable, like install.sh places it

    def _check_version(self, d: DesiredKube, version: str, where: Path) -> None:
        if d.version and version != d.version:
            raise RuntimeInstallError(
                f"{where} is {d.distribution} {version}, but {d.version} is wanted; "
                "put the matching binary in the air-gap bundle or set kubernetes.binary_url"
            )

    async def _current_version(self, distribution: str, dest: Path) -> str:
        """The version in place, "" when none (or it does not run: then any version may replace it)."""
        try:
            return await self._installed_version(distribution, dest)
        except (RuntimeInstallError, FileNotFoundError):
            return ""

    async def _installed_version(self, distribution: str, binary: Path) -> str:
        """The placed binary's version, probed again only when the file changed."""
        key = _stat_key(binary)
        cached = self._versions.get(binary)
        if cached and cached[0] == key:
            return cached[1]
        version = await self._probe(distribution, binary)
        self._versions[binary] = (key, version)
        return version

    async def _probe(self, distribution: str, binary: Path, name: str = "") -> str:
        """Run the binary's version command: proves it executes and tells its version."""
        shown = name or str(binary)
        try:
            result = await self.runner.run(version_argv(distribution, binary), timeout=self.probe_timeout)
        except CommandNotRunnable as exc:
            raise RuntimeInstallError(f"{shown} does not run ({exc.reason}); not installing it") from exc
        except ExecError as exc:
            raise RuntimeInstallError(f"{shown} does not run ({exc}); not installing it") from exc
        return parse_version(distribution, result.stdout)

    async def _place_images(self, d: DesiredKube, bundle: Path | None, sums: dict[str, str]) -> bool:
        """Copy the bundle's image tarballs to where the distribution imports them (checked first);
        drop older bundle tarballs the new ones replace."""
        if bundle is None:  # (k0s imports on workers only; every k0s node we run has a worker)
            return False
        sources = [
            p
            for directory in (bundle, bundle / "images")
            if directory.is_dir()
            for p in sorted(directory.iterdir())
            if p.is_file() and p.name.endswith(IMAGE_SUFFIXES) and not p.name.startswith("sha256sum")
        ]
        target_dir = self.paths.under(LAYOUTS[d.distribution].images)
        changed = False
        names = {p.name for p in sources}
        for src in sources:
            expected = sums.get(src.name)
            if expected is None:
                raise RuntimeInstallError(f"{src}: not listed in the bundle's sha256sum file; not importing it")
            target = target_dir / src.name
            if target.is_file() and await self._sha(target) == expected:
                continue
            await self._place_plain(target, _read_file(src), expected, str(src))
            changed = True
        if target_dir.is_dir():
            for old in target_dir.iterdir():
                if old.name.startswith(IMAGE_PREFIX[d.distribution]) and old.name not in names:
                    old.unlink()
                    changed = True
        return changed

    async def _place_plain(self, dest: Path, chunks: AsyncIterator[bytes], expected: str, source: str) -> None:
        with StagedFile(dest) as staged:
            async for chunk in chunks:
                await asyncio.to_thread(staged.write, chunk)  # disk I/O off the event loop
            got = await asyncio.to_thread(staged.finish)
            if got != expected:
                raise RuntimeInstallError(f"checksum mismatch for {source}: expected sha256 {expected}, got {got}")
            await asyncio.to_thread(staged.commit, 0o644)


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
            await asyncio.sleep(0)  # let the API run between chunks


async def _download(url: str) -> AsyncIterator[bytes]:
    try:
        async with Download(url) as dl:
            async for chunk in dl.chunks(CHUNK):
                yield chunk
    except DownloadError as exc:
        raise RuntimeInstallError(str(exc)) from exc


def _stat_key(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)
