"""One upgrade at a time: download, verify, stage, wait for the gate, switch, check, commit.

The manager runs the pipeline of an upgrade request as a task, keeps its
record (``agent.upgrade.record``) in the state file, and publishes the
``upgrade`` status section. Nothing on the box changes before the bundle is
verified and the policy checks passed (blocked versions, version skew).

For the agent itself the switch ends this process: the new version's
UpgradeController finds the record in ``checking``, waits until it is healthy
and commits (agent.upgrade.settle); if it never gets there the launcher rolls
back and the old version's controller records ``rolled-back`` with the
launcher's reason. For k3s/k0s the whole cycle runs here (agent.upgrade.kube).

The daemon builds one manager and hands it to the API routes (UpgradeRoutes),
the controller and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from agent.context import AgentContext
from agent.errors import AgentError, AlreadyCurrent, BundleError, UpgradeBusy, UpgradeRefused, VersionBlocked
from agent.model.state import UpgradeState
from agent.model.status import UpgradeStatus
from agent.upgrade import blocks, section
from agent.upgrade.download import fetch
from agent.upgrade.gate import UpdateLock, Window, deferral
from agent.upgrade.launcher import FACTORY_VENV, SLOT_ENV
from agent.upgrade.manifest import Manifest, host_architecture
from agent.upgrade.progress import Progress
from agent.upgrade.record import ALREADY_CURRENT, State, UpgradeRecord
from agent.upgrade.signing import load_release_keys
from agent.upgrade.slots import FACTORY, Slots
from agent.upgrade.stage import remove_half_staged, stage_agent, stage_files
from agent.upgrade.verify import verify_bundle
from agent.urls import display_source

log = logging.getLogger("agent.upgrade")

AGENT_UNIT = "edge-agent.service"
KEEP_RECORDS = 20
MAX_DEFER = 7 * 86400.0  # a switch deferred longer than this (a lock never released) gives up
TICK = 0.25


class KindInstaller(Protocol):
    """k3s / k0s / air-gap images: everything after staging (agent.upgrade.kube)."""

    async def preflight(self, manifest: Manifest, force: bool) -> str: ...

    async def install(self, staged: Path, manifest: Manifest) -> None: ...

    async def healthy(self, manifest: Manifest, timeout: float) -> None: ...

    async def restore(self, manifest: Manifest) -> None: ...

    def adopt(self, previous: str) -> None:
        """After an agent restart mid-switch: assume the new files are in place over ``previous``."""


class UpgradeManager:
    def __init__(
        self,
        ctx: AgentContext,
        *,
        python: str = sys.executable,
        running_slot: str | None = None,
        installers: Mapping[str, KindInstaller],
    ) -> None:
        self.ctx = ctx
        self.slots = Slots(ctx.paths.versions_dir, ctx.paths.under(FACTORY_VENV))
        self.python = python
        self.running_slot = running_slot if running_slot is not None else os.environ.get(SLOT_ENV, "")
        self.progress = Progress()
        self.records: dict[str, UpgradeRecord] = {}
        self.active: UpgradeRecord | None = None
        self._installers = installers
        self._task: asyncio.Task[None] | None = None
        self._lock: UpdateLock | None = None
        self._changed = asyncio.Event()
        self.kind_failures: dict[str, dict[str, int]] = {}  # k3s/k0s/air-gap: {kind: {version: failures}}
        self._load()

    # -- records -----------------------------------------------------------------
    def _load(self) -> None:
        saved = self.ctx.store.load_section("upgrade", UpgradeState)
        self.kind_failures = blocks.counts(saved.failures)
        self.records = {rec.id: rec for rec in saved.records}
        active = self.records.get(saved.active or "")
        self.active = active if active is not None and not active.final else None

    def _save(self) -> None:
        recent = sorted(self.records.values(), key=lambda r: r.created_at)[-KEEP_RECORDS:]
        self.records = {r.id: r for r in recent}
        if self.active is not None and self.active.id not in self.records:
            self.records[self.active.id] = self.active
        self.ctx.store.save_section(
            "upgrade",
            UpgradeState(
                active=self.active.id if self.active else None,
                records=tuple(self.records.values()),
                failures=self.kind_failures,
            ),
        )

    def move(self, rec: UpgradeRecord, state: State, reason: str = "") -> None:
        rec.move(state, reason)
        log.info("upgrade %s (%s %s): %s %s", rec.id, rec.kind or "?", rec.version or "?", state, reason)
        if rec.final and self.active is rec:
            self.active = None
        self._save()
        self.publish()

    def get(self, upgrade_id: str) -> UpgradeRecord | None:
        return self.records.get(upgrade_id)

    def list(self) -> list[UpgradeRecord]:
        return sorted(self.records.values(), key=lambda r: r.created_at, reverse=True)

    # -- status --------------------------------------------------------------------
    def section(self) -> UpgradeStatus:
        return section.build(self)

    def publish_progress(self) -> None:
        """Copy the worker's byte counts into the active record (cheap; called per API read)."""
        rec = self.active
        if rec is not None and rec.state in ("downloading", "verifying"):
            rec.bytes_done, rec.bytes_total = self.progress.done, self.progress.total

    def publish(self) -> None:
        self.publish_progress()
        self.ctx.board.set_section(self.section())
        last = next((r for r in self.list() if r.final), None)
        if last is not None:
            ok = last.state == "committed"
            self.ctx.board.set_condition(
                "UpgradeSucceeded",
                "True" if ok else "False",
                {"committed": "Committed", "rolled-back": "RolledBack"}.get(last.state, "Failed"),
                f"{last.kind} {last.version}: {last.state}" + (f": {last.reason}" if last.reason else ""),
                severity="info",
            )
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self) -> None:
        await self._changed.wait()

    # -- starting --------------------------------------------------------------------
    def start(self, source: str, *, force: bool = False) -> UpgradeRecord:
        if self.active is not None and not self.active.final:
            raise UpgradeBusy(self.active)
        if not source.strip():
            raise BundleError("source: expected an https URL or an absolute path to a bundle")
        rec = UpgradeRecord(id=uuid.uuid4().hex[:12], source=display_source(source), force=force)
        self.records[rec.id] = rec
        self.active = rec
        self.progress = Progress()
        self.move(rec, "downloading")
        self._task = asyncio.create_task(self._run(rec, source), name=f"upgrade:{rec.id}")
        return rec

    async def cancel(self, upgrade_id: str) -> UpgradeRecord:
        """Stop an upgrade before its switch; UpgradeBusy once switching (or already final)."""
        rec = self.records.get(upgrade_id)
        if rec is None:
            raise KeyError(upgrade_id)
        if rec.state not in ("downloading", "verifying", "staged") or self.active is not rec:
            raise UpgradeBusy(
                rec, f"upgrade {rec.id} is {rec.state}; only an upgrade before its switch can be cancelled"
            )
        await self.close()
        await asyncio.to_thread(remove_half_staged, self.slots)
        self.move(rec, "failed", "cancelled by the operator")
        return rec

    async def close(self) -> None:
        if self._task is not None:
            self.progress.cancelled.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self.release_lock()

    async def _run(self, rec: UpgradeRecord, source: str) -> None:
        bundles = self.ctx.paths.bundles_dir
        bundle_file, scratch = bundles / f"{rec.id}.bundle", bundles / f"{rec.id}.d"
        ticker = asyncio.create_task(self._tick(rec))
        try:
            await self._pipeline(rec, source, bundle_file, scratch)
        except AgentError as exc:
            if not rec.final:
                rec.code = (
                    ALREADY_CURRENT
                    if isinstance(exc, AlreadyCurrent)
                    else blocks.BLOCKED
                    if isinstance(exc, VersionBlocked)
                    else ""
                )
                await asyncio.to_thread(remove_paths, bundle_file, scratch)  # gone before the record says failed
                self.move(rec, "failed", str(exc))
        except Exception as exc:  # a bug must not leave the upgrade "active" (and every later POST 409) forever
            log.exception("upgrade %s failed", rec.id)
            if not rec.final:
                await asyncio.to_thread(remove_paths, bundle_file, scratch)
                self.move(rec, "failed", f"{type(exc).__name__}: {exc}")
        finally:
            ticker.cancel()
            if not (rec.kind == "agent" and rec.state == "checking"):
                self.release_lock()
            await asyncio.to_thread(remove_paths, bundle_file, scratch)

    async def _tick(self, rec: UpgradeRecord) -> None:
        while rec.state in ("downloading", "verifying"):
            self.publish()
            await asyncio.sleep(TICK)

    # -- the pipeline ---------------------------------------------------------------
    async def _pipeline(self, rec: UpgradeRecord, source: str, bundle_file: Path, scratch: Path) -> None:
        cfg = self.ctx.desired.value.upgrade
        await fetch(source, bundle_file, self.progress)
        rec.bytes_done, rec.bytes_total = self.progress.done, self.progress.total
        self.move(rec, "verifying")
        keys = load_release_keys(cfg.release_keys)
        verified = await asyncio.to_thread(
            verify_bundle,
            bundle_file,
            keys,
            scratch,
            architecture=host_architecture(),
            progress=self.progress,
        )
        m = verified.manifest
        rec.name, rec.kind, rec.version = m.name, m.kind, m.version
        rec.bytes_done, rec.bytes_total = self.progress.done, self.progress.total
        installer = None
        if m.kind == "agent":
            self._agent_preflight(rec, m)
        else:
            installer = self.installer(m.kind)
            self._check_blocked(rec, m.kind, m.version, self.kind_failures.get(m.kind, {}).get(m.version, 0))
            rec.previous_version = await installer.preflight(m, rec.force)
        rec.reason = f"installing {m.kind} {m.version}"
        self._save()
        self.publish()
        if installer is None:
            staged = await stage_agent(verified, self.slots, self.ctx.runner, self.python)
        else:
            staged = await asyncio.to_thread(stage_files, verified, self.ctx.paths.versions_dir)
        self.move(rec, "staged", f"installed in {staged}")
        await self._wait_for_gate(rec)
        self.move(rec, "switching")
        if installer is None:
            await self._switch_agent(rec)
            return
        await self._switch_kind(rec, m, installer, staged)

    def _check_blocked(self, rec: UpgradeRecord, kind: str, version: str, failures: int) -> None:
        """Refuse a blocked version unless forced; a forced try keeps the block (agent.upgrade.blocks)."""
        if blocks.check(kind, version, failures, force=rec.force):
            log.warning("upgrade %s: %s %s failed %d time(s) here; trying it because forced", rec.id, kind, version,
                        failures)  # fmt: skip

    def _count_failure(self, kind: str, version: str) -> None:
        versions = self.kind_failures.setdefault(kind, {})
        versions[version] = versions.get(version, 0) + 1
        self._save()

    def _agent_preflight(self, rec: UpgradeRecord, m: Manifest) -> None:
        self._check_blocked(rec, "agent", m.version, self.slots.failures(m.version))
        current = self.slots.current() or FACTORY
        if m.version in (current, self.running_slot):
            raise AlreadyCurrent(f"agent version {m.version} is already running")
        rec.previous_version = current

    async def _wait_for_gate(self, rec: UpgradeRecord) -> None:
        cfg = self.ctx.desired.value.upgrade
        lock = self._lock or UpdateLock(self.ctx.paths.under(cfg.update_lock))
        since = time.monotonic()
        while True:
            window = Window.parse(self.ctx.desired.value.upgrade.maintenance_window)
            why = deferral(window, lock, datetime.now(UTC))
            if why is not None and time.monotonic() - since > MAX_DEFER:
                raise UpgradeRefused(f"deferred for more than {MAX_DEFER / 86400:g} days ({why[0]}); giving up")
            if why is None:
                self._lock = lock
                if rec.deferred:
                    rec.deferred = ""
                    self._save()
                return
            if rec.deferred != why[0]:
                rec.deferred, rec.recheck_s = why[0], why[1]
                self._save()
                self.publish()
            # look again after the hint, or at once when the policy (window, lock path) changes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ctx.desired.wait_newer(self.ctx.desired.version), why[1])

    def release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def _switch_agent(self, rec: UpgradeRecord) -> None:
        deadline = self.ctx.desired.value.upgrade.health_deadline
        await asyncio.to_thread(self.slots.switch, rec.version, deadline_s=deadline, upgrade_id=rec.id)
        self.move(rec, "checking", f"restarting into {rec.version}; it must be healthy within {deadline:g}s")
        try:
            await self.ctx.runner.run(["systemctl", "restart", "--no-block", AGENT_UNIT], timeout=30)
        except AgentError as exc:
            await asyncio.to_thread(self.slots.rollback, f"could not restart the agent: {exc}")
            self.move(rec, "rolled-back", f"could not restart the agent: {exc}")

    async def _switch_kind(self, rec: UpgradeRecord, m: Manifest, installer: KindInstaller, staged: Path) -> None:
        try:
            await installer.install(staged, m)
        except AgentError as exc:
            await self._restore(rec, m, installer, exc)
            return
        timeout = self.ctx.desired.value.upgrade.health_deadline
        self.move(rec, "checking", f"waiting up to {timeout:g}s for the node to be Ready on {m.version}")
        await self.gate_kind(rec, m, installer)

    async def gate_kind(self, rec: UpgradeRecord, m: Manifest, installer: KindInstaller) -> None:
        try:
            await installer.healthy(m, self.ctx.desired.value.upgrade.health_deadline)
        except AgentError as exc:
            await self._restore(rec, m, installer, exc)
            return
        if self.kind_failures.get(m.kind, {}).pop(m.version, None) is not None:
            self._save()  # a (forced) success clears the block, as a commit does for the agent
        self.move(rec, "committed", f"{m.kind} {m.version} is running and Ready")

    async def _restore(self, rec: UpgradeRecord, m: Manifest, installer: KindInstaller, exc: AgentError) -> None:
        log.error("upgrade %s: %s; restoring %s", rec.id, exc, rec.previous_version)
        self._count_failure(m.kind, m.version)  # a failed trial: blocked from now on (agent.upgrade.blocks)
        try:
            await installer.restore(m)
        except AgentError as exc2:
            self.move(rec, "failed", f"{exc}; and restoring {rec.previous_version} failed too: {exc2}")
            return
        self.move(rec, "rolled-back", f"{exc}; restored {rec.previous_version}")

    def busy(self) -> bool:
        """The pipeline task of this process is running."""
        return self._task is not None and not self._task.done()

    def installer(self, kind: str) -> KindInstaller:
        found = self._installers.get(kind)
        if found is None:
            raise UpgradeRefused(f"{kind} bundles cannot be installed on this box")
        return found


def remove_paths(*paths: Path) -> None:
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
