"""Air-gap image bundles: tarballs placed where k3s/k0s import them; restored on failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.context import AgentContext
from agent.errors import UpgradeRefused
from agent.fsio import copy_atomic
from agent.runtime.layout import LAYOUTS
from agent.upgrade.manifest import Manifest


class AirgapInstaller:
    """Air-gap image tarballs: placed where the distribution imports them; older ones kept aside."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self._replaced: list[tuple[Path, Path]] = []
        self._added: list[Path] = []

    def _target(self) -> Path:
        kube = self.ctx.desired.value.kube
        dist = kube.distribution if kube is not None else ""
        if dist not in LAYOUTS:
            raise UpgradeRefused("this box runs no k3s or k0s; air-gap images have nowhere to go")
        return self.ctx.paths.under(LAYOUTS[dist].images)

    async def preflight(self, manifest: Manifest, force: bool) -> str:
        self._target()
        self._replaced, self._added = [], []
        return ""

    async def install(self, staged: Path, manifest: Manifest) -> None:
        target = self._target()
        aside = staged / ".replaced"
        for f in manifest.files:
            dest = target / Path(f.path).name
            if dest.exists():
                await asyncio.to_thread(copy_atomic, dest, aside / dest.name)
                self._replaced.append((aside / dest.name, dest))
            else:
                self._added.append(dest)
            await asyncio.to_thread(copy_atomic, staged / f.path, dest)

    async def healthy(self, manifest: Manifest, timeout: float) -> None:
        return None  # k3s >= 1.29.13 imports while running; k0s re-imports on mtime change

    def adopt(self, previous: str) -> None:
        return None  # what was replaced is not known after a restart; images are additive anyway

    async def restore(self, manifest: Manifest) -> None:
        for added in self._added:
            added.unlink(missing_ok=True)
        for src, dest in self._replaced:
            await asyncio.to_thread(copy_atomic, src, dest)
