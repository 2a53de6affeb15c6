"""One node certificate used by two boxes at once: seen, flagged ``DuplicateIdentity``, the second refused.

Each heartbeat names the box's instance: its boot id (new at every boot) and
its hardware key (agent.fleet.hardware). A reboot or a repair changes the
instance once and the old one never comes back; two boxes sharing one
identity make the instances *alternate* (A, B, A). So an instance that was
seen before and returns after another one is the signal. The node is then
flagged: the earlier instance (the original) keeps heartbeating, every other
instance is refused until an operator runs ``edge-registrar nodes resolve ID``
(after revoking the node or re-imaging the copy).

What is remembered lives in the registry, so every replica judges with the same
memory (two boxes reaching two replicas alternate just the same): ``nodes.instance``
(the instance heard now; the original once flagged), ``node_instances`` (the last
``KEEP`` seen) and ``duplicates`` (the flags). A heartbeat from the instance heard
now costs nothing more than the heartbeat itself (``Registry.heartbeat``); only a
change of instance is judged here (``judge``), in the transaction of
``Registry.record_instance``.
"""

from __future__ import annotations

from dataclasses import dataclass

KEEP = 8  # instances remembered per node
LEGACY_DB = "identity-guard.sqlite"  # where a registrar before schema 5 kept this, per replica


@dataclass(frozen=True)
class Duplicate:
    node_id: str
    original: str
    second: str
    flagged_at: float

    @property
    def reason(self) -> str:
        return (
            f"DuplicateIdentity: the certificate of node {self.node_id} is used by two boxes at once "
            f"(instances {self.original} and {self.second}, alternating); heartbeats other than the first box's "
            f"are refused until an operator runs 'edge-registrar nodes resolve {self.node_id}'"
        )


@dataclass(frozen=True)
class Verdict:
    """What a heartbeat from a new instance comes to."""

    accept: bool  # store the heartbeat (else: 409 with ``flag.reason``)
    current: str  # the instance the node is heard as from now on (``nodes.instance``)
    flag: Duplicate | None = None  # the node's flag, new or standing
    new_flag: bool = False  # ``flag`` is raised by this heartbeat
    seen_now: bool = False  # remember ``current`` as seen now (and the one before it as left now)


def instance_of(boot_id: str, hardware: str) -> str:
    """``boot/hardware`` as reported; '' when the box reported neither (an older agent)."""
    return f"{boot_id[:64]}/{hardware[:64]}" if boot_id or hardware else ""


def judge(
    node_id: str,
    instance: str,
    current: str,
    first_seen: dict[str, float],
    flag: Duplicate | None,
    now: float,
) -> Verdict:
    """A heartbeat from ``instance`` while the node is heard as ``current``, with the instances seen
    before (``first_seen``: instance -> when first seen) and its flag, if any."""
    if not instance:  # an older agent that names no instance is not judged
        return Verdict(accept=True, current=current, flag=flag)
    if flag is not None:
        return Verdict(accept=instance == flag.original, current=flag.original, flag=flag)
    if current and instance != current and instance in first_seen:
        # an earlier instance is back after another: two boxes, not a reboot
        original, second = sorted((instance, current), key=lambda i: first_seen.get(i, now))
        dup = Duplicate(node_id, original, second, now)
        return Verdict(accept=instance == original, current=original, flag=dup, new_flag=True)
    return Verdict(accept=True, current=instance, seen_now=True)
