"""After a restart: settle what the previous agent process left unfinished.

The UpgradeController runs this at start and whenever the manager changes:
half-staged versions and stale downloads are removed, upgrades interrupted
before the switch are marked failed, and an upgrade left in ``checking`` is
decided. For the agent that means: in the new version, wait until healthy and
commit; in the old one, record the launcher's rollback reason (or roll back
if the restart into the new version never came). For k3s/k0s: gate the node
again, then commit or restore the previous binary.
"""

from __future__ import annotations

import asyncio

from agent.errors import BundleError
from agent.fleet.identity import IdentityFiles
from agent.upgrade.health import FLEET_REACHABLE, wait_healthy
from agent.upgrade.manager import UpgradeManager, remove_paths
from agent.upgrade.manifest import MANIFEST_NAME, parse_manifest
from agent.upgrade.stage import prune_agent_versions, remove_half_staged

RESTART_GRACE = 5.0


def _remove_leftovers(m: UpgradeManager) -> None:
    remove_half_staged(m.slots)
    bundles = m.ctx.paths.bundles_dir
    if bundles.is_dir():
        for p in bundles.iterdir():
            remove_paths(p)


async def cleanup_at_start(m: UpgradeManager) -> None:
    """Drop half-staged versions and stale downloads; settle records a restart interrupted."""
    if m.busy():
        return
    await asyncio.to_thread(_remove_leftovers, m)
    rec = m.active
    if rec is None:
        return
    if rec.kind == "agent" and rec.state == "switching":
        # the switch may or may not have happened: resume_agent reads the slots and decides
        m.move(rec, "checking", "the agent restarted during the switch")
    elif rec.kind not in ("", "agent") and rec.state in ("switching", "checking"):
        m.move(rec, "checking", "the agent restarted during the switch; checking the node again")
    elif rec.state in ("downloading", "verifying", "staged", "switching"):
        m.move(rec, "failed", f"interrupted while {rec.state} by an agent restart; request it again")


async def resume(m: UpgradeManager) -> None:
    """Decide an upgrade left in ``checking``; returns at once when there is none."""
    await resume_agent(m)
    await resume_kind(m)


async def resume_kind(m: UpgradeManager) -> None:
    rec = m.active
    if rec is None or rec.kind in ("", "agent") or rec.state != "checking" or m.busy():
        return
    installer = m.installer(rec.kind)
    staged = m.ctx.paths.versions_dir / rec.kind / rec.version
    try:
        raw = await asyncio.to_thread((staged / MANIFEST_NAME).read_bytes)
        manifest = parse_manifest(raw, str(staged / MANIFEST_NAME))
    except (OSError, BundleError) as exc:
        m.move(rec, "failed", f"cannot check the interrupted upgrade: {exc}")
        return
    installer.adopt(rec.previous_version)
    await m.gate_kind(rec, manifest, installer)


async def resume_agent(m: UpgradeManager) -> None:
    rec = m.active
    if rec is None or rec.kind != "agent" or rec.state != "checking" or m.busy():
        return
    cfg = m.ctx.desired.value.upgrade
    while not rec.final:
        doc = await asyncio.to_thread(m.slots.read)
        trial = m.slots.trial(doc)
        if trial is not None and trial.version == rec.version and m.running_slot == rec.version:
            # this process is the candidate: commit once healthy (the launcher's guard owns the deadline)
            enrolled = IdentityFiles(m.ctx.paths.identity_dir).cert.is_file()
            await wait_healthy(
                m.ctx.board,
                m.ctx.paths.socket,
                settle=min(10.0, cfg.health_deadline / 4),
                require=FLEET_REACHABLE if enrolled and cfg.require_fleet else (),
            )
            if await asyncio.to_thread(m.slots.commit, rec.version):
                m.move(rec, "committed", f"agent {rec.version} is healthy")
                keep = {rec.version, rec.previous_version}
                await asyncio.to_thread(prune_agent_versions, m.slots, keep)
            continue
        if trial is None:
            rb = doc["last_rollback"]
            if isinstance(rb, dict) and rb.get("upgrade_id") == rec.id:
                m.move(rec, "rolled-back", str(rb.get("reason", "")))
            elif doc["committed"] == rec.version and m.slots.current() == rec.version:
                m.move(rec, "committed", f"agent {rec.version} is healthy")
            else:
                m.move(rec, "failed", "the switch did not happen (interrupted); request it again")
            continue
        if m.slots.remaining(trial) < -RESTART_GRACE:
            # still the old process: the restart into the candidate never came
            reason = f"the agent was not restarted into {trial.version} within {trial.deadline_s:g}s"
            await asyncio.to_thread(m.slots.rollback, reason)
            continue
        await asyncio.sleep(1.0)
    m.release_lock()
