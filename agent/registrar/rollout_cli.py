"""``edge-registrar rollout create|status|resume`` and ``edge-registrar bundle keygen|build|sign``.

The registrar's CLI calls :func:`add_commands` with its subparsers; every
command dispatches to :func:`run`. ``serve`` takes :func:`add_serve_options`
(``--rollout-interval``) and :func:`worker`: a replica that drives its shard of
the rollouts made with ``rollout create --on-replicas`` (agent.registrar.rollout_shard).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
import time
from pathlib import Path
from typing import Any

from agent.errors import AgentError, RolloutError
from agent.registrar.ca import CertificateAuthority
from agent.registrar.database import from_args, url_of
from agent.registrar.identity import ROLLOUT, ensure_client, own_client
from agent.registrar.registry import Registry
from agent.registrar.rollout import RolloutStore, drive, matches, parse_selector, plan
from agent.registrar.rollout_shard import RolloutWorker
from agent.upgrade import bundle_tool
from agent.upgrade.manifest import KINDS

_UNITS = {"s": 1, "m": 60, "h": 3600}


def _duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 15m or 1h, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def add_commands(subparsers: Any) -> None:
    ro = subparsers.add_parser("rollout", help="upgrade many boxes: servers first, canary, batches")
    rsub = ro.add_subparsers(dest="rollout_cmd", required=True)
    s = rsub.add_parser("create", help="plan a rollout for the selected boxes and run it")
    s.add_argument("--bundle", required=True, help="https URL of a signed bundle the boxes can download")
    s.add_argument("--selector", action="append", default=[], help="KEY=VALUE: site, role, cluster or a label")
    s.add_argument("--batch-size", type=int, default=5, help="agents upgraded at once after the canary")
    s.add_argument("--canary", type=int, default=1, help="boxes in the first batch when there is no server")
    s.add_argument("--force", action="store_true", help="let boxes retry a version they blocked")
    s.add_argument("--node-timeout", type=_duration, default=1800.0, help="per box (default 30m)")
    s.add_argument("--poll-interval", type=_duration, default=2.0)
    s.add_argument("--client", type=Path, help="operator cert dir (default <state-dir>/rollout)")
    s.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    s.add_argument(
        "--on-replicas",
        action="store_true",
        help="hand it to the serving replicas (serve --rollout-interval), each driving its shard; return at once",
    )
    s.set_defaults(func=run, _rollout="create")
    s = rsub.add_parser("status", help="rollouts, or one rollout node by node")
    s.add_argument("rollout_id", nargs="?")
    s.add_argument("-o", "--output", choices=["table", "json"], default="table")
    s.set_defaults(func=run, _rollout="status")
    s = rsub.add_parser("resume", help="continue a paused or interrupted rollout with the boxes left")
    s.add_argument("rollout_id")
    s.add_argument(
        "--retry",
        action="append",
        default=[],
        metavar="NODE",
        help="ask this failed or blocked box again, with force (recorded in the rollout's events); repeatable",
    )
    s.add_argument("--node-timeout", type=_duration, default=1800.0)
    s.add_argument("--poll-interval", type=_duration, default=2.0)
    s.add_argument("--client", type=Path)
    s.set_defaults(func=run, _rollout="resume")

    bu = subparsers.add_parser("bundle", help="release keys and signed upgrade bundles")
    bsub = bu.add_subparsers(dest="bundle_cmd", required=True)
    s = bsub.add_parser("keygen", help="new Ed25519 release key; prints the public key for [upgrade].release_keys")
    s.add_argument("--out", type=Path, required=True, help="private key file (written 0600)")
    s.set_defaults(func=run, _rollout="keygen")
    s = bsub.add_parser("build", help="make a bundle from files (signed when --key is given)")
    s.add_argument("--kind", choices=KINDS, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--version", required=True)
    s.add_argument("--arch", help="amd64, arm64, ... (default: this machine's)")
    s.add_argument("--key", type=Path, help="private release key")
    s.add_argument("--out", type=Path, required=True, help="bundle file (.tar, or .tar.gz to compress)")
    s.add_argument("files", nargs="+", metavar="FILE[=PATH]", help="payload; PATH is its name in the bundle")
    s.set_defaults(func=run, _rollout="build")
    s = bsub.add_parser("sign", help="sign (or re-sign) a bundle")
    s.add_argument("--key", type=Path, required=True)
    s.add_argument("bundle", type=Path)
    s.add_argument("--out", type=Path, help="write the signed bundle here instead of in place")
    s.set_defaults(func=run, _rollout="sign")


def add_serve_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--rollout-interval",
        type=_duration,
        default=0.0,
        help="drive this replica's shard of the rollouts made with --on-replicas, stepping this often (0: never)",
    )
    s.add_argument("--rollout-node-timeout", type=_duration, default=1800.0, help="per box (default 30m)")


def worker(args: argparse.Namespace, ca: CertificateAuthority, registry: Registry, me: str) -> RolloutWorker | None:
    """The rollout worker of ``serve --rollout-interval S`` (None without it)."""
    if args.rollout_interval <= 0:
        return None
    client = ensure_client(ca, registry, args.state_dir, ROLLOUT)
    store = RolloutStore.beside(url_of(args), args.state_dir)
    step = args.rollout_interval
    return RolloutWorker(
        registry, store, client, me, interval=step, node_timeout=args.rollout_node_timeout, poll_interval=min(2.0, step)
    )


def run(args: argparse.Namespace) -> int:
    action = args._rollout
    try:
        if action in ("keygen", "build", "sign"):
            return _bundle(action, args)
        store = RolloutStore.beside(url_of(args), args.state_dir)
        try:
            if action == "status":
                return _status(store, args)
            return _create_or_resume(store, action, args)
        finally:
            store.close()
    except AgentError as exc:
        print(f"edge-registrar: {exc}")
        return 1


def _bundle(action: str, args: argparse.Namespace) -> int:
    if action == "keygen":
        pub = bundle_tool.keygen(args.out)
        print(f"wrote {args.out} (0600); add the public key to [upgrade].release_keys:\n{pub}")
        return 0
    if action == "build":
        key = bundle_tool.read_private_key(args.key) if args.key else None
        m = bundle_tool.build(
            args.out,
            name=args.name,
            kind=args.kind,
            version=args.version,
            files=args.files,
            architecture=args.arch,
            key=key,
        )
        print(
            f"wrote {args.out}: {m.kind} {m.version} ({m.architecture}), {len(m.files)} file(s), "
            + ("signed" if key else "unsigned: run 'bundle sign'")
        )
        return 0
    m = bundle_tool.sign_bundle(args.bundle, bundle_tool.read_private_key(args.key), args.out)
    print(f"signed {args.out or args.bundle}: {m.kind} {m.version}")
    return 0


def _nodes(args: argparse.Namespace) -> dict[str, Any]:
    db = from_args(args)
    try:
        return {n.node_id: n for n in db.list_nodes() if n.state == "approved" and n.serial}
    finally:
        db.close()


def _create_or_resume(store: RolloutStore, action: str, args: argparse.Namespace) -> int:
    nodes = _nodes(args)
    if action == "create":
        if not args.bundle.startswith(("https://", "http://")):
            raise RolloutError("--bundle: expected a URL the boxes can download (https://...)")
        selector = parse_selector(args.selector)
        if not selector:
            raise RolloutError("--selector: give at least one (site=..., role=..., cluster=... or a label)")
        chosen = [n for n in nodes.values() if matches(n, selector)]
        if not chosen:
            raise RolloutError(f"no approved box matches {' '.join(args.selector)}")
        batches = plan(chosen, canary=args.canary, batch_size=args.batch_size)
        for i, b in enumerate(batches):
            print(f"batch {i}: " + ", ".join(f"{n.node_id} ({n.role or 'node'})" for n in b))
        if args.dry_run:
            return 0
        driver = "replicas" if args.on_replicas else ""
        rid = store.create(
            args.bundle, selector, batches, force=args.force, batch_size=args.batch_size, canary=args.canary,
            driver=driver,
        )  # fmt: skip
        print(f"rollout {rid} created")
    else:
        rid = args.rollout_id
        doc = store.get(rid)
        if doc is None:
            raise RolloutError(f"no rollout {rid!r}; see 'rollout status'")
        _mark_retries(store, doc, args.retry)
        driver = str(doc["driver"])
    if driver:
        if action == "resume":
            store.set_state(rid, "running")
        print(
            f"{rid}: the serving replicas (serve --rollout-interval) drive it, each its shard; "
            f"see 'rollout status {rid}'"
        )
        return 0
    # the registrar's own recorded operator cert
    client = args.client or own_client(args.state_dir, ROLLOUT, url_of(args))
    if not (client / "client.pem").exists():
        raise RolloutError(
            f"{client}/client.pem: no operator certificate; run 'edge-registrar --state-dir "
            f"{args.state_dir} cert issue --role fleet:operator --name rollout --out {client}'"
        )
    try:
        state = asyncio.run(
            drive(store, rid, nodes, client, node_timeout=args.node_timeout, poll_interval=args.poll_interval)
        )
    except KeyboardInterrupt:
        store.set_state(rid, "paused", "interrupted by the operator")
        print(f"interrupted; continue with 'rollout resume {rid}'")
        return 130
    return 0 if state == "done" else 1


def _mark_retries(store: RolloutStore, doc: dict[str, Any], retry: list[str]) -> None:
    """``--retry NODE``: only a box of this rollout that failed or was blocked; written to the audit trail."""
    rows = {n["node_id"]: n for n in doc["nodes"]}
    for node_id in retry:
        row = rows.get(node_id)
        if row is None:
            raise RolloutError(f"--retry {node_id}: no such box in rollout {doc['id']}")
        if row["state"] not in ("failed", "blocked"):
            raise RolloutError(f"--retry {node_id}: it is {row['state']}; only a failed or blocked box is retried")
    if doc["state"] == "done" and retry:
        store.set_state(doc["id"], "paused", "boxes to retry")
    for node_id in retry:
        row = rows[node_id]
        detail = f"by {getpass.getuser()}: was {row['state']} ({row['reason']}); asked again with force"
        store.retry_node(doc["id"], node_id, detail)
        print(f"{doc['id']}: {node_id}: retrying ({detail})")
    store.event(doc["id"], "resumed", f"by {getpass.getuser()}")


def _status(store: RolloutStore, args: argparse.Namespace) -> int:
    if args.rollout_id:
        doc = store.get(args.rollout_id)
        if doc is None:
            raise RolloutError(f"no rollout {args.rollout_id!r}")
        if args.output == "json":
            print(json.dumps({"schema": "edge-registrar.rollout/v1", **doc}, indent=2, sort_keys=True))
            return 0
        print(f"{doc['id']}: {doc['state']}" + (f" ({doc['reason']})" if doc["reason"] else ""))
        target = f"  ({doc['kind']} {doc['version']})" if doc["version"] else ""
        print(f"bundle {doc['bundle']}{target}  selector {' '.join(f'{k}={v}' for k, v in doc['selector'].items())}")
        by = bool(doc["driver"])  # driven by replicas: which one recorded each node
        print(f"{'BATCH':<6} {'NODE':<24} {'ROLE':<7} {'STATE':<10} " + ("BY" + " " * 22 if by else "") + "REASON")
        for n in doc["nodes"]:
            who = f"{n['driven_by'] or n['claimed_by'] or '-':<24}" if by else ""
            print(
                f"{n['batch']:<6} {n['node_id']:<24} {n['role'] or '-':<7} {n['state']:<10} {who}{n['reason']}".rstrip()
            )
        if doc["events"]:
            print("events:")
        for e in doc["events"]:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["at"]))
            print(f"  {at} {e['event']}" + (f" {e['node_id']}" if e["node_id"] else "") + f": {e['detail']}")
        return 0
    docs = store.list()
    if args.output == "json":
        print(json.dumps({"schema": "edge-registrar.rollouts/v1", "items": docs}, indent=2, sort_keys=True))
        return 0
    if not docs:
        print("no rollouts")
        return 0
    print(f"{'ID':<13} {'STATE':<8} {'DONE':>9} {'BLOCKED':>7} {'FAILED':>6}  BUNDLE")
    for d in docs:
        c = d["counts"]
        done = c.get("committed", 0) + c.get("skipped", 0)
        print(
            f"{d['id']:<13} {d['state']:<8} {done:>4}/{len(d['nodes']):<4} {c.get('blocked', 0):>7} "
            f"{c.get('failed', 0):>6}  {d['bundle']}"
        )
    return 0
