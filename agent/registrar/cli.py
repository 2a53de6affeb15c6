"""edge-registrar: command line of the fleet registrar.

    edge-registrar --state-dir DIR init
    edge-registrar --state-dir DIR serve --listen HOST:PORT [--san NAME ...] [--servers 1|3] ...
    edge-registrar --state-dir DIR token create [--ttl 24h] [--uses 1] [--site S] [--label k=v] [--require-approval]
    edge-registrar --state-dir DIR nodes list|show ID|approve ID [--by USER]|revoke ID|resolve ID [-o json]
    edge-registrar --state-dir DIR policy add|list|remove ..., class add|list|remove ... (rules_cli)
    edge-registrar --state-dir DIR site-network set SITE --file F | list | remove SITE (sitenet)
    edge-registrar --state-dir DIR cert issue --role fleet:admin --name alice --out DIR
    edge-registrar --state-dir DIR poll [-o json] [--from-replicas]
    (any command: --database sqlite:///PATH | postgresql://...; default <state-dir>/registry.sqlite)

Exit codes: 0 ok, 1 the operation failed (named), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

from agent.errors import AgentError
from agent.registrar import rollout_cli, rules_cli, sitenet, views
from agent.registrar.app import serve_forever
from agent.registrar.ca import ROLES, CertificateAuthority
from agent.registrar.database import ENV, check_url, from_args
from agent.registrar.identity import POLLER, ensure_client, issue_client
from agent.registrar.poll import poll_fleet
from agent.registrar.registry import Registry
from agent.registrar.service import Registrar, Settings
from agent.registrar.shards import ShardPoller, merged, replica_id
from agent.registrar.tokens import TokenRecord, mint

DEFAULT_STATE_DIR = Path("/var/lib/edge-registrar")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 30m, 24h or 7d, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _database(text: str) -> str:
    try:
        return check_url(text)
    except AgentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 the registrar serves the fleet


def registry(args: argparse.Namespace) -> Registry:
    return from_args(args)


def cmd_init(args: argparse.Namespace) -> int:
    d: Path = args.state_dir
    if (d / "ca.key").exists() and not args.force:
        ca = CertificateAuthority.load(d)
        print(f"fleet CA already exists in {d}", file=sys.stderr)
    else:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca = CertificateAuthority.create()
        ca.save(d)
    db = registry(args)
    try:
        ensure_client(ca, db, d, POLLER)  # kept when still good: init twice issues nothing new
    finally:
        db.close()
    print(ca.pin)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    d: Path = args.state_dir
    settings = Settings(
        cert_lifetime=timedelta(seconds=args.cert_lifetime),
        retry_after=int(args.retry_after),
        servers=args.servers,
        distribution=args.distribution,
        k8s_version=args.k8s_version,
        guess_burst=args.guess_burst,
        guess_window=args.guess_window,
    )
    ca = CertificateAuthority.load(d)
    reg = Registrar(d, ca, registry(args), settings)
    host, port = args.listen
    poller = None
    if args.poll_interval > 0:  # this replica polls its shard of the fleet (agent.registrar.shards)
        client = ensure_client(ca, reg.registry, d, POLLER)
        me = replica_id(port)
        poller = ShardPoller(reg.registry, client, me, interval=args.poll_interval, timeout=args.poll_timeout,
                             concurrency=args.poll_concurrency)  # fmt: skip
    rollouts = rollout_cli.worker(args, ca, reg.registry, replica_id(port))  # --rollout-interval
    asyncio.run(serve_forever(reg, host, port, args.san, *(w for w in (poller, rollouts) if w is not None)))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    token_id, secret_hash, token = mint()
    now = time.time()
    record = TokenRecord(
        token_id=token_id,
        secret_hash=secret_hash,
        expires_at=now + args.ttl,
        uses_left=args.uses,
        site=args.site,
        labels=dict(args.label),
        require_approval=args.require_approval,
        created_at=now,
    )
    db = registry(args)
    db.add_token(record)
    db.close()
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    db = registry(args)
    tokens = db.list_tokens()
    db.close()
    print(views.tokens(tokens, args.output))
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    db = registry(args)
    try:
        flagged = db.duplicates()
        if args.nodes_cmd == "list":
            print(views.nodes(db.list_nodes(), args.output, flagged))
            return 0
        node = db.get_node(args.node_id)
        if node is None:
            print(f"edge-registrar: no node {args.node_id!r}", file=sys.stderr)
            return 1
        if args.nodes_cmd == "show":
            print(views.node(node, args.output, flagged.get(node.node_id), db.events(node.node_id)))
        elif args.nodes_cmd == "resolve":
            if not db.resolve_duplicate(node.node_id):
                print(f"edge-registrar: node {node.node_id} is not flagged DuplicateIdentity", file=sys.stderr)
                return 1
            print(f"resolved {node.node_id}: its next box to heartbeat is the node (revoke it to shut both out)")
        elif args.nodes_cmd == "approve":
            if node.state == "revoked":
                print(f"edge-registrar: node {node.node_id} is revoked; it cannot be approved", file=sys.stderr)
                return 1
            if node.state == "approved":
                print(f"{node.node_id} is already approved ({node.approved_by or 'before approvals were recorded'})")
                return 0
            by = f"operator:{args.by}"
            db.set_state(node.node_id, "approved", by=by)
            print(f"approved {node.node_id} ({by}); it gets its assignment at its next call")
        elif args.nodes_cmd == "revoke":
            n = db.revoke_node(node.node_id)
            print(f"revoked {node.node_id} ({n} certificate(s) now on the CRL)")
        return 0
    finally:
        db.close()


def cmd_cert_issue(args: argparse.Namespace) -> int:
    ca = CertificateAuthority.load(args.state_dir)
    serial = issue_client(ca, args.role, args.name, args.out, timedelta(seconds=args.lifetime))
    db = registry(args)
    db.add_cert(serial, f"operator:{args.name}", time.time() + args.lifetime)
    db.close()
    print(f"wrote {args.out}/client.pem (serial {serial:x}), client.key (0600), ca.pem: {args.name} ({args.role})")
    return 0


def cmd_cert_revoke(args: argparse.Namespace) -> int:
    db = registry(args)
    try:
        serial = int(args.serial, 16)
    except ValueError:
        print(f"edge-registrar: serial must be hex, got {args.serial!r}", file=sys.stderr)
        return 2
    done = db.revoke_cert(serial)
    db.close()
    if not done:
        print(f"edge-registrar: no unrevoked certificate with serial {args.serial}", file=sys.stderr)
        return 1
    print(f"revoked certificate {serial:x}; agents drop it at their next heartbeat")
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    ca = CertificateAuthority.load(args.state_dir)
    db = registry(args)
    if args.from_replicas:  # what the serving replicas' shard sweeps found, merged
        try:
            print(views.poll(merged(db), args.output))
        finally:
            db.close()
        return 0
    try:
        nodes = [n for n in db.list_nodes() if n.state == "approved" and n.serial]
        client = ensure_client(ca, db, args.state_dir, POLLER)  # its own recorded reader certificate
    finally:
        db.close()
    rows = asyncio.run(poll_fleet(nodes, client, timeout=args.timeout, concurrency=args.concurrency))
    print(views.poll(rows, args.output))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-registrar", description="fleet CA, enrollment and registry")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    p.add_argument(
        "--database",
        type=_database,
        default=os.environ.get(ENV) or None,
        help=f"registry: sqlite:///PATH (default <state-dir>/registry.sqlite) or postgresql://... (${ENV})",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("init", help="make the fleet CA and print its pin")
    s.add_argument("--force", action="store_true", help="replace an existing CA (every box must be re-seeded)")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("serve", help="serve EST and the membership API over TLS")
    s.add_argument("--listen", type=listen, default=listen(":8443"), help="HOST:PORT (default 0.0.0.0:8443)")
    s.add_argument("--san", action="append", default=[], help="extra name or address in the serving cert")
    s.add_argument("--servers", type=int, choices=[1, 3], default=1, help="servers per cluster")
    s.add_argument("--distribution", choices=["k3s", "k0s"], default="k3s")
    s.add_argument("--k8s-version", default="")
    s.add_argument("--cert-lifetime", type=duration, default=90 * 86400.0, help="node certificate life")
    s.add_argument("--retry-after", type=duration, default=60.0, help="Retry-After while pending approval")
    s.add_argument("--guess-burst", type=int, default=10, help="failed enrollments allowed per source")
    s.add_argument("--guess-window", type=duration, default=60.0, help="...refilled over this long")
    s.add_argument(
        "--poll-interval",
        type=duration,
        default=0.0,
        help="poll this replica's shard of the fleet this often (0: never; see poll --from-replicas)",
    )
    s.add_argument("--poll-timeout", type=duration, default=5.0)
    s.add_argument("--poll-concurrency", type=int, default=200)
    rollout_cli.add_serve_options(s)
    s.set_defaults(func=cmd_serve)

    tok = sub.add_parser("token", help="bootstrap tokens").add_subparsers(dest="token_cmd", required=True)
    s = tok.add_parser("create", help="mint a bootstrap token and print it (shown once)")
    s.add_argument("--ttl", type=duration, default=86400.0)
    s.add_argument("--uses", type=int, default=1)
    s.add_argument("--site", default="")
    s.add_argument("--label", "--labels", type=rules_cli.label, action="append", default=[])
    s.add_argument("--require-approval", action="store_true", help="boxes wait for 'nodes approve'")
    s.set_defaults(func=cmd_token_create)
    s = tok.add_parser("list", help="tokens (never their secrets)")
    s.add_argument("-o", "--output", choices=["table", "json"], default="table")
    s.set_defaults(func=cmd_token_list)

    nodes = sub.add_parser("nodes", help="enrolled boxes").add_subparsers(dest="nodes_cmd", required=True)
    for name in ("list", "show", "approve", "revoke", "resolve"):
        s = nodes.add_parser(name)
        if name != "list":
            s.add_argument("node_id")
        if name == "approve":
            s.add_argument("--by", default=os.environ.get("SUDO_USER") or getpass.getuser(),
                           help="who approves, for the audit trail (default: the login user)")  # fmt: skip
        s.add_argument("-o", "--output", choices=["table", "json"], default="table")
        s.set_defaults(func=cmd_nodes)

    cert = sub.add_parser("cert", help="operator certificates").add_subparsers(dest="cert_cmd", required=True)
    s = cert.add_parser("issue", help="issue a client certificate for the remote agent API")
    s.add_argument("--role", choices=ROLES, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--lifetime", type=duration, default=365 * 86400.0)
    s.set_defaults(func=cmd_cert_issue)
    s = cert.add_parser("revoke", help="put an operator certificate on the CRL")
    s.add_argument("serial", help="hex serial, as 'cert issue' printed it")
    s.set_defaults(func=cmd_cert_revoke)

    s = sub.add_parser("poll", help="query every enrolled agent's remote API")
    s.add_argument("-o", "--output", choices=["table", "json"], default="table")
    s.add_argument("--timeout", type=duration, default=5.0)
    s.add_argument("--concurrency", type=int, default=200)
    s.add_argument(
        "--from-replicas",
        action="store_true",
        help="print what the replicas' shard sweeps (serve --poll-interval) found, merged",
    )
    s.set_defaults(func=cmd_poll)

    rules_cli.add_commands(sub)  # policy ..., class ...
    sitenet.add_commands(sub)  # site-network set|list|remove
    rollout_cli.add_commands(sub)  # rollout ..., bundle ... (the upgrades engineer's commands)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        rc: int = args.func(args)
    except AgentError as exc:
        print(f"edge-registrar: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
